"""Reads one request body into an upload: the PATCH path and its invariant.

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

Write-behind (``write_behind``): at the end of a body that does not end the
upload, up to ``RINDLE_TUS_WRITE_BEHIND`` parts may still be on their way to
S3. They are written to part files of the tail first, the row then counts
them (its offset at the boundary after them), and only then is the tail
file replaced and the request answered; the uploads run on. The next
request commits them in order before its own parts (``_adopt_owed``).

Part commits of step 2 are paced (``_CommitPacer``): a commit rewrites the
row's whole parts list, so with thousands of parts each costs tens of
milliseconds, and parts that finish in quick succession are committed
together. With ``Upload-Checksum`` they wait until the whole body has been
verified. An uploaded part that is never committed is harmless: the client
resumes from the committed offset and the same part number is uploaded again.

This module only reads; every write (row, parts, tail, object) goes through
the ``writer``.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import metrics, pooling, write_behind
from .body import Body, slots
from .conf import tus_settings
from .exceptions import ChecksumMismatch, ClientGone, LeaseLost, StorageError, TooLarge, TusError, UploadInterrupted
from .limits import check_body
from .models import committed
from .pipeline import PartPipeline
from .protocol import Checksum
from .storage.buffers import Part
from .writer import Writer

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


@dataclass
class _Progress:
    """Where one body's read stands."""

    buffer: Part
    # Bytes in ``buffer``: the old tail's place (``kept``) plus what arrived.
    fill: int
    # The committed tail's bytes, not read into ``buffer`` until it becomes a
    # part (or the last bytes): a body that cannot fill a part never reads them.
    kept: int
    first_number: int
    tail_loaded: bool = False
    next_number: int = 0
    # Parts in S3 but not yet in the row (all of them until the end with a checksum).
    pending: list[dict[str, Any]] = field(default_factory=list)

    @property
    def cut_parts(self) -> bool:
        return self.next_number != self.first_number


class Receiver:
    def __init__(self, writer: Writer) -> None:
        self.writer = writer
        self.session = writer.session
        self.lease = writer.lease
        # Where this body starts: the offset a handover may be asked from.
        self.start = writer.session.offset

    def receive(self, body: Body, checksum: Checksum | None) -> None:
        """Apply ``body`` at the session's offset.

        The lease's stop (a handover asked for, the stalled-body rule, the
        lease lost) ends the body early, even a read that blocks: what arrived
        is kept exactly as on a disconnect, and the stop's error is raised.
        """
        session = self.session
        remaining = check_body(body.length, session)
        self.writer.check_tail(body.length is None or body.length > 0)
        slots.enter(body)
        pipeline = PartPipeline(
            self.writer.send_part, session.part_size, tus_settings.UPLOAD_CONCURRENCY, wait=self.lease.wait_for
        )
        self.lease.watch(body.stall)
        self.lease.on_stop(body.interrupt)
        metrics.body_started()
        try:
            self._adopt_owed(pipeline)
            self._receive(body, checksum, remaining, pipeline)
        finally:
            metrics.body_ended()
            slots.leave(body)
            body.close()
            self.lease.unwatch()
            # Owed parts still on their way stay owed whatever became of this
            # body: their uploads run on, for the next request here.
            owed = pipeline.hand_off(adopted_only=True)
            write_behind.hints.give(session.id, {flight.number: flight.future for flight in owed})
            pipeline.close()

    def _adopt_owed(self, pipeline: PartPipeline) -> None:
        """Parts an earlier request left for S3 (write-behind) go first:
        their uploads if they run in this process, else sent from their files."""
        session = self.session
        running = write_behind.hints.take(session.id)
        first = len(session.parts) + 1
        for number in range(first, first + session.owed_parts):
            pipeline.adopt(number, running.get(number), functools.partial(self.writer.send_owed, number))

    def _receive(self, body: Body, checksum: Checksum | None, remaining: int, pipeline: PartPipeline) -> None:
        kept = self.session.tail_remainder
        first = len(self.session.parts) + self.session.owed_parts + 1
        # The body lands after the old tail's place in a part buffer (see
        # ``PartPipeline.buffer`` for how large).
        progress = _Progress(
            buffer=pipeline.buffer(None if body.length is None else kept + body.length),
            fill=kept,
            kept=kept,
            first_number=first,
            tail_loaded=kept == 0,
            next_number=first,
        )
        hasher = checksum.hasher() if checksum else None
        cap = remaining if body.length is None else min(body.length, remaining)
        try:
            self._read(body, cap, progress, pipeline, hasher, paced=not checksum)
        except StorageError:
            # A later part failed: keep the progress of the parts before it
            # (with a checksum nothing of the body is kept).
            if progress.pending and not checksum:
                self._commit_pending(progress)
            self._forget(progress)
            raise
        cut = self._why_cut(body, cap, remaining)
        self._verify(progress, cut, checksum, hasher)
        self._keep(body, progress, cut, pipeline)

    def _read(
        self, body: Body, cap: int, progress: _Progress, pipeline: PartPipeline, hasher: Any, *, paced: bool
    ) -> None:
        """Read until ``cap`` bytes arrived, the body ends or the lease stops
        the request, sending each full buffer as the next part."""
        pacer = _CommitPacer()
        part_size = self.session.part_size
        chunk = tus_settings.READ_CHUNK_SIZE

        def accept(parts: Any) -> None:
            for part in parts:
                progress.pending.append(part)
                # A part an earlier request left for S3 has its bytes in its
                # part file: its commit can wait for this request's next write.
                if paced and part["number"] >= progress.first_number and pacer.due():
                    pacer.timed(lambda: self._commit_pending(progress))
                self.lease.beat()

        while body.received < cap:
            # A part that went up while the last bytes were read is committed
            # now, not only when the next part is cut: a slow client would
            # otherwise leave it uncommitted for minutes.
            accept(pipeline.finished())
            pooling.release()
            data = body.read(min(chunk, part_size - progress.fill, cap - body.received))
            self.lease.beat()
            if not data:
                break
            metrics.received(len(data))
            progress.buffer.write(progress.fill, data)
            if hasher:
                hasher.update(data)
            progress.fill += len(data)
            if progress.fill == part_size:
                self._load_tail(progress)
                self.writer.ensure_multipart()
                accept(pipeline.submit(progress.next_number, progress.buffer))
                progress.next_number += 1
                progress.buffer = pipeline.buffer()
                progress.fill = 0
            if self._must_stop():
                break
        accept(pipeline.drain(keep=self._may_leave_running(body, checksum=not paced)))

    def _may_leave_running(self, body: Body, *, checksum: bool) -> int:
        """How many parts may still be on their way to S3 when this request
        answers (write-behind): none when the body ends the upload, carries a
        checksum (kept whole or not at all) or is resent by its successor."""
        session = self.session
        stopped = self.lease.stopped
        if checksum or not self.writer.writes_behind or isinstance(stopped, LeaseLost) or self._resent(stopped):
            return 0
        if session.length is not None and self.start + body.received >= session.length:
            return 0
        room = write_behind.per_process() - write_behind.hints.running()
        return max(0, min(write_behind.per_upload(), room))

    def _why_cut(self, body: Body, cap: int, remaining: int) -> TusError | None:
        """Why the body did not arrive whole, or None if it did."""
        # A chunked body ends with b"" (the server delimits it), unless cut.
        whole = body.received == cap or (body.ended and self.lease.stopped is None)
        if not whole:
            return self.lease.stopped or ClientGone()
        if body.length is None and body.received == remaining and body.read(1):
            # A chunked body: anything past what fits is refused.
            raise TooLarge("The body goes past Upload-Length, or past the largest upload this server accepts.")
        return None

    def _verify(self, progress: _Progress, cut: TusError | None, checksum: Checksum | None, hasher: Any) -> None:
        """With ``Upload-Checksum``, a body is kept whole or not at all."""
        if checksum is None:
            return
        if cut is not None:
            # The checksum cannot be verified, so nothing of this body is kept.
            self._forget(progress)
            raise type(cut)(f"{cut.message} Its Upload-Checksum cannot be verified, so none of its bytes were kept.")
        if hasher.digest() != checksum.digest:
            self._forget(progress)
            raise ChecksumMismatch()

    def _keep(self, body: Body, progress: _Progress, cut: TusError | None, pipeline: PartPipeline) -> None:
        """Steps 3 and 4 of the invariant, then the cut's error if any."""
        session = self.session
        parts = [*session.parts, *progress.pending]
        # Parts still on their way to S3 (write-behind) count: their bytes are
        # in part files by the time the row says so.
        flights = pipeline.in_flight
        boundary = committed(parts) + len(flights) * session.part_size
        new_offset = boundary + progress.fill
        if session.length is not None and new_offset == session.length and cut is None:
            self._load_tail(progress)
            self.writer.finish(parts, progress.buffer, progress.fill)
            return
        if cut is not None and new_offset == session.offset:
            raise cut
        if self._resent(cut) and session.offset == self.start:
            # The request taking over sends these same bytes again: keeping
            # them would move the offset it resumes from (409 for it).
            self._forget(progress)
            logger.info("upload %s: handed over to a request resending from %d; kept nothing", session.id, self.start)
            raise UploadInterrupted(
                "Another request for this upload resends it from where this one started; it took the upload over."
            )
        if any(flight.part is not None for flight in flights):
            self.writer.owe(flights, parts, boundary)
            progress.pending.clear()
            running = pipeline.hand_off()
            write_behind.hints.give(session.id, {flight.number: flight.future for flight in running})
        if progress.pending and not progress.cut_parts:
            # Only parts an earlier request left: the tail file keeps its bytes.
            self.writer.stage_parts([*session.parts, *progress.pending])
            progress.pending.clear()
        elif progress.pending:
            self._commit_pending(progress)
        if new_offset != session.offset or progress.cut_parts:
            unchanged = 0 if progress.cut_parts else progress.kept
            self.writer.keep_remainder(progress.buffer, progress.fill, unchanged, new_offset)
        else:
            self.writer.stage()
        if cut is not None:
            logger.info("upload %s: body ended early (%s); kept %d bytes", session.id, cut.code, body.received)
            raise cut

    def _commit_pending(self, progress: _Progress) -> None:
        self.writer.commit_parts([*self.session.parts, *progress.pending])
        progress.pending.clear()

    def _forget(self, progress: _Progress) -> None:
        """Nothing of this body is kept: the parts it cut are forgotten. Owed
        parts that S3 now has are committed instead: they are the row's."""
        owed = [part for part in progress.pending if part["number"] < progress.first_number]
        if owed:
            self.writer.commit_parts([*self.session.parts, *owed])
        self.writer.forget([part for part in progress.pending if part["number"] >= progress.first_number])
        progress.pending.clear()

    def _load_tail(self, progress: _Progress) -> None:
        if not progress.tail_loaded:
            self.writer.load_tail(progress.buffer)
            progress.tail_loaded = True

    def _must_stop(self) -> bool:
        stopped = self.lease.stopped
        if stopped is None:
            return False
        if isinstance(stopped, UploadInterrupted) and not self._resent(stopped):
            return self.lease.stopped_for() >= HANDOVER_READING
        return True

    def _resent(self, cut: TusError | None) -> bool:
        """Whether the request this one hands over to sends from where this one started."""
        return isinstance(cut, UploadInterrupted) and cut.asked_at is not None and cut.asked_at == self.start
