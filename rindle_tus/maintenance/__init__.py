"""Reaping: what keeps storage from leaking while the app runs for months.

Plain functions; each takes ``dry_run`` and returns a ``Report`` of what it
did (or would do). The management command and the Celery tasks are thin
wrappers around them.

One module per step (``expired``, ``orphans``, ``tails``, ``rows``), the
operator actions of the admin (``actions``) and the report (``report``);
``reap`` runs the steps in order. How a session is claimed before it is
touched is told in ``expired``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from .actions import reap_selected, retry_completion, terminate_sessions
from .expired import reap_expired
from .orphans import reap_orphans
from .report import (
    ABORT,
    ABORT_ORPHAN,
    CLEAR_ERROR,
    COMPLETE,
    DELETE_OBJECT,
    DELETE_ROW,
    DELETE_TAIL,
    DONE,
    EXPIRE,
    FAILED,
    GONE,
    SKIPPED,
    STEP,
    SWEEP_TAIL,
    TERMINATE,
    WOULD,
    Action,
    Report,
)
from .rows import delete_old_rows
from .tails import session_id_of_tail, sweep_tails

__all__ = [
    "ABORT",
    "ABORT_ORPHAN",
    "CLEAR_ERROR",
    "COMPLETE",
    "DELETE_OBJECT",
    "DELETE_ROW",
    "DELETE_TAIL",
    "DONE",
    "EXPIRE",
    "FAILED",
    "GONE",
    "SKIPPED",
    "STEP",
    "STEPS",
    "SWEEP_TAIL",
    "TERMINATE",
    "WOULD",
    "Action",
    "Report",
    "delete_old_rows",
    "reap",
    "reap_expired",
    "reap_orphans",
    "reap_selected",
    "retry_completion",
    "session_id_of_tail",
    "sweep_tails",
    "terminate_sessions",
]

logger = logging.getLogger("rindle_tus.maintenance")

STEPS = ("expired", "orphans", "tails", "rows")


def reap(*, dry_run: bool = False, only: Iterable[str] | None = None) -> Report:
    """Run the steps in ``only`` (default: all of ``STEPS``), in that order.

    A step that fails as a whole (S3 unreachable, say) is reported and the
    next step still runs.
    """
    chosen = list(only) if only is not None else list(STEPS)
    unknown = set(chosen) - set(STEPS)
    if unknown:
        raise ValueError(f"Unknown reaping steps: {', '.join(sorted(unknown))}; choose from {', '.join(STEPS)}.")
    runs: dict[str, Callable[[], Report]] = {
        "expired": lambda: reap_expired(dry_run=dry_run),
        "orphans": lambda: reap_orphans(dry_run=dry_run),
        "tails": lambda: sweep_tails(dry_run=dry_run),
        "rows": lambda: delete_old_rows(dry_run=dry_run),
    }
    report = Report(dry_run=dry_run)
    for name in STEPS:
        if name not in chosen:
            continue
        try:
            report.extend(runs[name]())
        except Exception as exc:  # one failing step never stops the rest
            logger.exception("reaper: step %s", name)
            report.add(STEP, name, FAILED, detail=str(exc))
    return report
