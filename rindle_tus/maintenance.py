"""Reaping: what keeps storage from leaking while the app runs for months.

Plain functions; each takes ``dry_run`` and returns a ``Report`` of what it
did (or would do). The management command and the Celery tasks are thin
wrappers around them.

A session is claimed before it is touched, with the lease the request path
takes (``locking.claim``): one conditional UPDATE that also repeats the
reason the row was chosen, inside a short transaction that skips rows
another reaper is claiming. So a session with a live lease is never touched,
two reapers never act on the same row, and no transaction is held open
across S3 calls. The reaper never asks a holder to hand a session over.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import re
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from .conf import tus_settings
from .exceptions import LeaseLost, Locked, StorageError
from .locking import Lease, claim, free, is_leased
from .models import ConcatKind, State, TusSession, expired
from .storage.s3 import S3Backend, is_no_such_upload, s3_errors
from .storage.tail import TAIL_SUFFIX, tail_dir, tus_tail_path
from .writer import ABORT, DELETE_OBJECT, DELETE_TAIL, Writer, cleanup_steps  # noqa: F401  (report kinds, re-exported)

logger = logging.getLogger("rindle_tus.maintenance")

# Results of an action.
DONE = "done"
WOULD = "would"
GONE = "gone"
SKIPPED = "skipped"
FAILED = "failed"

# Kinds of action.
EXPIRE = "expire_session"
CLEAR_ERROR = "clear_error"
ABORT_ORPHAN = "abort_orphan"
SWEEP_TAIL = "sweep_tail"
DELETE_ROW = "delete_row"
COMPLETE = "complete"
TERMINATE = "terminate"
STEP = "step"

STEPS = ("expired", "orphans", "tails", "rows")

# A tail file whose session row cannot be found is left alone this long: the
# row may still sit in a transaction the sweep cannot see yet.
_UNSEEN_ROW_GRACE = timedelta(minutes=5)
_TAIL_NAME = re.compile(r"(?P<id>[A-Za-z0-9_-]+)\.tail(?:\.\d+\.tmp)?")
_FINISHED = (State.COMPLETED, State.EXPIRED, State.TERMINATED)


@dataclass(frozen=True)
class Action:
    kind: str
    target: str
    result: str
    session: str = ""
    detail: str = ""

    def __str__(self) -> str:
        text = f"{self.result} {self.kind} {self.target}"
        if self.session and self.session != self.target:
            text += f" (session {self.session})"
        if self.detail:
            text += f": {self.detail}"
        return text


@dataclass
class Report:
    dry_run: bool = False
    actions: list[Action] = field(default_factory=list)

    def add(self, kind: str, target: str, result: str, *, session: str = "", detail: str = "") -> Action:
        action = Action(kind, target, result, session, detail)
        self.actions.append(action)
        if result == FAILED:
            logger.warning("reaper: %s", action)
        elif result == DONE:
            logger.info("reaper: %s", action)
        return action

    def extend(self, other: Report) -> None:
        self.actions.extend(other.actions)

    @property
    def failed(self) -> list[Action]:
        return [a for a in self.actions if a.result == FAILED]

    def count(self, kind: str | None = None, result: str | None = None) -> int:
        return sum(1 for a in self.actions if kind in (None, a.kind) and result in (None, a.result))

    def counts(self) -> dict[str, int]:
        return dict(Counter(f"{a.kind}:{a.result}" for a in self.actions))

    def summary(self) -> str:
        suffix = " (dry run)" if self.dry_run else ""
        if not self.actions:
            return f"nothing to do{suffix}"
        tally = Counter((a.kind, a.result) for a in self.actions)
        return ", ".join(sorted(f"{n} {kind} {result}" for (kind, result), n in tally.items())) + suffix

    def as_dict(self) -> dict[str, Any]:
        """A JSON-safe digest, small enough for a task result."""
        return {
            "dry_run": self.dry_run,
            "summary": self.summary(),
            "counts": self.counts(),
            "failed": [str(a) for a in self.failed],
        }


def _is_active(session: TusSession, now: datetime) -> bool:
    """Leased, or receiving within its expiry window: the reaper keeps out."""
    return is_leased(session, now) or session.is_unexpired(now)


def _release(session: TusSession, lease: Lease, report: Report, kind: str) -> None:
    try:
        lease.release()
    except Exception as exc:  # noqa: BLE001  (the lease expires by itself)
        report.add(kind, session.pk, FAILED, detail=f"could not release the lease: {exc}")


# -- expired and terminated sessions -----------------------------------------


def _expired_candidates(now: datetime) -> QuerySet[TusSession]:
    """Receiving sessions past their expiry, and expired or terminated ones whose clean-up failed."""
    retry = Q(state__in=(State.EXPIRED, State.TERMINATED)) & ~Q(last_error="")
    return TusSession.objects.filter(expired(now) | retry)


def _free_storage(session: TusSession, backend: S3Backend, report: Report) -> list[str]:
    """Free the session's storage by the rule ``terminate`` follows
    (``writer.cleanup_steps``); return the errors (none: the session is clean)."""
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
            session.refresh_from_db()
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


# -- orphan multipart uploads ------------------------------------------------


def _multipart_uploads(backend: S3Backend) -> Iterator[list[dict[str, Any]]]:
    paginator = backend.client.get_paginator("list_multipart_uploads")
    with s3_errors("list multipart uploads"):
        for page in paginator.paginate(Bucket=backend.bucket, Prefix=backend.prefix):
            yield list(page.get("Uploads", []))


@contextmanager
def _only_one(name: str) -> Iterator[bool]:
    """Whether this process is the only one running ``name`` right now.

    S3 cannot tell a second abort of the same upload from the first, so on
    PostgreSQL a session advisory lock (no transaction held) keeps a second
    orphan reaper out. Other databases run one reaper at a time in practice.
    """
    if connection.vendor != "postgresql":
        yield True
        return
    key = zlib.crc32(f"rindle_tus.{name}".encode())
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
        got = bool(cursor.fetchone()[0])
    try:
        yield got
    finally:
        if got:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [key])


def reap_orphans(*, dry_run: bool = False, backend: S3Backend | None = None, now: datetime | None = None) -> Report:
    """Abort multipart uploads under the app's key prefix that are older than
    ``RINDLE_TUS_ORPHAN_AGE`` and that no receiving session references."""
    report = Report(dry_run=dry_run)
    if dry_run:
        _find_orphans(backend or S3Backend(), now, report)
        return report
    with _only_one("reap_orphans") as alone:
        if not alone:
            report.add(STEP, "orphans", SKIPPED, detail="another reaper is aborting orphans right now")
            return report
        _find_orphans(backend or S3Backend(), now, report)
    return report


def _find_orphans(backend: S3Backend, now: datetime | None, report: Report) -> None:
    dry_run = report.dry_run
    cutoff = (now or timezone.now()) - tus_settings.ORPHAN_AGE
    for uploads in _multipart_uploads(backend):
        old = [u for u in uploads if u["Initiated"] < cutoff]
        referenced = set(
            TusSession.objects.filter(
                state=State.RECEIVING, upload_id__in=[u["UploadId"] for u in old]
            ).values_list("upload_id", flat=True)
        )
        for upload in old:
            key, upload_id = upload["Key"], upload["UploadId"]
            if upload_id in referenced:
                continue
            detail = f"upload id {upload_id}, initiated {upload['Initiated'].isoformat()}"
            if dry_run:
                report.add(ABORT_ORPHAN, key, WOULD, detail=detail)
                continue
            try:
                backend.client.abort_multipart_upload(Bucket=backend.bucket, Key=key, UploadId=upload_id)
            except ClientError as exc:
                if is_no_such_upload(exc):
                    report.add(ABORT_ORPHAN, key, GONE, detail=detail)
                else:
                    report.add(ABORT_ORPHAN, key, FAILED, detail=f"{detail}: {exc}")
            except BotoCoreError as exc:
                report.add(ABORT_ORPHAN, key, FAILED, detail=f"{detail}: {exc}")
            else:
                report.add(ABORT_ORPHAN, key, DONE, detail=detail)


# -- tail sweep --------------------------------------------------------------


def session_id_of_tail(name: str) -> str | None:
    """The session id a tail (or its temp file) is named after, or None."""
    match = _TAIL_NAME.fullmatch(name)
    if not match:
        return None
    encoded = match["id"]
    try:
        session_id = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    # Only the canonical spelling that tus_tail_path() produces counts.
    if tus_tail_path(session_id, root="").name != f"{encoded}{TAIL_SUFFIX}":
        return None
    return session_id


def _sweep_reason(
    name: str, session_id: str | None, session: TusSession | None, mtime: datetime, now: datetime
) -> str | None:
    """Why the file may go, or None to keep it."""
    temp = name.endswith(".tmp")
    old = mtime < now - tus_settings.TAIL_SWEEP_AGE
    if session is not None and _is_active(session, now):
        # A writer holds the lease while its temp file exists; one left
        # without a lease is debris of a crash.
        return "stale temp file" if temp and old and not is_leased(session, now) else None
    if session is not None:
        if session.state == State.RECEIVING:
            return "session expired"
        return f"session {session.state}"
    if session_id is not None:
        return "session gone" if mtime < now - _UNSEEN_ROW_GRACE else None
    return "older than the sweep age" if temp and old else None


def sweep_tails(
    *,
    dry_run: bool = False,
    root: str | os.PathLike[str] | None = None,
    ids: Iterable[str] | None = None,
    now: datetime | None = None,
) -> Report:
    """Delete this node's tail files whose session is gone, finished or
    expired, and temp files older than ``RINDLE_TUS_TAIL_SWEEP_AGE``.

    Only regular files in the tail folder named like tails or temp files are
    considered; symlinks, folders and anything else are never touched.
    """
    report = Report(dry_run=dry_run)
    now = now or timezone.now()
    directory = tail_dir(root)
    only = set(ids) if ids is not None else None
    try:
        entries = [e for e in os.scandir(directory) if _TAIL_NAME.fullmatch(e.name) or e.name.endswith(".tmp")]
    except FileNotFoundError:
        return report
    files: list[tuple[os.DirEntry[str], str | None]] = []
    for entry in entries:
        session_id = session_id_of_tail(entry.name)
        if only is not None and session_id not in only:
            continue
        if entry.is_file(follow_symlinks=False):
            files.append((entry, session_id))
    sessions = TusSession.objects.in_bulk([sid for _, sid in files if sid is not None])
    for entry, session_id in files:
        try:
            mtime = datetime.fromtimestamp(entry.stat(follow_symlinks=False).st_mtime, tz=dt_timezone.utc)
        except FileNotFoundError:
            continue
        reason = _sweep_reason(entry.name, session_id, sessions.get(session_id or ""), mtime, now)
        if reason is None:
            continue
        path = str(Path(directory) / entry.name)
        if dry_run:
            report.add(SWEEP_TAIL, path, WOULD, session=session_id or "", detail=reason)
            continue
        try:
            os.unlink(path)
        except FileNotFoundError:
            report.add(SWEEP_TAIL, path, GONE, session=session_id or "", detail=reason)
        except OSError as exc:
            report.add(SWEEP_TAIL, path, FAILED, session=session_id or "", detail=f"{reason}: {exc}")
        else:
            report.add(SWEEP_TAIL, path, DONE, session=session_id or "", detail=reason)
    return report


# -- old rows ----------------------------------------------------------------


def delete_old_rows(
    *, dry_run: bool = False, now: datetime | None = None, batch_size: int = 500, backend: S3Backend | None = None
) -> Report:
    """Delete completed, expired and terminated rows untouched for ``RINDLE_TUS_RETENTION``.

    Rows whose clean-up is still pending (``last_error``) stay until it
    succeeds; failed rows stay for the operator. Objects of finished uploads
    are the users' files and are never deleted here, except those of
    completed partial uploads (``Upload-Concat: partial``): they are material
    for final uploads, which hold their own copy, so the object goes with
    the row. If deleting it fails, the row stays and the next run retries.
    """
    report = Report(dry_run=dry_run)
    now = now or timezone.now()
    candidates = TusSession.objects.stale(now - tus_settings.RETENTION).filter(
        free(), state__in=_FINISHED, last_error=""
    )
    partial = {"state": State.COMPLETED, "concat": ConcatKind.PARTIAL}
    partials, rest = candidates.filter(**partial).order_by("pk"), candidates.exclude(**partial)
    if dry_run:
        for pk, key in partials.values_list("pk", "key").iterator():
            report.add(DELETE_OBJECT, pk, WOULD, detail=key)
            report.add(DELETE_ROW, pk, WOULD, detail=State.COMPLETED)
        for pk, state in rest.order_by("pk").values_list("pk", "state").iterator():
            report.add(DELETE_ROW, pk, WOULD, detail=state)
        return report
    # Partial uploads first, one at a time and outside any transaction (no
    # row lock is held across an S3 call): the object, then the row. Deleting
    # an object twice is harmless, so two reapers at once need no lock; the
    # one whose row delete succeeds reports both.
    for pk, key in partials.values_list("pk", "key").iterator():
        backend = backend or S3Backend()
        try:
            backend.delete(key)
        except StorageError as exc:
            report.add(DELETE_OBJECT, pk, FAILED, detail=str(exc))
            continue
        deleted, _ = candidates.filter(pk=pk).delete()
        if deleted:
            report.add(DELETE_OBJECT, pk, DONE, detail=key)
        report.add(DELETE_ROW, pk, DONE if deleted else GONE, detail=State.COMPLETED)
    after = ""
    while True:
        with transaction.atomic():
            rows = list(
                rest.filter(pk__gt=after)
                .order_by("pk")
                .select_for_update(skip_locked=True)
                .values_list("pk", "state")[:batch_size]
            )
            for pk, state in rows:
                deleted, _ = rest.filter(pk=pk).delete()
                report.add(DELETE_ROW, pk, DONE if deleted else GONE, detail=state)
        if not rows:
            return report
        after = rows[-1][0]


# -- everything --------------------------------------------------------------


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


# -- operator actions (the admin) --------------------------------------------


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


def _not_completable(session: TusSession) -> str | None:
    if session.completion_pending:
        return None
    if session.state != State.RECEIVING:
        return f"it is {session.state}"
    if session.length is None or session.offset != session.length:
        return f"it holds {session.offset} of {session.length if session.length is not None else '?'} bytes"
    if not session.upload_id or not session.parts:
        return "it has no multipart upload to complete"
    return f"its parts hold {session.committed_bytes} of {session.length} bytes"


def _complete(session: TusSession, lease: Lease, backend: S3Backend, report: Report) -> None:
    """Complete through the request path's own final step, so the checks
    (NoSuchUpload means done if the object's size is right) stay in one place."""
    try:
        Writer(session, lease, backend).finish_pending()
    except StorageError as exc:
        report.add(COMPLETE, session.pk, FAILED, detail=str(exc))
        return
    report.add(COMPLETE, session.pk, DONE, detail=f"{session.length} bytes at {session.key}")
