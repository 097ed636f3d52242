from __future__ import annotations

from django.apps import AppConfig


class UploadsConfig(AppConfig):
    name = "example_project.uploads"
    label = "uploads"
    verbose_name = "finished uploads"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import receivers  # noqa: F401  (connects the upload_finished receiver)
