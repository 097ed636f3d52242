"""The Celery tasks: a real worker consuming from Redis, and the beat schedule."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from celery.contrib.testing.worker import start_worker

from rindle_tus import tasks
from rindle_tus.models import State, TusSession
from rindle_tus.storage import tus_tail_path

from .conftest import S3, TusClient, service_unavailable
from .test_maintenance import expire, receiving, upload_ids

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
ROOT = Path(__file__).resolve().parent.parent


def test_tasks_module_imports_without_celery_or_django_settings() -> None:
    code = (
        "import sys; sys.modules['celery'] = None\n"
        "import rindle_tus.tasks as t\n"
        "assert not hasattr(t.reap_expired, 'delay')\n"
        "print(sorted(t.BEAT_SCHEDULE))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "rindle_tus.reap_expired" in result.stdout


DJANGO_CELERY_BEAT_SETTINGS = """
from rindle_tus.schedule import BEAT_SCHEDULE, tail_sweep_schedule

SECRET_KEY = "beat"
USE_TZ = True
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "django_celery_beat", "rindle_tus"]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": %(db)r}}
STORAGES = {"default": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {"bucket_name": "b"}}}
CELERY_BEAT_SCHEDULE = {**BEAT_SCHEDULE, **tail_sweep_schedule(["web-1"])}
"""

DJANGO_CELERY_BEAT_SCRIPT = """
import django
django.setup()
from celery import Celery
from django.core.management import call_command
call_command("migrate", verbosity=0)
import rindle_tus.tasks
from django_celery_beat.models import PeriodicTask
from django_celery_beat.schedulers import DatabaseScheduler
app = Celery("beat", set_as_current=False)
app.config_from_object("django.conf:settings", namespace="CELERY")
DatabaseScheduler(app=app)
for task in PeriodicTask.objects.exclude(task__startswith="celery."):
    assert task.task in app.tasks, task.task
    print(task.name, task.task, task.interval.every, task.interval.period, task.queue or "-", task.kwargs)
"""


def test_beat_schedule_loads_into_django_celery_beat(tmp_path: Path) -> None:
    # The "beat" extra; not installed where django-celery-beat does not support
    # the Django under test (2.9.0 requires Django<6.1).
    pytest.importorskip("django_celery_beat", reason="django-celery-beat is not installed (extra 'beat')")
    (tmp_path / "beat_settings.py").write_text(DJANGO_CELERY_BEAT_SETTINGS % {"db": str(tmp_path / "beat.sqlite3")})
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "beat_settings", "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"}
    result = subprocess.run(
        [sys.executable, "-c", DJANGO_CELERY_BEAT_SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    rows = sorted(result.stdout.splitlines())
    assert rows == [
        "rindle_tus.delete_old_rows rindle_tus.delete_old_rows 86400 seconds - {}",
        "rindle_tus.reap_expired rindle_tus.reap_expired 900 seconds - {}",
        "rindle_tus.reap_orphans rindle_tus.reap_orphans 21600 seconds - {}",
        'rindle_tus.sweep_tails.web-1 rindle_tus.sweep_tails 3600 seconds rindle_tus.tails.web-1 {"node": "web-1"}',
    ]


@pytest.fixture
def node(settings: Any) -> str:
    """A node name of this test's own, so no other worker on the same Redis takes its sweep."""
    settings.RINDLE_TUS_NODE_NAME = f"test-node-{uuid.uuid4().hex[:8]}"
    return str(settings.RINDLE_TUS_NODE_NAME)


@pytest.fixture
def worker_app(node: str) -> Iterator[Celery]:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as exc:  # noqa: BLE001
        service_unavailable(f"Redis at {REDIS_URL}: {exc}")
    import celery.contrib.testing.tasks  # noqa: F401  (registers celery.ping for start_worker)

    app = Celery("rindle_tus_tests", broker=REDIS_URL, backend=REDIS_URL, set_as_current=False)
    app.conf.update(
        task_default_queue=f"rindle-tus-test-{uuid.uuid4().hex[:8]}",
        result_expires=600,
        broker_connection_retry_on_startup=False,
        worker_hijack_root_logger=False,
    )
    queues = [app.conf.task_default_queue, tasks.node_queue(node)]
    with start_worker(app, queues=queues, shutdown_timeout=30):
        yield app


@pytest.mark.django_db(transaction=True)
def test_worker_reaps_an_expired_session(worker_app: Celery, tus: TusClient, s3: S3, settings: Any) -> None:
    settings.RINDLE_TUS_KEY_PREFIX = f"task-{uuid.uuid4().hex[:12]}/"
    prefix = f"site/{settings.RINDLE_TUS_KEY_PREFIX}"
    session, _ = receiving(tus)
    expire(session)
    result = worker_app.send_task(tasks.REAP_EXPIRED).get(timeout=60)
    assert result["counts"] == {"abort_upload:done": 1, "delete_tail:done": 1, "expire_session:done": 1}
    assert TusSession.objects.get(pk=session.pk).state == State.EXPIRED
    assert upload_ids(s3, prefix) == set()
    assert not tus_tail_path(session.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_worker_dry_run_reports_and_changes_nothing(worker_app: Celery, tus: TusClient, s3: S3, settings: Any) -> None:
    settings.RINDLE_TUS_KEY_PREFIX = f"task-{uuid.uuid4().hex[:12]}/"
    prefix = f"site/{settings.RINDLE_TUS_KEY_PREFIX}"
    session, _ = receiving(tus)
    expire(session)
    result = worker_app.send_task(tasks.REAP, kwargs={"dry_run": True, "only": ["expired"]}).get(timeout=60)
    assert result["dry_run"] is True
    assert result["counts"]["expire_session:would"] == 1
    assert TusSession.objects.get(pk=session.pk).state == State.RECEIVING
    assert upload_ids(s3, prefix) == {session.upload_id}


@pytest.mark.django_db(transaction=True)
def test_tail_sweep_runs_from_the_nodes_queue(worker_app: Celery, node: str, tail_root: Path) -> None:
    session = TusSession.objects.create(part_size=5 * 1024 * 1024, key="k", state=State.COMPLETED)
    tail = tus_tail_path(session.pk)
    tail.parent.mkdir(parents=True)
    tail.write_bytes(b"left over")
    entry = tasks.tail_sweep_schedule([node])[f"{tasks.SWEEP_TAILS}.{node}"]
    result = worker_app.send_task(entry["task"], kwargs=entry["kwargs"], **entry["options"]).get(timeout=60)
    assert result["counts"] == {"sweep_tail:done": 1}
    assert not tail.exists()


@pytest.mark.django_db(transaction=True)
def test_tail_sweep_meant_for_another_node_touches_nothing(worker_app: Celery, tail_root: Path) -> None:
    session = TusSession.objects.create(part_size=5 * 1024 * 1024, key="k", state=State.COMPLETED)
    tail = tus_tail_path(session.pk)
    tail.parent.mkdir(parents=True)
    tail.write_bytes(b"on another node's disk, as far as this task knows")
    result = worker_app.send_task(tasks.SWEEP_TAILS, kwargs={"node": "some-other-node"}).get(timeout=60)
    assert result["counts"] == {"step:skipped": 1}
    assert tail.exists()


def test_example_web_process_never_loads_celery() -> None:
    # Settings read the schedule from rindle_tus.schedule: a web worker that
    # serves uploads carries no Celery (about 6 MiB a process).
    code = (
        "import sys, django\n"
        "django.setup()\n"
        "from django.core.wsgi import get_wsgi_application\n"
        "get_wsgi_application()\n"
        "import rindle_tus.views, rindle_tus.admin\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('celery', 'kombu')))\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "example_project.settings"}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
