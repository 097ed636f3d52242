"""The life cycle verbs the views call: find, create, apply a body, answer a
HEAD, terminate, discard, download. They take and return rows and bodies,
never requests or responses; every write goes through a ``Writer`` under
the upload's lease."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from django.db.models import Q
from django.utils import timezone

from .body import Body, Empty
from .concatenation import assemble, final_length
from .conf import tus_settings
from .exceptions import (
    AlreadyComplete,
    InconsistentLength,
    InvalidHeader,
    Locked,
    OffsetMismatch,
    TooLarge,
    TusError,
    UploadGone,
    UploadNotFound,
)
from .handover import settle
from .limits import check_length, check_unfinished
from .locking import Lease
from .models import ConcatKind, State, TusSession, is_session_id
from .protocol import Checksum
from .receiver import Receiver
from .storage import S3Backend
from .storage.s3 import part_size_for
from .writer import Writer, announce_created, complete_empty

# How a row records an upload created with tus (``TusSession.protocol``).
TUS = "tus"
# No request may read or change these any more.
GONE_STATES = frozenset({State.TERMINATED, State.EXPIRED, State.FAILED})


def get(upload_id: str) -> TusSession:
    """The upload a URL names, if it can still be used."""
    if not is_session_id(upload_id):
        raise UploadNotFound()
    try:
        # get(), not first(): a lookup by key needs no ORDER BY to compile and run.
        session = TusSession.objects.get(pk=upload_id)
    except TusSession.DoesNotExist:
        raise UploadNotFound() from None
    if session.state in GONE_STATES or session.is_expired():
        message = session.last_error if session.state == State.FAILED and session.last_error else None
        raise UploadGone(message)
    return session


def for_body(upload_id: str, offset: int | None, *, take: bool) -> tuple[TusSession, Lease | None]:
    """The upload a body (a PATCH's) is for, and its lease if already taken.

    With ``take`` and the body's ``offset``, one statement reads the row and
    takes the lease (``Lease.take_where``) when the upload can take a body
    there now: free, receiving, unexpired, at that offset and not a final
    concatenation. Otherwise the row is read (``get``), the view's checks
    answer why, and ``apply_body`` takes the lease. A view that refuses the
    request after all gives the lease back (``holding``).
    """
    taken = _take_for_body(upload_id, offset) if take and offset is not None else None
    return taken if taken is not None else (get(upload_id), None)


def _take_for_body(upload_id: str, offset: int) -> tuple[TusSession, Lease] | None:
    if not is_session_id(upload_id):
        return None
    # Unexpired by this node's clock, as ``TusSession.is_expired`` judges it.
    rows = TusSession.objects.filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now()), state=State.RECEIVING, offset=offset
    ).exclude(concat=ConcatKind.FINAL)
    return Lease.take_where(rows, upload_id)


@contextmanager
def holding(lease: Lease | None) -> Iterator[None]:
    """``lease`` (from ``for_body``) is given back however the block
    ends: after a refusal, or after ``apply_body``, which released it already."""
    try:
        yield
    finally:
        if lease is not None:
            lease.release()


# -- creation ------------------------------------------------------------------


def _new_session(
    backend: S3Backend,
    *,
    held: bool,
    length: int | None,
    metadata_raw: str,
    metadata: dict[str, Any],
    user: Any,
    client: str,
    concat: str = ConcatKind.NONE,
    concat_sources: list[dict[str, str]] | None = None,
    protocol: str = TUS,
) -> tuple[TusSession, Lease | None]:
    """The new upload's row, inserted; ``held``: with this request holding
    its lease from the start (``Lease.create``), to write it at once."""
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
        protocol=protocol,
        created_at=now,
        updated_at=now,
        expires_at=now + tus_settings.EXPIRATION,
    )
    session.key = backend.key_for(session.id)
    lease = None
    if held:
        lease = Lease.create(session)
    else:
        session.save(force_insert=True)
    announce_created(session)
    return session, lease


def create(
    *,
    length: int | None,
    metadata_raw: str,
    metadata: dict[str, Any],
    user: Any = None,
    client: str = "",
    partial: bool = False,
    body: Body | None = None,
    checksum: Checksum | None = None,
    protocol: str = TUS,
    complete: bool = False,
    announce: Callable[[TusSession], bool] | None = None,
    confirm_length: Callable[[int], None] | None = None,
) -> TusSession:
    """A new upload; ``body`` is the creation-with-upload body, if any.

    ``complete``: the body is the whole upload (the draft's
    ``Upload-Complete: ?1``), so its end fixes a length not yet known,
    once ``confirm_length`` (the pre-create hook) accepts it.
    ``announce`` is called once the row exists and before the body is read;
    it returns whether the client learnt the upload's URL from it (the
    draft's 104), so that a failure later must keep the upload resumable."""
    if length is not None and body is not None and body.length is not None and body.length > length:
        raise TooLarge(f"The body of {body.length} bytes goes past Upload-Length ({length}).")
    backend = S3Backend()
    session, lease = _new_session(
        backend,
        held=length != 0 and ((body is not None and body.length != 0) or complete),
        length=length,
        metadata_raw=metadata_raw,
        metadata=metadata,
        user=user,
        client=client,
        concat=ConcatKind.PARTIAL if partial else ConcatKind.NONE,
        protocol=protocol,
    )
    try:
        announced = announce(session) if announce is not None else False
        if length == 0:
            complete_empty(session, backend)
        elif lease is not None:
            try:
                _apply(
                    session,
                    body or Body(Empty(), 0),
                    checksum,
                    backend,
                    lease,
                    offset=0,
                    complete=complete,
                    confirm_length=confirm_length,
                )
            except TusError:
                if not announced:
                    # The client never learns this upload's URL, so nobody could
                    # resume it: free whatever it stored and let the error stand.
                    discard(session, backend)
                raise
    finally:
        if lease is not None:
            lease.release()
    return session


def create_final(
    partials: Sequence[TusSession],
    urls: Sequence[str],
    *,
    metadata_raw: str,
    metadata: dict[str, Any],
    user: Any = None,
    client: str = "",
) -> TusSession:
    """A final upload of ``partials`` (from ``concatenation.partials``), assembled at once."""
    backend = S3Backend()
    final, lease = _new_session(
        backend,
        held=True,
        length=final_length(partials),
        metadata_raw=metadata_raw,
        metadata=metadata,
        user=user,
        client=client,
        concat=ConcatKind.FINAL,
        concat_sources=[{"id": p.id, "url": url} for p, url in zip(partials, urls, strict=True)],
    )
    assert lease is not None
    try:
        assemble(Writer(final, lease, backend), partials)
    finally:
        lease.release()
    final.refresh_from_db()
    return final


# -- bodies ---------------------------------------------------------------------


def apply_body(
    session: TusSession,
    body: Body,
    checksum: Checksum | None,
    *,
    offset: int,
    length: int | None = None,
    complete: bool = False,
    confirm_length: Callable[[int], None] | None = None,
    lease: Lease | None = None,
) -> TusSession:
    """A PATCH: ``body`` at ``offset``, declaring a deferred ``length`` if
    given; ``complete`` and ``confirm_length`` as for ``create``. ``lease``:
    the one ``for_body`` took with ``session``; else it is taken here."""
    check_offset(session, offset)
    check_room(session, body)
    if session.state == State.COMPLETED:
        return session
    _apply(
        session,
        body,
        checksum,
        S3Backend(),
        lease or Lease.take(session, offset=offset),
        offset=offset,
        length=length,
        complete=complete,
        confirm_length=confirm_length,
    )
    return session


def _apply(
    session: TusSession,
    body: Body,
    checksum: Checksum | None,
    backend: S3Backend,
    lease: Lease,
    *,
    offset: int,
    length: int | None = None,
    complete: bool = False,
    confirm_length: Callable[[int], None] | None = None,
) -> None:
    """Under ``lease`` (``Lease.take``: ``session`` is the row as it holds
    it), apply the body; the lease is released at the end."""
    try:
        if session.state != State.RECEIVING:
            raise UploadGone() if session.state in GONE_STATES else OffsetMismatch(
                "The upload is complete.", expected=session.offset, provided=offset
            )
        check_offset(session, offset)
        writer = Writer(session, lease, backend)
        if length is not None:
            _declare_length(writer, length)
        Receiver(writer).receive(body, checksum)
        if complete:
            _complete(writer, confirm_length)
    finally:
        lease.release()


def _complete(writer: Writer, confirm_length: Callable[[int], None] | None) -> None:
    """After a whole body that ends the upload: a length still unknown is
    where the body ended (once ``confirm_length`` accepts it: the bytes stay
    if it refuses), and the upload is finished there."""
    session = writer.session
    if session.state == State.COMPLETED:
        return
    if session.length is not None:
        raise InconsistentLength(
            f"The request completes the upload at {session.offset} bytes, but its length is {session.length}."
        )
    if confirm_length is not None:
        confirm_length(session.offset)
    _declare_length(writer, session.offset)
    Receiver(writer).receive(Body(Empty(), 0), None)


def _declare_length(writer: Writer, length: int) -> None:
    session = writer.session
    if session.length is not None:
        if length != session.length:
            raise InconsistentLength(
                f"Upload-Length is {length}, but the upload's length is {session.length} and cannot change."
            )
        return
    if length < session.offset:
        raise InvalidHeader(f"Upload-Length {length} is smaller than the bytes already received ({session.offset}).")
    check_length(length, session.part_size)
    writer.declare_length(length)


def check_room(session: TusSession, body: Body) -> None:
    """A complete upload takes no more bytes: only an empty body (a chunked
    one may not be, so it is refused too)."""
    if session.state == State.COMPLETED and body.length != 0:
        raise AlreadyComplete()


def check_offset(session: TusSession, offset: int) -> None:
    if offset != session.offset:
        raise OffsetMismatch(
            f"Upload-Offset is {offset}, but the upload is at {session.offset}.",
            expected=session.offset,
            provided=offset,
        )


# -- HEAD ----------------------------------------------------------------------


def settled(session: TusSession) -> TusSession:
    """The upload as a HEAD must answer it.

    A request may hold it (often one whose client vanished and is now asking
    here): it is asked to hand over, so the offset answered is what it kept,
    and no request that arrived before this one changes it later. An upload
    whose every byte arrived but whose completion failed is finished now: a
    client that sees offset == length stops, so it must be whole, or the
    HEAD answers the error and the client asks again later.
    """
    if session.state == State.COMPLETED:
        # Nothing can change a completed upload's offset: nothing to settle.
        return session
    if not settle(session):
        session = get(session.id)
    if session.completion_pending:
        _finish_pending(session)
    return session


def _finish_pending(session: TusSession) -> None:
    try:
        lease = Lease.acquire(session.id, wait=0)
    except Locked:
        # The request that holds it is completing the upload right now.
        return
    try:
        session.refresh_from_db()
        if session.completion_pending:
            Writer(session, lease).finish_pending()
    finally:
        lease.release()


# -- the end -------------------------------------------------------------------


def terminate(session: TusSession) -> None:
    """DELETE: the upload is terminated and its storage freed."""
    lease = Lease.take(session)
    try:
        Writer(session, lease).terminate()
    finally:
        lease.release()


def discard(session: TusSession, backend: S3Backend) -> None:
    """Undo an upload nobody can reach: its creation failed midway, so the
    client never learnt its URL. Its storage is freed and the row removed;
    if freeing fails, the row stays terminated for the reaper to retry."""
    lease = Lease.acquire(session.id)
    try:
        session.refresh_from_db()
        Writer(session, lease, backend).terminate()
        if not session.last_error:
            TusSession.objects.filter(pk=session.pk, lease_token=lease.token).delete()
    finally:
        lease.release()
