"""The one place that changes an upload's bytes and bookkeeping.

Everything that writes an upload's row, its parts, its tail or its object
goes through a ``Writer`` holding the upload's lease: the PATCH path
(``receiver``), creation with a body and empty uploads, concatenation, a
HEAD finishing a pending completion, termination and the reaper. Each step
keeps the crash-safety invariant of ``receiver``'s docstring: bytes are in
S3 or the tail before the row implies them, and a request that lost its
lease writes neither the tail nor the row (``Lease.commit`` and
``Lease.confirm``).

The upload's signals are sent from here too, each after the transaction
that recorded its event.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from django.db import transaction
from django.utils import timezone

from . import metrics, signals, write_behind
from .cleanup import cleanup_steps
from .conf import tus_settings
from .exceptions import StorageError, TusTailMissing
from .limits import check_node_room
from .locking import Lease
from .models import ConcatKind, State, TusSession, committed
from .pipeline import Flight
from .storage import PartFiles, S3Backend, Tail, TailMissing, TailStore, open_tail
from .storage.buffers import Part
from .storage.s3 import is_no_such_upload

logger = logging.getLogger("rindle_tus")


class Writer:
    """Writes one upload under its lease."""

    def __init__(self, session: TusSession, lease: Lease, backend: S3Backend | None = None) -> None:
        self.session = session
        self.lease = lease
        self.backend = backend or S3Backend()
        self.tail: TailStore = open_tail(session.id, self.backend)
        # Parts of the tail waiting for S3 (write-behind): on this node's disk only.
        self.part_files = PartFiles(session.id)
        self.node = tus_settings.NODE_NAME

    @property
    def writes_behind(self) -> bool:
        """Whether a request may answer before S3 has the parts it cut: only
        with the node-local tail, whose disk keeps them meanwhile."""
        return not self.tail.remote and write_behind.per_upload() > 0

    # -- the row ---------------------------------------------------------------

    def commit(self, **fields: Any) -> None:
        """Write ``fields`` under the lease; every write moves the sliding expiry on."""
        fields.setdefault("expires_at", timezone.now() + tus_settings.EXPIRATION)
        self.lease.commit(self.session, **fields)

    def stage(self, *, then: Callable[[], None] | None = None, **fields: Any) -> None:
        """``commit`` with the lease's next write (``Lease.stage``): for the
        last write of a request, which then costs no statement of its own;
        ``then`` runs once the fields are in the row."""
        fields.setdefault("expires_at", timezone.now() + tus_settings.EXPIRATION)
        self.lease.stage(self.session, then=then, **fields)

    def commit_parts(self, parts: list[dict[str, Any]], offset: int | None = None) -> None:
        """Parts now in S3. The offset moves to the boundary after them when
        they reach past it, so the old tail file becomes debris the invariant
        ignores; parts that waited in part files were counted already, and
        their files go. ``offset``: a later boundary (write-behind: parts
        after these are in part files)."""
        started = time.perf_counter()
        before = len(self.session.parts)
        self.commit(parts=parts, offset=max(self.session.offset, committed(parts), offset or 0))
        metrics.part_commit(time.perf_counter() - started)
        self._drop_parts([int(part["number"]) for part in parts[before:]])

    def stage_parts(self, parts: list[dict[str, Any]]) -> None:
        """``commit_parts`` for parts that waited in part files (their bytes
        already counted), with the request's last write: their files go once
        it is in the row."""
        numbers = [int(part["number"]) for part in parts[len(self.session.parts) :]]
        self.stage(parts=parts, then=lambda: self._drop_parts(numbers))

    def _drop_parts(self, numbers: list[int]) -> None:
        if not self.tail.remote:
            for number in numbers:
                self.part_files.drop(number)

    def declare_length(self, length: int) -> None:
        self.commit(length=length)

    # -- the tail ----------------------------------------------------------------

    @contextmanager
    def guarded(self) -> Iterator[None]:
        """A tail that does not hold what the row implies fails the request
        loudly (``tus_tail_missing``, logged and signalled), never carries on
        from nothing."""
        try:
            yield
        except TailMissing as exc:
            session = self.session
            logger.error(
                "tus_tail_missing: session=%s node=%s tail_node=%s: %s",
                session.id,
                self.node,
                session.tail_node,
                exc.detail,
            )
            signals.send_tail_missing(session, self.node)
            raise TusTailMissing(session.id, self.node, session.tail_node, exc.detail) from exc

    def check_tail(self, body_may_grow_it: bool) -> None:
        """Before a body is read: the tail holds what the row implies (its
        owed parts whole, and the tail file's remainder), and this node may
        buffer more (``RINDLE_TUS_MAX_TAIL_BYTES``)."""
        session = self.session
        if not self.tail.remote and body_may_grow_it:
            check_node_room()
        with self.guarded():
            if session.implies_tail and session.tail_remainder and isinstance(self.tail, Tail):
                self._restore_tail()
            self.tail.check(session.tail_remainder, session.implies_tail)
            if session.owed_parts:
                if self.tail.remote:
                    raise TailMissing("parts of the tail wait for S3 on the disk of the node that received them")
                first = len(session.parts) + 1
                self.part_files.check(range(first, first + session.owed_parts), session.part_size)

    def _restore_tail(self) -> None:
        """A tail file absent or shorter than the row implies, because a
        request made it the file of the part it starts (``owe``) and stopped
        before the row counted that part: the part file (after the owed
        ones, so not counted) holds the tail's bytes first, and is the tail
        again. Without one, the tail stays missing, for the guard to refuse."""
        session = self.session
        size = self.tail.size()
        if size is not None and size >= session.tail_remainder:
            return
        after_owed = len(session.parts) + session.owed_parts + 1
        if self.part_files.give_back(after_owed):
            logger.warning("upload %s: the tail was in the file of part %d; restored", session.id, after_owed)

    def load_tail(self, part: Part) -> None:
        """Put the tail file's committed bytes at the start of ``part``."""
        # The lease must still be ours: once it lapsed, another request may
        # have replaced the tail (see store_tail).
        self.lease.confirm()
        with self.guarded():
            self.tail.read_into(part, self.session.tail_remainder)

    def store_tail(self, part: Part, length: int, unchanged: int) -> None:
        # A request that lost its lease (its process stalled past it) must not
        # write the tail a newer request now owns: the database confirms the
        # lease first, which leaves a whole lease for a local write.
        self.lease.confirm()
        with self.guarded():
            if not self.tail.remote:
                self.tail.store(part, length, unchanged)
                return
            # Keep the lease until the PUT, retries and all, is over, so that no
            # newer request can write the tail before a late retry of this one lands.
            with ThreadPoolExecutor(1, thread_name_prefix="rindle-tus-tail") as executor:
                self.lease.wait_for(executor.submit(self.tail.store, part, length, unchanged))

    def keep_remainder(self, part: Part, length: int, unchanged: int, new_offset: int) -> None:
        """Step 3 of the invariant: the remainder in the tail, then the offset
        (staged: written with the release, before the request answers)."""
        self.ensure_multipart(stage=True)
        self.store_tail(part, length, unchanged)
        self.stage(offset=new_offset, tail_node=self.node)

    # -- S3 ------------------------------------------------------------------------

    def ensure_multipart(self, *, stage: bool = False) -> None:
        """The upload's multipart upload, created on first need; its id is in
        the row before any part is sent. ``stage``: no part follows in this
        request, so the id may go with its last write (a crash before that
        leaves an upload no row names: an orphan the reaper aborts)."""
        session = self.session
        if session.upload_id:
            return
        upload_id = self.backend.create_multipart(session.key, session.content_type)
        # The tail exists before the row can imply it, so a crash right after
        # this commit is never mistaken for a misrouted resume.
        self.tail.ensure()
        (self.stage if stage else self.commit)(upload_id=upload_id, tail_node=self.node)

    def send_part(self, number: int, part: Part) -> str:
        # Runs on a pipeline thread: S3 only, no database.
        return self.backend.upload_part(self.session.key, self.session.upload_id, number, part.body(part.capacity))

    def send_owed(self, number: int) -> str:
        """Part ``number`` from its part file: one an earlier request left
        for S3 that no upload of this process is sending. Runs on a pipeline
        thread: S3 only, no database."""
        with self.part_files.open(number) as body:
            return self.backend.upload_part(self.session.key, self.session.upload_id, number, body)

    def owe(self, flights: list[Flight], parts: list[dict[str, Any]], boundary: int) -> None:
        """Write-behind: ``flights`` go on to S3 after the request answers.
        Those this request cut wait in part files, fsynced, before the row
        counts them: ``parts`` (the ones S3 has) and the offset at
        ``boundary``, past every part in flight, so the tail file holds no
        byte the row counts and may be replaced. Only then are the uploads
        left running, as hints for this upload's next request here."""
        self.lease.confirm()
        session = self.session
        after_owed = len(session.parts) + session.owed_parts + 1
        with self.guarded():
            for flight in flights:
                if flight.part is None:
                    continue
                if flight.number == after_owed and session.tail_remainder and isinstance(self.tail, Tail):
                    # Its first bytes are the tail file's: that file becomes the part file.
                    path = self.part_files.path(flight.number)
                    self.tail.into_part(flight.part, flight.size, session.tail_remainder, path)
                else:
                    self.part_files.store(flight.number, flight.part, flight.size)
            self.part_files.sync()
        if parts != self.session.parts:
            self.commit_parts(parts, boundary)
        else:
            self.commit(offset=boundary)

    def copy_parts(self, sources: list[TusSession], ranges: Callable[[int], list[tuple[int, int]]]) -> None:
        """A final upload made of ``sources``' objects, copied server-side."""
        final = self.session
        if not sources:
            self.finish([])
            return
        upload_id = self.backend.create_multipart(final.key, final.content_type)
        self.commit(upload_id=upload_id)
        parts: list[dict[str, Any]] = []
        for source in sources:
            for first, last in ranges(int(source.length or 0)):
                number = len(parts) + 1
                etag = self.backend.upload_part_copy(final.key, upload_id, number, source.key, first, last)
                parts.append({"number": number, "etag": etag, "size": last - first + 1})
                self.lease.beat()
        self.finish(parts)

    def forget(self, parts: list[dict[str, Any]]) -> None:
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
                self.commit(upload_id="")
            for part in parts if session.upload_id else []:
                self.backend.upload_part(session.key, session.upload_id, part["number"], b"")
        except StorageError:
            logger.warning("upload %s: parts of a refused body stay in S3 until it expires", session.id)
        parts.clear()

    # -- completion ----------------------------------------------------------------

    def finish(self, parts: list[dict[str, Any]], last: Part | None = None, length: int = 0) -> None:
        """Store the first ``length`` bytes of ``last`` as the final bytes
        after ``parts`` and complete the object."""
        session = self.session
        assert session.length is not None
        body = last.body(length) if last is not None and length else b""
        if not session.upload_id and not parts:
            # Small and whole: one PutObject, no multipart upload at all.
            self.backend.put(session.key, body, session.content_type)
        else:
            if length:
                self.ensure_multipart()
                number = len(parts) + 1
                etag = self.backend.upload_part(session.key, session.upload_id, number, body)
                self.lease.beat()
                parts = [*parts, {"number": number, "etag": etag, "size": length}]
            if parts != session.parts or session.offset != session.length:
                self.commit(parts=parts, offset=session.length, tail_node=self.node)
            self._complete(parts)
        self._mark_completed()

    def finish_pending(self) -> None:
        """Every byte is committed in parts but completing the object failed
        earlier: complete it now."""
        self.finish(self.session.parts)

    def _complete(self, parts: list[dict[str, Any]]) -> None:
        session = self.session
        assert session.length is not None
        try:
            self.backend.complete(session.key, session.upload_id, parts)
        except StorageError as exc:
            # Completed before, but the row was not updated (a crash or a lost
            # response): the object itself tells.
            if not is_no_such_upload(exc):
                self.commit(last_error=str(exc))
                raise
        size = self.backend.size(session.key)
        if size != session.length:
            message = f"The assembled object has {size} bytes, not {session.length}."
            self.commit(state=State.FAILED, last_error=message)
            logger.error("upload %s failed: %s", session.id, message)
            raise StorageError(message)

    def _mark_completed(self) -> None:
        """The object is whole: the row says so with the request's last write
        (the release), and only once it does are the tail and part files
        dropped and the host told. A crash before that write leaves a row
        every byte of which the object already holds: the next HEAD or the
        reaper completes it again (``finish_pending``), or a client that
        resends a small upload puts the same object again."""
        session = self.session
        assert session.length is not None
        self.stage(
            state=State.COMPLETED,
            offset=session.length,
            completed_at=timezone.now(),
            last_error="",
            then=self._completed,
        )

    def _completed(self) -> None:
        session = self.session
        self.tail.delete()
        self._drop_part_files()
        if session.concat != ConcatKind.PARTIAL:
            # A partial upload is material for a final one, not a file of its own.
            transaction.on_commit(lambda: signals.send_finished(session))

    def _drop_part_files(self) -> None:
        write_behind.hints.forget(self.session.id)
        if not self.tail.remote:
            for path in self.part_files.paths():
                path.unlink(missing_ok=True)

    # -- the end of an upload --------------------------------------------------------

    def terminate(self) -> None:
        """Mark the upload terminated, then free its storage.

        The row changes first, so no request can resume it while storage is
        freed; a clean-up step that fails is recorded in ``last_error`` and
        retried by the reaper.
        """
        session = self.session
        # last_error now means "clean-up pending" (what the reaper retries), so
        # an earlier error (a failed upload's) is cleared.
        self.lease.commit(session, state=State.TERMINATED, last_error="")
        transaction.on_commit(lambda: signals.send_terminated(session))
        write_behind.hints.forget(session.id)
        failures = (step.attempt(self.backend) for step in cleanup_steps(session, self.backend))
        errors = [str(exc) for exc in failures if exc is not None]
        if errors:
            logger.warning("upload %s terminated; clean-up left for the reaper: %s", session.id, errors)
            self.lease.commit(session, last_error="; ".join(errors))


def announce_created(session: TusSession) -> None:
    transaction.on_commit(lambda: signals.send_created(session))


def complete_empty(session: TusSession, backend: S3Backend) -> None:
    """``Upload-Length: 0``: the upload is whole at creation (no lease: no
    other request can know of it yet)."""
    backend.put(session.key, b"", None)
    TusSession.objects.filter(pk=session.pk).update(state=State.COMPLETED, completed_at=timezone.now())
    session.state = State.COMPLETED
    transaction.on_commit(lambda: signals.send_finished(session))
