"""Celery tasks over ``rindle_tus.maintenance``, with stable names.

Celery is optional: without it this module still imports and its functions
are plain callables. It imports no models at module level either, so a
settings module can use ``BEAT_SCHEDULE`` and ``tail_sweep_schedule()``::

    from rindle_tus.tasks import BEAT_SCHEDULE, tail_sweep_schedule

    CELERY_BEAT_SCHEDULE = {**BEAT_SCHEDULE, **tail_sweep_schedule(["web-1", "web-2"])}

The entries use plain ``timedelta`` schedules, so django-celery-beat's
``DatabaseScheduler`` loads them into interval schedules as they are.

Tails live on the disk of the web node that received them, so the tail
sweep must run on every web node: each entry of ``tail_sweep_schedule()`` is
routed to the queue ``node_queue(node)``, which a small worker on that node
consumes (``celery -A proj worker -Q rindle_tus.tails.<node> -c 1``).
Where no worker runs on the web nodes, cron runs
``manage.py rindle_tus_reap --only tails`` there instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any, TypeVar

try:
    from celery import shared_task as _shared_task
except ImportError:  # Celery is optional.
    _shared_task = None

F = TypeVar("F", bound=Callable[..., Any])

REAP_EXPIRED = "rindle_tus.reap_expired"
REAP_ORPHANS = "rindle_tus.reap_orphans"
SWEEP_TAILS = "rindle_tus.sweep_tails"
DELETE_OLD_ROWS = "rindle_tus.delete_old_rows"
REAP = "rindle_tus.reap"

BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    REAP_EXPIRED: {"task": REAP_EXPIRED, "schedule": timedelta(minutes=15)},
    REAP_ORPHANS: {"task": REAP_ORPHANS, "schedule": timedelta(hours=6)},
    DELETE_OLD_ROWS: {"task": DELETE_OLD_ROWS, "schedule": timedelta(days=1)},
}


def node_queue(node: str) -> str:
    """The queue that the worker on web node ``node`` consumes for its tail sweep."""
    return f"rindle_tus.tails.{node}"


def tail_sweep_schedule(nodes: Iterable[str], every: timedelta = timedelta(hours=1)) -> dict[str, dict[str, Any]]:
    """One beat entry per web node, routed to that node's queue.

    A sweep that waits longer than ``every`` (its node is down) expires
    rather than piling up.
    """
    return {
        f"{SWEEP_TAILS}.{node}": {
            "task": SWEEP_TAILS,
            "schedule": every,
            "kwargs": {"node": node},
            "options": {"queue": node_queue(node), "expires": every.total_seconds()},
        }
        for node in nodes
    }


def _task(name: str) -> Callable[[F], F]:
    def decorate(function: F) -> F:
        if _shared_task is None:
            return function
        task: F = _shared_task(name=name)(function)
        return task

    return decorate


@_task(REAP_EXPIRED)
def reap_expired(dry_run: bool = False) -> dict[str, Any]:
    from . import maintenance

    return maintenance.reap_expired(dry_run=dry_run).as_dict()


@_task(REAP_ORPHANS)
def reap_orphans(dry_run: bool = False) -> dict[str, Any]:
    from . import maintenance

    return maintenance.reap_orphans(dry_run=dry_run).as_dict()


@_task(SWEEP_TAILS)
def sweep_tails(dry_run: bool = False, node: str | None = None) -> dict[str, Any]:
    """Sweep this node's tails; with ``node``, only when this is that node."""
    from . import maintenance
    from .conf import tus_settings

    here = tus_settings.NODE_NAME
    if node is not None and node != here:
        report = maintenance.Report(dry_run=dry_run)
        report.add(maintenance.STEP, "tails", maintenance.SKIPPED, detail=f"meant for node {node!r}, this is {here!r}")
        return report.as_dict()
    return maintenance.sweep_tails(dry_run=dry_run).as_dict()


@_task(DELETE_OLD_ROWS)
def delete_old_rows(dry_run: bool = False) -> dict[str, Any]:
    from . import maintenance

    return maintenance.delete_old_rows(dry_run=dry_run).as_dict()


@_task(REAP)
def reap(dry_run: bool = False, only: list[str] | None = None) -> dict[str, Any]:
    """Every step (or those in ``only``); the tail sweep covers the node that runs it."""
    from . import maintenance

    return maintenance.reap(dry_run=dry_run, only=only).as_dict()
