"""The per-session lease: the request path, the reaper and the admin all
take, keep and release it here (``Lease``, ``claim``); who holds it is
``holders``, asking a holder to hand over ``handover``, keeping it alive
``heartbeat``.

A lease is a holder token and an expiry in the session's row, written with
conditional UPDATEs and timed by the database's clock (so nodes whose clocks
disagree still agree on it). No transaction is held open while bytes stream.

* Liveness. While the holder's process lives, its heartbeat thread renews
  every lease the process holds, whatever the request thread is doing
  (blocked on a silent socket, waiting for S3). The lease is short
  (``RINDLE_TUS_LEASE_SECONDS``), so a holder that died (SIGKILL, OOM, a lost
  node) frees the session within seconds; one that died on this machine is
  recognised at once by its process id.
* Handover. A request that finds the session leased asks the holder to
  release it (a flag in the row) and waits up to ``RINDLE_TUS_LEASE_WAIT``.
  The holder's heartbeat sees the flag within ``POLL`` seconds and stops the
  holder: a read blocked on the client is ended (``Lease.on_stop``), what
  arrived is kept as on a disconnect, and the lease is released. tusd and
  tus-node-server do this inside one process; here it crosses nodes.
* Fencing. Every write of the row is conditional on the token
  (``Lease.commit``), and the tail is touched only right after a renewal the
  database confirmed (``Lease.confirm``), so a request that lost its lease
  never writes the row or the tail.

A lease taken inside a transaction (a test's, or a caller's ``atomic``) is
invisible to the heartbeat's own connection; the holder's thread then keeps it
alive itself, from ``Lease.beat``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import timedelta
from typing import Any, TypeVar

from django.db import connection, transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from . import heartbeat
from .conf import tus_settings
from .exceptions import LeaseLost, Locked, TusError
from .handover import arrive, hand_over, seize
from .heartbeat import POLL, quietly
from .holders import expiry, free, holding, new_token
from .models import TusSession
from .returning import supported, update_returning

T = TypeVar("T")

# The share of a lease within which the database's last word that it is ours
# still stands for ``Lease.confirm``.
FRESH = 1 / 3


class Lease:
    """One request's hold on one session."""

    def __init__(self, session_id: str, token: str, seconds: float, *, shared: bool = True) -> None:
        self.session_id = session_id
        self.token = token
        self.seconds = seconds
        # False when taken inside a transaction: other connections cannot see it.
        self.shared = shared
        self._lock = threading.Lock()
        self._stopped: TusError | None = None
        self._stopped_at = 0.0
        self._on_stop: list[Callable[[], None]] = []
        self._watches: list[Callable[[], TusError | None]] = []
        # Row fields written with the lease's next write (``stage``).
        self._staged: dict[str, Any] = {}
        # What to do once the staged fields are in the row.
        self._then: list[Callable[[], None]] = []
        self._released = False
        now = time.monotonic()
        self._seen = now
        self.renewed = now
        self.polled = now
        # When the database last confirmed that the lease is ours (taking it,
        # or a renewal that found it), by this process's clock.
        self.confirmed = now

    def __repr__(self) -> str:
        return f"<Lease {self.session_id} {self.token[:8]}>"

    # -- taking it -----------------------------------------------------------

    @classmethod
    def acquire(
        cls, session_id: str, *, wait: float | None = None, arrival: int | None = None, offset: int | None = None
    ) -> Lease:
        """Take the session's lease.

        If another request holds it, ask that request to release it and wait
        up to ``wait`` seconds (``RINDLE_TUS_LEASE_WAIT`` by default) for it
        to; then answer 423.

        ``arrival`` is the request's place in line (``arrive``). If a newer
        request has arrived, taken the lease or had a HEAD answered since,
        this one gives way (400 ``upload_interrupted``) instead of taking the
        upload over from it: a request cut by the network can reach its view
        after the client's retry.

        ``offset`` is where this request's body starts (a PATCH's
        ``Upload-Offset``), told to the holder it asks to hand over: a holder
        that started there and stored nothing yet keeps nothing, since this
        request sends the same bytes again.
        """
        seconds = tus_settings.LEASE_SECONDS
        token = new_token()
        fields = holding(token, seconds)
        if not hand_over(session_id, wait, arrival, lambda: seize(session_id, arrival, fields), offset):
            raise Locked()
        return cls._held(session_id, token, seconds)

    @classmethod
    def take(cls, session: TusSession, *, offset: int | None = None) -> Lease:
        """A writing request's way in, from the row it has just read.

        When nobody holds the upload and the row is still what was read (its
        epoch and ``updated_at``, as ``settle`` checks), one conditional
        UPDATE both takes the request's place in line and the lease, and
        ``session`` needs no second read. Otherwise the request arrives
        (``arrive``), takes the lease as ``acquire`` does (asking a holder to
        hand over, ``offset`` as there) and reads the row again.
        """
        seconds = tus_settings.LEASE_SECONDS
        token = new_token()
        fields = holding(token, seconds)
        unchanged = TusSession.objects.filter(
            free(), pk=session.pk, lease_epoch=session.lease_epoch, updated_at=session.updated_at
        )
        if unchanged.update(**fields, lease_epoch=F("lease_epoch") + 1):
            _hold(session, fields, seconds)
            session.lease_epoch += 1
            return cls._held(session.pk, token, seconds)
        lease = cls.acquire(session.pk, arrival=arrive(session.pk), offset=offset)
        session.refresh_from_db()
        return lease

    @classmethod
    def take_where(cls, rows: QuerySet[TusSession], session_id: str) -> tuple[TusSession, Lease] | None:
        """A writing request's way in with no read before it: one statement
        takes the lease and a new place in line on the row, if nobody holds
        it and it meets the conditions of ``rows``, and returns the row as it
        now is (``update_returning``). None if the row is held, does not meet
        them or is not there, and where the database cannot return a row
        from an UPDATE: the caller then reads it and goes in by ``take``.

        The request holds the upload before its view has looked at the row:
        only a view whose every refusal any client could also have made
        without being refused may go in this way (no permission hook)."""
        if not supported(rows.db):
            return None
        seconds = tus_settings.LEASE_SECONDS
        token = new_token()
        values = {**holding(token, seconds), "lease_epoch": F("lease_epoch") + 1}
        session = update_returning(rows.filter(free()), session_id, values)
        if session is None:
            return None
        return session, cls._held(session.pk, token, seconds)

    @classmethod
    def create(cls, session: TusSession) -> Lease:
        """Insert the new row ``session``, held by this request from its
        first moment: the request that creates an upload with a body writes
        it with no statement spent on taking the lease, and no other request
        (one told the URL early, the draft's 104) can take it first."""
        seconds = tus_settings.LEASE_SECONDS
        token = new_token()
        fields = holding(token, seconds)
        for name, value in fields.items():
            setattr(session, name, value)
        session.save(force_insert=True)
        _hold(session, fields, seconds)
        return cls._held(session.pk, token, seconds)

    @classmethod
    def _held(cls, session_id: str, token: str, seconds: float) -> Lease:
        lease = cls(session_id, token, seconds, shared=not connection.in_atomic_block)
        heartbeat.thread.add(lease)
        return lease

    # -- the holder's side -----------------------------------------------------

    @property
    def stopped(self) -> TusError | None:
        """Why the holder must stop (the error to answer with), or None."""
        return self._stopped

    def stopped_for(self) -> float:
        """Seconds since the holder was asked to stop (0 if it was not)."""
        return time.monotonic() - self._stopped_at if self._stopped is not None else 0.0

    def stop(self, reason: TusError) -> None:
        """Ask the holder to stop: the first reason stands. Ends a read that
        blocks (through ``on_stop``). Safe from any thread."""
        with self._lock:
            if self._stopped is not None:
                return
            self._stopped = reason
            self._stopped_at = time.monotonic()
            callbacks = list(self._on_stop)
        for callback in callbacks:
            quietly(callback)

    def on_stop(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (from any thread) when the holder must stop, and
        again at every heartbeat tick until it has (so a read that blocks
        later is ended too); at once if it already must."""
        with self._lock:
            self._on_stop.append(callback)
            stopped = self._stopped is not None
        if stopped:
            quietly(callback)

    def watch(self, check: Callable[[], TusError | None]) -> None:
        """Have the heartbeat call ``check`` every ``TICK``; a reason it returns stops the holder."""
        with self._lock:
            self._watches.append(check)

    def unwatch(self) -> None:
        with self._lock:
            self._watches = []
            self._on_stop = []

    def run_watches(self) -> None:
        with self._lock:
            watches = list(self._watches)
            callbacks = list(self._on_stop) if self._stopped is not None else []
        for callback in callbacks:
            quietly(callback)
        for check in watches:
            reason = check()
            if reason is not None:
                self.stop(reason)

    def beat(self) -> None:
        """The holder's thread is alive and working; call it often. It does
        the heartbeat's database work itself for a lease the heartbeat cannot see."""
        now = time.monotonic()
        self._seen = now
        if self.shared:
            return
        if now - self.polled >= POLL:
            heartbeat.poll([self])
        if now - self.renewed >= self.seconds / 3:
            heartbeat.renew([self])

    def confirm(self) -> None:
        """Make sure the database agrees that the lease is ours, with most of
        a lease still ahead: called right before touching the tail, which a
        newer holder may own.

        The lease is renewed now unless the database confirmed it within the
        last ``FRESH`` of a lease (taking it, or a renewal that found it):
        then at least the rest of it is still ahead, and nobody can have
        taken it (a live holder's lease only lapses), so a request that is
        quick about its body spends no statement here."""
        if isinstance(self._stopped, LeaseLost):
            raise LeaseLost()
        started = time.monotonic()
        if started - self.confirmed < self.seconds * FRESH:
            return
        if not heartbeat.renew_query([self]).update(lease_expires_at=expiry(self.seconds)):
            self.stop(LeaseLost())
            raise LeaseLost()
        self.renewed = self.confirmed = started

    def wait_for(self, future: Future[T]) -> T:
        """``future.result()`` on the holder's thread, beating while it waits,
        so a slow S3 call never lets the lease go under a live request."""
        while True:
            try:
                return future.result(timeout=min(POLL, self.seconds / 6))
            except FutureTimeout:
                self.beat()

    def abandoned(self, now: float) -> bool:
        """Asked to stop, and silent since for longer than a newcomer waits: its
        read could not be ended. Renewing it any longer would wedge the session."""
        return self._stopped is not None and now - max(self._stopped_at, self._seen) > tus_settings.LEASE_WAIT

    # -- writing under it ----------------------------------------------------

    def commit(self, session: TusSession, **fields: Any) -> None:
        """Write ``fields`` (and any staged ones) to the row only while this
        lease holds it: one conditional UPDATE, so a request whose lease was
        taken over can never overwrite the newer holder's bookkeeping."""
        fields = {**self._staged, **fields}
        fields.setdefault("updated_at", timezone.now())
        if TusSession.objects.filter(pk=session.pk, lease_token=self.token).update(**fields) != 1:
            self.stop(LeaseLost())
            raise LeaseLost()
        self._staged = {}
        for name, value in fields.items():
            setattr(session, name, value)
        self._written()

    def stage(self, session: TusSession, *, then: Callable[[], None] | None = None, **fields: Any) -> None:
        """``commit`` with the lease's next write instead of a statement of
        its own: the next ``commit``, or at the latest ``release``, which is
        still before the request answers. For a request's last write: the
        row is held until then, so no other request can read it in between
        (a HEAD asks the holder to hand over first). ``then`` runs once the
        fields are in the row (never, if that write fails)."""
        fields.setdefault("updated_at", timezone.now())
        self._staged.update(fields)
        if then is not None:
            self._then.append(then)
        for name, value in fields.items():
            setattr(session, name, value)

    def _written(self) -> None:
        callbacks, self._then = self._then, []
        for callback in callbacks:
            callback()

    def release(self, **fields: Any) -> None:
        """Give the session back (once: a second call does nothing); ``fields``
        and any staged ones are written in the same conditional UPDATE
        (LeaseLost if the lease was no longer ours)."""
        if self._released:
            return
        self._released = True
        heartbeat.thread.remove(self)
        self.unwatch()
        fields = {**self._staged, **fields}
        self._staged = {}
        updated = TusSession.objects.filter(pk=self.session_id, lease_token=self.token).update(
            lease_token="",
            lease_expires_at=None,
            lease_holder="",
            lease_release_requested=False,
            lease_release_offset=None,
            **fields,
        )
        if fields and updated != 1:
            raise LeaseLost()
        self._written()


def _hold(session: TusSession, fields: dict[str, Any], seconds: float) -> None:
    """``session`` as the row now is, once ``fields`` (``_holding``) are written."""
    for name, value in fields.items():
        setattr(session, name, value)
    # The database's clock set the expiry; this is the loaded row's best guess.
    session.lease_expires_at = timezone.now() + timedelta(seconds=seconds)


def claim(candidates: QuerySet[TusSession], size: int) -> Iterator[tuple[TusSession, Lease]]:
    """The reaper's way in: claim free candidates a batch at a time, in id
    order, and yield each with its lease (the caller releases it).

    The claiming UPDATE repeats the candidates' conditions, so a row that
    changed since it was selected is left alone, and rows another reaper is
    claiming are skipped (``skip_locked``). Claimed rows are kept alive by the
    heartbeat until they are handled; any not handed out are released.
    """
    after = ""
    while True:
        seconds = tus_settings.LEASE_SECONDS
        token = new_token()
        with transaction.atomic():
            ids = list(
                candidates.filter(free(), pk__gt=after)
                .order_by("pk")
                .select_for_update(skip_locked=True)
                .values_list("pk", flat=True)[:size]
            )
            if ids:
                candidates.filter(free(), pk__in=ids).update(
                    **holding(token, seconds), lease_epoch=F("lease_epoch") + 1
                )
        if not ids:
            return
        after = ids[-1]
        batch = [
            (session, Lease(session.pk, token, seconds, shared=not connection.in_atomic_block))
            for session in TusSession.objects.filter(pk__in=ids, lease_token=token).order_by("pk")
        ]
        for _, lease in batch:
            heartbeat.thread.add(lease)
        handed = 0
        try:
            for item in batch:
                handed += 1
                yield item
        finally:
            for _, lease in batch[handed:]:
                lease.release()
