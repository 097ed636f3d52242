"""The example project's Celery app: the worker and beat run the reaper.

Configured from Django settings under the ``CELERY_`` namespace; the broker is
``CELERY_BROKER_URL`` when set, otherwise a filesystem broker under ``var/``
that needs no server. On one machine::

    celery -A example_project worker -B -Q celery,rindle_tus.tails.$(hostname) -c 1
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_project.settings")

app = Celery("example_project")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
