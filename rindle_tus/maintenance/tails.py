"""The tail sweep: this node's tail files (with their part files and temp
files) that no live session needs any more."""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.utils import timezone

from ..conf import tus_settings
from ..holders import is_leased
from ..models import State, TusSession
from ..storage.folder import TAIL_SUFFIX, tail_dir, tus_tail_path
from .report import DONE, FAILED, GONE, SWEEP_TAIL, WOULD, Report

# A tail file whose session row cannot be found is left alone this long: the
# row may still sit in a transaction the sweep cannot see yet.
_UNSEEN_ROW_GRACE = timedelta(minutes=5)
# A tail, a part file of one (``tus_part_path``), or the temp file of either.
_TAIL_NAME = re.compile(r"(?P<id>[A-Za-z0-9_-]+)\.tail(?:\.\d+\.part)?(?:\.\d+\.tmp)?")


def _is_active(session: TusSession, now: datetime) -> bool:
    """Leased, or receiving within its expiry window: the reaper keeps out."""
    return is_leased(session, now) or session.is_unexpired(now)


def session_id_of_tail(name: str) -> str | None:
    """The session id a tail (or its part file, or a temp file) is named after, or None."""
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
            mtime = datetime.fromtimestamp(entry.stat(follow_symlinks=False).st_mtime, tz=UTC)
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
