"""Celery tasks over ``rindle_tus.maintenance``, with stable names.

Celery is optional: without it this module still imports and its functions
are plain callables. The schedule lives in ``rindle_tus.schedule`` (also
re-exported here), which settings import without loading Celery.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from .schedule import (
    BEAT_SCHEDULE,
    DELETE_OLD_ROWS,
    REAP,
    REAP_EXPIRED,
    REAP_ORPHANS,
    SWEEP_TAILS,
    node_queue,
    tail_sweep_schedule,
)

try:
    from celery import shared_task as _shared_task
except ImportError:  # Celery is optional.
    _shared_task = None

__all__ = [
    "BEAT_SCHEDULE",
    "DELETE_OLD_ROWS",
    "REAP",
    "REAP_EXPIRED",
    "REAP_ORPHANS",
    "SWEEP_TAILS",
    "delete_old_rows",
    "node_queue",
    "reap",
    "reap_expired",
    "reap_orphans",
    "sweep_tails",
    "tail_sweep_schedule",
]

F = TypeVar("F", bound=Callable[..., Any])


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
