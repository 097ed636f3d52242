from django.apps import AppConfig


class RindleTusConfig(AppConfig):
    name = "rindle_tus"
    verbose_name = "tus uploads"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import (
            checks,  # noqa: F401  (registers the system checks)
            metrics,
        )

        metrics.connect_signals()
