"""The reaper's beat schedule and task names, without importing Celery.

Settings modules import from here, so a web process that only reads its
settings never loads Celery (about 6 MiB per process)::

    from rindle_tus.schedule import BEAT_SCHEDULE, tail_sweep_schedule

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

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

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
