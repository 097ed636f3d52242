"""Applies one request body to an upload: the PATCH path and its invariant.

The row is the only authority. Each step below leaves a state a crash cannot
corrupt:

1. the tail is checked against the row (``Tail.check``);
2. the body is read in bounded chunks into a part-sized buffer that starts
   with the tail's bytes; every full buffer is uploaded as the next part (on a
   pipeline thread while the next buffer fills, see ``pipeline``) and then
   committed in part order (parts and an offset at the part boundary, so the
   old tail becomes debris the invariant ignores);
3. the remainder is written to the tail (atomically when parts were cut, by
   an append past the committed bytes otherwise), and only then is the new
   offset committed;
4. when the offset reaches the length, the remainder is the last part and the
   multipart upload is completed.

Part commits of step 2 are paced (``_CommitPacer``): a commit rewrites the
row's whole parts list, so with thousands of parts each costs tens of
milliseconds, and parts that finish in quick succession are committed
together. With ``Upload-Checksum`` they wait until the whole body has been
verified. An uploaded part that is never committed is harmless: the client
resumes from the committed offset and the same part number is uploaded again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.db import transaction
from django.utils import timezone

from . import signals
from .body import Body, slots
from .buffers import Part
from .conf import tus_settings
from .exceptions import ChecksumMismatch, ClientGone, StorageError, TooLarge, TusError, UploadInterrupted
from .locking import Lease
from .metadata import content_type_of
from .models import ConcatKind, State, TusSession
from .pipeline import PartPipeline
from .protocol import Checksum
from .storage.s3 import S3Backend, is_no_such_upload
from .storage.tail import check_node_room, open_tail
from .uploads import room

logger = logging.getLogger("rindle_tus")

# How long a request asked to hand over goes on taking in what its client
# already sent (its socket's buffer may hold megabytes a vanished client will
# never send again). A read that blocks is ended sooner (``Body.interrupt``).
HANDOVER_READING = 1.0


class _CommitPacer:
    """When to commit the parts finished so far.

    The first part of a request is committed at once; after that, a commit
    waits until ``SPACING`` times the last commit's duration has passed since
    it, so commits take at most about 1/``SPACING`` of a request's time
    however long the parts list grows. While commits are cheap (a few
    hundred parts) that still means every part as soon as it is in S3.
    """

    SPACING = 20

    def __init__(self) -> None:
        self._done_at = time.monotonic()
        self._cost = 0.0

    def due(self) -> bool:
        return time.monotonic() - self._done_at >= self._cost * self.SPACING

    def timed(self, commit: Callable[[], None]) -> None:
        started = time.monotonic()
        commit()
        self._done_at = time.monotonic()
        self._cost = self._done_at - started


class Receiver:
    def __init__(self, session: TusSession, lease: Lease, backend: S3Backend) -> None:
        self.session = session
        self.lease = lease
        self.backend = backend
        self.tail = open_tail(session)
        self.node = tus_settings.NODE_NAME

    def _commit(self, **fields: Any) -> None:
        fields.setdefault("expires_at", timezone.now() + tus_settings.EXPIRATION)
        self.lease.commit(self.session, **fields)

    def receive(self, body: Body, checksum: Checksum | None) -> None:
        """Apply ``body`` at the session's offset.

        The lease's stop (a handover asked for, the stalled-body rule, the
        lease lost) ends the body early, even a read that blocks: what arrived
        is kept exactly as on a disconnect, and the stop's error is raised.
        """
        session = self.session
        remaining = room(session)
        if body.length is not None and body.length > remaining:
            past = "Upload-Length" if session.length is not None else "the largest upload this server accepts"
            raise TooLarge(f"The body of {body.length} bytes goes past {past}: only {remaining} more bytes fit.")
        if not self.tail.remote and (body.length is None or body.length > 0):
            check_node_room()
        self.tail.check()
        slots.enter(body)
        pipeline = PartPipeline(
            self._send_part, session.part_size, tus_settings.UPLOAD_CONCURRENCY, wait=self.lease.wait_for
        )
        self.lease.watch(body.stall)
        self.lease.on_stop(body.interrupt)
        try:
            self._receive(body, checksum, remaining, pipeline)
        finally:
            slots.leave(body)
            body.close()
            self.lease.unwatch()
            pipeline.close()

    def _receive(self, body: Body, checksum: Checksum | None, remaining: int, pipeline: PartPipeline) -> None:
        session = self.session
        part_size = session.part_size
        kept = session.tail_length
        # The body lands after the old tail's place in a part buffer (see
        # ``PartPipeline.buffer`` for how large); the tail itself is read in
        # only when that buffer becomes a part (or the last bytes). A body that cannot fill a part
        # never reads it: the new bytes are appended after it on disk.
        buffer = pipeline.buffer(None if body.length is None else kept + body.length)
        fill = kept
        tail_loaded = kept == 0

        def load_tail() -> None:
            nonlocal tail_loaded
            if not tail_loaded:
                # The lease must still be ours: once it lapsed, another request
                # may have replaced the tail (see _store_tail).
                self.lease.confirm()
                self.tail.read_into(buffer, kept)
                tail_loaded = True

        hasher = checksum.hasher() if checksum else None
        # Parts in S3 but not yet in the row (all of them until the end with a checksum).
        pending: list[dict[str, Any]] = []
        pacer = _CommitPacer()
        first_number = next_number = len(session.parts) + 1

        def commit_pending() -> None:
            parts = [*session.parts, *pending]
            self._commit(parts=parts, offset=_total(parts))
            pending.clear()

        def accept(part: dict[str, Any]) -> None:
            pending.append(part)
            if not checksum and pacer.due():
                pacer.timed(commit_pending)
            self.lease.beat()

        cap = remaining if body.length is None else min(body.length, remaining)
        chunk = tus_settings.READ_CHUNK_SIZE
        try:
            while body.received < cap:
                want = min(chunk, part_size - fill, cap - body.received)
                # A part that went up while the last bytes were read is
                # committed now, not only when the next part is cut: a slow
                # client would otherwise leave it uncommitted for minutes.
                for part in pipeline.finished():
                    accept(part)
                data = body.read(want)
                self.lease.beat()
                if not data:
                    break
                size = len(data)
                buffer.write(fill, data)
                if hasher:
                    hasher.update(data)
                fill += size
                if fill == part_size:
                    load_tail()
                    self._ensure_multipart()
                    for part in pipeline.submit(next_number, buffer):
                        accept(part)
                    next_number += 1
                    buffer = pipeline.buffer()
                    fill = 0
                if self._must_stop():
                    break
            for part in pipeline.drain():
                accept(part)
        except StorageError:
            # A later part failed: keep the progress of the parts before it
            # (with a checksum nothing of the body is kept).
            if pending and not checksum:
                commit_pending()
            self._forget(pending)
            raise

        # A chunked body ends with b"" (the server delimits it), unless cut.
        whole = body.received == cap or (body.ended and self.lease.stopped is None)
        # Why the body did not arrive whole, if it did not.
        cut: TusError | None = None if whole else (self.lease.stopped or ClientGone())

        if body.length is None and whole and body.received == remaining:
            # A chunked body: anything past what fits is refused.
            if body.read(1):
                raise TooLarge("The body goes past Upload-Length, or past the largest upload this server accepts.")

        if cut is not None and checksum:
            # The checksum cannot be verified, so nothing of this body is kept.
            self._forget(pending)
            raise type(cut)(f"{cut.message} Its Upload-Checksum cannot be verified, so none of its bytes were kept.")
        if checksum and hasher and hasher.digest() != checksum.digest:
            self._forget(pending)
            raise ChecksumMismatch()

        parts = [*session.parts, *pending]
        cut_parts = next_number != first_number
        new_offset = _total(parts) + fill
        if session.length is not None and new_offset == session.length and cut is None:
            if not cut_parts:
                load_tail()
            self.finish(parts, buffer, fill)
            return
        if cut is not None and new_offset == session.offset:
            raise cut
        if pending:
            self._commit(parts=parts, offset=_total(parts))
        if new_offset != session.offset or cut_parts:
            self._ensure_multipart()
            self._store_tail(buffer, fill, 0 if cut_parts else kept)
            self._commit(offset=new_offset, tail_node=self.node)
        else:
            self._commit()
        if cut is not None:
            logger.info("upload %s: body ended early (%s); kept %d bytes", session.id, cut.code, body.received)
            raise cut

    def _forget(self, parts: list[dict[str, Any]]) -> None:
        """Parts this request uploaded that will never be committed (its body
        was refused), so that S3 does not keep (and bill) their bytes until
        the upload expires: the multipart upload is aborted if it holds
        nothing else, otherwise each part is overwritten with nothing (S3
        replaces a part uploaded again under its number; the client's resend
        uploads them once more)."""
        session = self.session
        try:
            if parts and not session.parts and session.offset == 0:
                self.backend.abort(session.key, session.upload_id)
                self._commit(upload_id="")
            for part in parts if session.upload_id else []:
                self.backend.upload_part(session.key, session.upload_id, part["number"], b"")
        except StorageError:
            logger.warning("upload %s: parts of a refused body stay in S3 until it expires", session.id)
        parts.clear()

    def _must_stop(self) -> bool:
        stopped = self.lease.stopped
        if stopped is None:
            return False
        if isinstance(stopped, UploadInterrupted):
            return self.lease.stopped_for() >= HANDOVER_READING
        return True

    def _store_tail(self, part: Part, length: int, unchanged: int) -> None:
        # A request that lost its lease (its process stalled past it) must not
        # write the tail a newer request now owns: the database confirms the
        # lease first, which leaves a whole lease for a local write.
        self.lease.confirm()
        if not self.tail.remote:
            self.tail.store(part, length, unchanged)
            return
        # Keep the lease until the PUT, retries and all, is over, so that no
        # newer request can write the tail before a late retry of this one lands.
        with ThreadPoolExecutor(1, thread_name_prefix="rindle-tus-tail") as executor:
            self.lease.wait_for(executor.submit(self.tail.store, part, length, unchanged))

    def _ensure_multipart(self) -> None:
        session = self.session
        if session.upload_id:
            return
        upload_id = self.backend.create_multipart(session.key, content_type_of(session))
        # The file exists before the row can imply it, so a crash right after
        # this commit is never mistaken for a misrouted resume.
        self.tail.ensure()
        self._commit(upload_id=upload_id, tail_node=self.node)

    def _send_part(self, number: int, part: Part) -> str:
        # Runs on a pipeline thread: S3 only, no database.
        return self.backend.upload_part(self.session.key, self.session.upload_id, number, part.body(part.capacity))

    def finish(self, parts: list[dict[str, Any]], last: Part | None = None, length: int = 0) -> None:
        """Store the first ``length`` bytes of ``last`` as the final bytes
        after ``parts`` and complete the object."""
        session = self.session
        assert session.length is not None
        body = last.body(length) if last is not None and length else b""
        if not session.upload_id and not parts:
            # Small and whole: one PutObject, no multipart upload at all.
            self.backend.put(session.key, body, content_type_of(session))
        else:
            if length:
                self._ensure_multipart()
                number = len(parts) + 1
                etag = self.backend.upload_part(session.key, session.upload_id, number, body)
                self.lease.beat()
                parts = [*parts, {"number": number, "etag": etag, "size": length}]
            if parts != session.parts or session.offset != session.length:
                self._commit(parts=parts, offset=session.length, tail_node=self.node)
            self._complete(parts)
        self._mark_completed()

    def _complete(self, parts: list[dict[str, Any]]) -> None:
        session = self.session
        assert session.length is not None
        try:
            self.backend.complete(session.key, session.upload_id, parts)
        except StorageError as exc:
            # Completed before, but the row was not updated (a crash or a lost
            # response): the object itself tells.
            if not is_no_such_upload(exc):
                self._commit(last_error=str(exc))
                raise
        size = self.backend.size(session.key)
        if size != session.length:
            message = f"The assembled object has {size} bytes, not {session.length}."
            self._commit(state=State.FAILED, last_error=message)
            logger.error("upload %s failed: %s", session.id, message)
            raise StorageError(message)

    def _mark_completed(self) -> None:
        session = self.session
        assert session.length is not None
        self._commit(state=State.COMPLETED, offset=session.length, completed_at=timezone.now(), last_error="")
        self.tail.delete()
        if session.concat != ConcatKind.PARTIAL:
            # A partial upload is material for a final one, not a file of its own.
            transaction.on_commit(lambda: signals.send_finished(session))


def _total(parts: list[dict[str, Any]]) -> int:
    return sum(int(p["size"]) for p in parts)


