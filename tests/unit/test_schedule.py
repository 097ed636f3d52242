"""The beat schedule: it loads into Celery's scheduler and names registered
tasks (the tests that start a worker or a process: tests/test_tasks.py)."""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.beat import Scheduler

from rindle_tus import tasks


def beat_app(schedule: dict[str, Any]) -> Celery:
    app = Celery("rindle_tus_beat", set_as_current=False)
    app.conf.beat_schedule = schedule
    return app


def test_beat_schedule_loads_and_names_registered_tasks() -> None:
    schedule = {**tasks.BEAT_SCHEDULE, **tasks.tail_sweep_schedule(["web-1", "web-2"])}
    app = beat_app(schedule)
    scheduler = Scheduler(app, lazy=False)
    for name, entry in schedule.items():
        assert name in scheduler.schedule
        assert entry["task"] in app.tasks
        assert scheduler.schedule[name].schedule.run_every.total_seconds() > 0


def test_tail_sweep_entries_route_to_each_nodes_queue() -> None:
    entries = tasks.tail_sweep_schedule(["web-1", "web-2"])
    assert {e["options"]["queue"] for e in entries.values()} == {"rindle_tus.tails.web-1", "rindle_tus.tails.web-2"}
    assert {e["kwargs"]["node"] for e in entries.values()} == {"web-1", "web-2"}


def test_example_project_beat_schedule_names_registered_tasks() -> None:
    from example_project import settings as example

    app = beat_app(example.CELERY_BEAT_SCHEDULE)
    Scheduler(app, lazy=False)
    assert set(tasks.BEAT_SCHEDULE) <= set(example.CELERY_BEAT_SCHEDULE)
    assert any(e["task"] == tasks.SWEEP_TAILS for e in example.CELERY_BEAT_SCHEDULE.values())
    for entry in example.CELERY_BEAT_SCHEDULE.values():
        assert entry["task"] in app.tasks
