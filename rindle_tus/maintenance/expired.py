"""Expired and terminated sessions: abort their multipart upload, delete
their tails, mark them expired, and retry the clean-up that failed before.

A session is claimed before it is touched, with the lease the request path
takes (``locking.claim``): one conditional UPDATE that also repeats the
reason the row was chosen, inside a short transaction that skips rows
another reaper is claiming. So a session with a live lease is never touched,
two reapers never act on the same row, and no transaction is held open
across S3 calls. The reaper never asks a holder to hand a session over.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from ..cleanup import cleanup_steps
from ..exceptions import LeaseLost
from ..holders import free
from ..locking import Lease, claim
from ..models import State, TusSession, expired
from ..storage import S3Backend
from .report import (
    CLEAR_ERROR,
    COMPLETE,
    DONE,
    EXPIRE,
    FAILED,
    SKIPPED,
    WOULD,
    Report,
)
from .shared import _complete, _not_completable, _release

logger = logging.getLogger("rindle_tus.maintenance")


def _expired_candidates(now: datetime) -> QuerySet[TusSession]:
    """Receiving sessions past their expiry, and expired or terminated ones whose clean-up failed."""
    retry = Q(state__in=(State.EXPIRED, State.TERMINATED)) & ~Q(last_error="")
    return TusSession.objects.filter(expired(now) | retry)


def _free_storage(session: TusSession, backend: S3Backend, report: Report) -> list[str]:
    """Free the session's storage by the rule DELETE follows
    (``cleanup.cleanup_steps``); return the errors (none: the session is clean)."""
    errors: list[str] = []
    for step in cleanup_steps(session, backend):
        exc = step.attempt(backend)
        if exc is not None:
            errors.append(str(exc))
            report.add(step.kind, step.target, FAILED, session=session.pk, detail=str(exc))
        else:
            report.add(step.kind, step.target, DONE, session=session.pk, detail=step.detail)
    return errors


def _reap_session(session: TusSession, lease: Lease, backend: S3Backend, report: Report) -> None:
    try:
        lease.confirm()
    except LeaseLost:
        report.add(EXPIRE, session.pk, SKIPPED, detail="another process took the session over")
        return
    try:
        if session.state == State.RECEIVING and _not_completable(session) is None:
            # Every byte arrived and only completion failed: finish it rather
            # than throw the upload away.
            _complete(session, lease, backend, report)
            # The writer keeps ``session`` as the row is (or will be, with the
            # release that writes the completion).
            if session.state == State.COMPLETED:
                _release(session, lease, report, COMPLETE)
                return
        errors = _free_storage(session, backend, report)
        fields: dict[str, Any] = {"last_error": "; ".join(errors)}
        if session.state == State.RECEIVING:
            fields["state"] = State.EXPIRED
        was = session.state
        had_error = bool(session.last_error)
        # The marks and the release in one conditional UPDATE.
        lease.release(updated_at=timezone.now(), **fields)
        if was == State.RECEIVING:
            report.add(EXPIRE, session.pk, DONE, detail="clean-up to retry" if errors else "")
        elif had_error and not errors:
            report.add(CLEAR_ERROR, session.pk, DONE, detail=f"{was} session now clean")
    except Exception as exc:  # one failing session never stops the rest
        logger.exception("reaper: session %s", session.pk)
        report.add(EXPIRE, session.pk, FAILED, detail=str(exc))
        _release(session, lease, report, EXPIRE)


def reap_expired(
    *,
    dry_run: bool = False,
    ids: Iterable[str] | None = None,
    backend: S3Backend | None = None,
    batch_size: int = 100,
) -> Report:
    """Abort, clean and mark expired every receiving session past its expiry,
    and retry the clean-up of expired and terminated sessions whose earlier
    clean-up failed (``last_error`` is the marker)."""
    report = Report(dry_run=dry_run)
    now = timezone.now()
    candidates = _expired_candidates(now)
    if ids is not None:
        candidates = candidates.filter(pk__in=list(ids))
    if dry_run:
        for session in candidates.filter(free()).order_by("pk").iterator():
            for step in cleanup_steps(session, backend or S3Backend()):
                report.add(step.kind, step.target, WOULD, session=session.pk, detail=step.detail)
            if session.state == State.RECEIVING:
                report.add(EXPIRE, session.pk, WOULD)
            else:
                report.add(CLEAR_ERROR, session.pk, WOULD, detail=f"{session.state}: {session.last_error}")
        return report
    for session, lease in claim(candidates, batch_size):
        backend = backend or S3Backend()
        _reap_session(session, lease, backend, report)
    return report
