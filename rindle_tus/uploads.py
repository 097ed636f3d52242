"""The life cycle of an upload outside the PATCH path: creation and
termination. Views call these; they know nothing of HTTP."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.utils import timezone

from . import signals
from .conf import S3_MAX_OBJECT_SIZE, S3_MAX_PARTS, tus_settings
from .exceptions import InvalidHeader, StorageError, TooLarge, TooManyUploads
from .locking import Lease
from .models import State, TusSession
from .storage.s3 import S3Backend, part_size_for
from .storage.tail import open_tail

logger = logging.getLogger("rindle_tus")


def max_size() -> int:
    """The largest upload accepted: ``RINDLE_TUS_MAX_SIZE``, never past S3's own limit."""
    configured = tus_settings.MAX_SIZE
    return S3_MAX_OBJECT_SIZE if configured is None else min(configured, S3_MAX_OBJECT_SIZE)


def _limit(part_size: int | None) -> int:
    # An upload's parts can hold no more than 10,000 of its part size.
    return max_size() if part_size is None else min(max_size(), part_size * S3_MAX_PARTS)


def check_length(length: int, part_size: int | None = None) -> None:
    limit = _limit(part_size)
    if length > limit:
        raise TooLarge(f"Upload-Length {length} is larger than this server accepts ({limit} bytes).")


def room(session: TusSession) -> int:
    """How many more bytes the upload may take: up to its length, or while
    the length is deferred, up to the largest upload this server accepts.
    Every path into storage stops there."""
    largest = session.length if session.length is not None else _limit(session.part_size)
    return largest - session.offset


def check_unfinished(user: Any, client: str) -> None:
    """``RINDLE_TUS_MAX_UNFINISHED``: a user (or a signed-out client) holds at
    most that many receiving uploads that have not expired."""
    limit = tus_settings.MAX_UNFINISHED
    if limit is None:
        return
    held = TusSession.objects.filter(state=State.RECEIVING, expires_at__gt=timezone.now())
    if getattr(user, "is_authenticated", False):
        held = held.filter(created_by=user)
    else:
        held = held.filter(created_by=None, client=client)
    if held[:limit].count() >= limit:
        raise TooManyUploads(
            f"You have {limit} unfinished uploads, as many as this server allows: finish or delete one first, "
            "or wait until they expire."
        )


def create_session(
    backend: S3Backend,
    *,
    length: int | None,
    metadata_raw: str,
    metadata: dict[str, Any],
    user: Any = None,
    client: str = "",
    concat: str = "",
    concat_sources: list[dict[str, str]] | None = None,
) -> TusSession:
    if length is not None:
        check_length(length)
    check_unfinished(user, client)
    now = timezone.now()
    session = TusSession(
        length=length,
        part_size=part_size_for(length),
        metadata_raw=metadata_raw,
        metadata=metadata,
        concat=concat,
        concat_sources=concat_sources or [],
        created_by=user if getattr(user, "is_authenticated", False) else None,
        client=client,
        created_at=now,
        updated_at=now,
        expires_at=now + tus_settings.EXPIRATION,
    )
    session.key = backend.key_for(session.id)
    session.save(force_insert=True)
    transaction.on_commit(lambda: signals.send_created(session))
    return session


def set_deferred_length(session: TusSession, lease: Lease, length: int) -> None:
    if length < session.offset:
        raise InvalidHeader(f"Upload-Length {length} is smaller than the bytes already received ({session.offset}).")
    check_length(length, session.part_size)
    lease.commit(session, length=length)


def complete_empty(session: TusSession, backend: S3Backend) -> None:
    """``Upload-Length: 0``: the upload is whole at creation."""
    backend.put(session.key, b"", None)
    TusSession.objects.filter(pk=session.pk).update(state=State.COMPLETED, completed_at=timezone.now())
    session.state = State.COMPLETED
    transaction.on_commit(lambda: signals.send_finished(session))


def terminate(session: TusSession, lease: Lease, backend: S3Backend) -> None:
    """Mark the upload terminated, then free its storage.

    The row changes first, so no request can resume it while storage is freed;
    a clean-up step that fails is recorded in ``last_error`` and retried by the
    reaper.
    """
    # A completed or failed upload's multipart upload is already assembled
    # into an object (a failed one's has the wrong size): delete that object.
    assembled = session.state in (State.COMPLETED, State.FAILED)
    # last_error now means "clean-up pending" (what the reaper retries), so
    # an earlier error (a failed upload's) is cleared.
    lease.commit(session, state=State.TERMINATED, last_error="")
    transaction.on_commit(lambda: signals.send_terminated(session))
    errors = []
    try:
        if session.upload_id and not assembled:
            backend.abort(session.key, session.upload_id)
        if assembled or not session.upload_id:
            backend.delete(session.key)
    except StorageError as exc:
        errors.append(str(exc))
    open_tail(session).delete()
    if errors:
        logger.warning("upload %s terminated; clean-up left for the reaper: %s", session.id, errors)
        lease.commit(session, last_error="; ".join(errors))


def discard(session: TusSession, backend: S3Backend) -> None:
    """Undo an upload nobody can reach: its creation failed midway, so the
    client never learnt its URL. Its storage is freed and the row removed;
    if freeing fails, the row stays terminated for the reaper to retry."""
    lease = Lease.acquire(session.id)
    try:
        session.refresh_from_db()
        terminate(session, lease, backend)
        if not session.last_error:
            TusSession.objects.filter(pk=session.pk, lease_token=lease.token).delete()
    finally:
        lease.release()
