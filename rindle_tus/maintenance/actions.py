"""Operator actions (the admin): reap, terminate or complete chosen sessions
now, each under the session's lease and never while a request holds it."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from ..exceptions import Locked
from ..holders import is_leased
from ..locking import Lease
from ..models import State, TusSession
from ..storage.s3 import S3Backend
from ..writer import Writer
from .expired import reap_expired
from .report import COMPLETE, DONE, FAILED, SKIPPED, STEP, TERMINATE, WOULD, Report
from .shared import _complete, _not_completable, _release
from .tails import sweep_tails

logger = logging.getLogger("rindle_tus.maintenance")


def reap_selected(ids: Iterable[str], *, dry_run: bool = False) -> Report:
    """Reap these sessions now, by the same rules as the scheduled reaper."""
    wanted = list(ids)
    report = reap_expired(dry_run=dry_run, ids=wanted)
    report.extend(sweep_tails(dry_run=dry_run, ids=wanted))
    touched = {a.session or a.target for a in report.actions}
    for pk in wanted:
        if pk not in touched:
            report.add(STEP, pk, SKIPPED, session=pk, detail="nothing to reap: active, or already clean")
    return report


def terminate_sessions(ids: Iterable[str], *, dry_run: bool = False, backend: S3Backend | None = None) -> Report:
    """Terminate receiving sessions (abort the multipart upload, delete the
    tail here) and failed ones (delete their wrong-size object).

    Completed uploads are the users' files and are left alone.
    """
    report = Report(dry_run=dry_run)

    def why_not(session: TusSession) -> str | None:
        if session.state not in (State.RECEIVING, State.FAILED):
            return f"only receiving or failed uploads can be terminated (it is {session.state})"
        return None

    def act(session: TusSession, lease: Lease) -> None:
        Writer(session, lease, backend).terminate()
        detail = f"clean-up left for the reaper: {session.last_error}" if session.last_error else ""
        report.add(TERMINATE, session.pk, DONE, detail=detail)

    _each_under_lease(ids, TERMINATE, report, why_not, act)
    return report


def retry_completion(
    ids: Iterable[str], *, dry_run: bool = False, backend: S3Backend | None = None
) -> Report:
    """Complete receiving sessions whose bytes are all in committed parts but
    whose completion failed: complete the multipart upload, check the
    object's size, mark the session completed and send ``upload_finished``."""
    report = Report(dry_run=dry_run)
    _each_under_lease(
        ids,
        COMPLETE,
        report,
        _not_completable,
        lambda session, lease: _complete(session, lease, backend or S3Backend(), report),
    )
    return report


def _each_under_lease(
    ids: Iterable[str],
    kind: str,
    report: Report,
    why_not: Callable[[TusSession], str | None],
    act: Callable[[TusSession, Lease], None],
) -> None:
    """Run ``act`` on each session that ``why_not`` allows, holding its lease;
    a session a request holds is skipped, one failure never stops the rest."""
    for pk in ids:
        session = TusSession.objects.filter(pk=pk).first()
        why = why_not(session) if session else "the session is gone"
        if why:
            report.add(kind, pk, SKIPPED, detail=why)
            continue
        assert session is not None
        if report.dry_run:
            busy = is_leased(session)
            report.add(kind, pk, SKIPPED if busy else WOULD, detail="a request holds it" if busy else "")
            continue
        try:
            lease = Lease.acquire(pk, wait=0)
        except Locked:
            report.add(kind, pk, SKIPPED, detail="a request holds it; try again")
            continue
        try:
            session.refresh_from_db()
            why = why_not(session)
            if why:
                report.add(kind, pk, SKIPPED, detail=why)
            else:
                act(session, lease)
        except Exception as exc:  # one failing session never stops the rest
            logger.exception("%s: session %s", kind, pk)
            report.add(kind, pk, FAILED, detail=str(exc))
        finally:
            _release(session, lease, report, kind)
