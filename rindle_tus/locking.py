"""The per-session lease, and everything that obeys it: the request path,
the reaper and the admin all take, keep, hand over and release it here.

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

import functools
import logging
import operator
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from django.db import connection, connections, transaction
from django.db.models import DateTimeField, ExpressionWrapper, F, Q, QuerySet
from django.db.models.expressions import CombinedExpression
from django.db.models.functions import Now
from django.utils import timezone

from . import metrics
from .conf import tus_settings
from .exceptions import LeaseLost, Locked, TusError, UploadInterrupted, UploadNotFound
from .models import TusSession
from .returning import supported, update_returning

logger = logging.getLogger("rindle_tus")

T = TypeVar("T")

# How often the holder's side looks for release requests and lost leases.
POLL = 0.5
# How often the heartbeat wakes to run the holders' watches (the stalled-body rule).
TICK = 0.1
# The share of a lease within which the database's last word that it is ours
# still stands for ``Lease.confirm``.
FRESH = 1 / 3


def new_token() -> str:
    return secrets.token_hex(16)


def free() -> Q:
    """Rows nobody holds: never leased, released, or lapsed by the database's clock."""
    return Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lte=Now())


def is_leased(session: TusSession, now: datetime | None = None) -> bool:
    """Whether a loaded row looked held, by this node's clock: for display and
    dry runs only. Decisions are taken by the database, through ``free()``."""
    return session.lease_expires_at is not None and session.lease_expires_at > (now or timezone.now())


def _expiry(seconds: float) -> ExpressionWrapper[CombinedExpression]:
    return ExpressionWrapper(Now() + timedelta(seconds=seconds), output_field=DateTimeField())


# -- who holds it --------------------------------------------------------------


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot, or "" if it is
    not running (no such process, or a zombie its parent has not reaped)."""
    stat = _read(f"/proc/{pid}/stat")
    # The command name (field 2) may hold spaces and parentheses; it ends at the last ")".
    fields = stat.rpartition(")")[2].split()
    if len(fields) <= 19 or fields[0] in ("Z", "X"):
        return ""
    return fields[19]


@functools.lru_cache(maxsize=1)
def _machine() -> str:
    """This boot of this machine, and the process id namespace: two processes
    with the same value see each other's process ids."""
    boot = _read("/proc/sys/kernel/random/boot_id")
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""
    return f"{boot}/{namespace}" if boot else ""


def holder_id() -> str:
    """Who holds a lease: node name, machine, process id and start time."""
    return f"{tus_settings.NODE_NAME} {_process(os.getpid())}"


@functools.lru_cache(maxsize=4)
def _process(pid: int) -> str:
    return f"{_machine()} {pid} {_start_time(pid)}"


def holder_gone(holder: str) -> bool:
    """Whether ``holder`` was a process of this machine that no longer runs.
    A holder elsewhere cannot be seen; its lease lapses instead."""
    # Parsed from the right: a node name may hold spaces.
    parts = holder.rsplit(" ", 3)
    if len(parts) != 4 or not parts[1] or parts[1] != _machine() or not parts[2].isdigit() or not parts[3]:
        return False
    return _start_time(int(parts[2])) != parts[3]


def describe_holder(holder: str) -> str:
    parts = holder.rsplit(" ", 3)
    return f"{parts[0]}, process {parts[2]}" if len(parts) == 4 else holder


# -- the lease -----------------------------------------------------------------


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
        self._renewed = now
        self._polled = now
        # When the database last confirmed that the lease is ours (taking it,
        # or a renewal that found it), by this process's clock.
        self._confirmed = now

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
        fields = _holding(token, seconds)
        if not _handover(session_id, wait, arrival, lambda: _seize(session_id, arrival, fields), offset):
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
        fields = _holding(token, seconds)
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
        values = {**_holding(token, seconds), "lease_epoch": F("lease_epoch") + 1}
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
        fields = _holding(token, seconds)
        for name, value in fields.items():
            setattr(session, name, value)
        session.save(force_insert=True)
        _hold(session, fields, seconds)
        return cls._held(session.pk, token, seconds)

    @classmethod
    def _held(cls, session_id: str, token: str, seconds: float) -> Lease:
        lease = cls(session_id, token, seconds, shared=not connection.in_atomic_block)
        heartbeat.add(lease)
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
            _quietly(callback)

    def on_stop(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (from any thread) when the holder must stop, and
        again at every heartbeat tick until it has (so a read that blocks
        later is ended too); at once if it already must."""
        with self._lock:
            self._on_stop.append(callback)
            stopped = self._stopped is not None
        if stopped:
            _quietly(callback)

    def watch(self, check: Callable[[], TusError | None]) -> None:
        """Have the heartbeat call ``check`` every ``TICK``; a reason it returns stops the holder."""
        with self._lock:
            self._watches.append(check)

    def unwatch(self) -> None:
        with self._lock:
            self._watches = []
            self._on_stop = []

    def _run_watches(self) -> None:
        with self._lock:
            watches = list(self._watches)
            callbacks = list(self._on_stop) if self._stopped is not None else []
        for callback in callbacks:
            _quietly(callback)
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
        if now - self._polled >= POLL:
            _poll([self])
        if now - self._renewed >= self.seconds / 3:
            _renew([self])

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
        if started - self._confirmed < self.seconds * FRESH:
            return
        if not _renew_query([self]).update(lease_expires_at=_expiry(self.seconds)):
            self.stop(LeaseLost())
            raise LeaseLost()
        self._renewed = self._confirmed = started

    def wait_for(self, future: Future[T]) -> T:
        """``future.result()`` on the holder's thread, beating while it waits,
        so a slow S3 call never lets the lease go under a live request."""
        while True:
            try:
                return future.result(timeout=min(POLL, self.seconds / 6))
            except FutureTimeout:
                self.beat()

    def _abandoned(self, now: float) -> bool:
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
        heartbeat.remove(self)
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


def arrive(session_id: str) -> int:
    """A request that will write the upload takes its place in line: a new
    ``lease_epoch``, returned as its ``arrival`` for ``Lease.acquire``.

    The newest arrival wins. A request that arrived earlier (one cut by
    the network, reaching its view late) gives way to it instead of taking
    the upload from it, and it asks an earlier request that holds the lease
    to hand over. Taken when the request reaches its view, before its body:
    two requests that read the same epoch could not be told apart.
    """
    rows = TusSession.objects.all()
    if supported(rows.db):
        session = update_returning(rows, session_id, {"lease_epoch": F("lease_epoch") + 1})
        if session is None:
            raise UploadNotFound()
        return session.lease_epoch
    TusSession.objects.filter(pk=session_id).update(lease_epoch=F("lease_epoch") + 1)
    value = TusSession.objects.filter(pk=session_id).values_list("lease_epoch", flat=True).first()
    if value is None:
        raise UploadNotFound()
    return int(value)


def settle(session: TusSession, wait: float | None = None) -> bool:
    """For a HEAD about to answer from ``session`` (just read): have any
    request holding the upload hand it over (waiting up to
    ``RINDLE_TUS_LEASE_WAIT``) and mark the upload answered (a new
    ``lease_epoch``), so that a request that arrived earlier but holds no
    lease yet can no longer change the offset the client resumes from.

    True when ``session`` is still what the row holds (one conditional
    UPDATE: free, and not written since it was read); False when the caller
    must read the row again.
    """
    unchanged = TusSession.objects.filter(
        free(), pk=session.pk, lease_epoch=session.lease_epoch, updated_at=session.updated_at
    )
    if unchanged.update(lease_epoch=F("lease_epoch") + 1):
        return True
    _handover(session.pk, wait, None, lambda: _seize(session.pk, None, {}))
    return False


def _holding(token: str, seconds: float) -> dict[str, Any]:
    """The row fields of a lease held by this process under ``token``."""
    return {
        "lease_token": token,
        "lease_expires_at": _expiry(seconds),
        "lease_holder": holder_id(),
        "lease_release_requested": False,
        "lease_release_offset": None,
    }


def _hold(session: TusSession, fields: dict[str, Any], seconds: float) -> None:
    """``session`` as the row now is, once ``fields`` (``_holding``) are written."""
    for name, value in fields.items():
        setattr(session, name, value)
    # The database's clock set the expiry; this is the loaded row's best guess.
    session.lease_expires_at = timezone.now() + timedelta(seconds=seconds)


def _seize(session_id: str, arrival: int | None, fields: dict[str, Any]) -> bool:
    """One conditional UPDATE: ``fields`` and a new epoch, if nobody holds
    the session (or its holder is gone from this machine) and, with
    ``arrival``, no newer request came first (then UploadInterrupted)."""
    rows = TusSession.objects.filter(pk=session_id)
    current = rows if arrival is None else rows.filter(lease_epoch=arrival)
    update = {**fields, "lease_epoch": F("lease_epoch") + 1}
    if current.filter(free()).update(**update):
        return True
    state = rows.values_list("lease_token", "lease_holder", "lease_epoch").first()
    if state is None:
        raise UploadNotFound()
    token, holder, epoch = state
    if arrival is not None and epoch != arrival:
        raise UploadInterrupted("A newer request for this upload came first; nothing of this one was stored.")
    if token and holder_gone(holder) and current.filter(lease_token=token).update(**update):
        # The holder's process is gone from this machine: its lease could only lapse.
        logger.info("upload %s: took over the lease of %s, which is gone", session_id, describe_holder(holder))
        return True
    return False


def _handover(
    session_id: str, wait: float | None, arrival: int | None, seize: Callable[[], bool], offset: int | None = None
) -> bool:
    """``seize()`` until it succeeds, meanwhile asking whoever holds the
    session to release it (telling it ``offset``, see ``Lease.acquire``);
    False after ``wait`` seconds."""
    if seize():
        return True
    deadline = time.monotonic() + (tus_settings.LEASE_WAIT if wait is None else wait)
    rows = TusSession.objects.filter(pk=session_id)
    asked = ""
    delay = 0.02
    while True:
        held = rows.exclude(free()).values_list("lease_token", "lease_holder").first()
        if held is not None and held[0] and held[0] != asked and not holder_gone(held[1]):
            # Only a holder that took the lease before this request arrived.
            ask = rows if arrival is None else rows.filter(lease_epoch=arrival)
            if ask.filter(lease_token=held[0]).update(lease_release_requested=True, lease_release_offset=offset):
                metrics.handover_asked()
            asked = held[0]
            logger.info("upload %s: asked %s to hand it over", session_id, describe_holder(held[1]))
        if time.monotonic() + delay > deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 1.5, 0.2)
        if seize():
            return True


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
                    **_holding(token, seconds), lease_epoch=F("lease_epoch") + 1
                )
        if not ids:
            return
        after = ids[-1]
        batch = [
            (session, Lease(session.pk, token, seconds, shared=not connection.in_atomic_block))
            for session in TusSession.objects.filter(pk__in=ids, lease_token=token).order_by("pk")
        ]
        for _, lease in batch:
            heartbeat.add(lease)
        handed = 0
        try:
            for item in batch:
                handed += 1
                yield item
        finally:
            for _, lease in batch[handed:]:
                lease.release()


# -- the database work of keeping leases -----------------------------------------


def _renew_query(leases: list[Lease]) -> QuerySet[TusSession]:
    match = functools.reduce(operator.or_, (Q(pk=lease.session_id, lease_token=lease.token) for lease in leases))
    return TusSession.objects.filter(match)


def _renew(leases: list[Lease]) -> None:
    """Push the leases' expiry out; a lease that was lost shows in the next poll."""
    by_seconds: dict[float, list[Lease]] = {}
    for lease in leases:
        by_seconds.setdefault(lease.seconds, []).append(lease)
    for seconds, group in by_seconds.items():
        started = time.monotonic()
        found = _renew_query(group).update(lease_expires_at=_expiry(seconds))
        for lease in group:
            lease._renewed = started
            if found == len(group):
                lease._confirmed = started


def _poll(leases: list[Lease]) -> None:
    """Stop the holders whose lease was taken over or whose release was asked for.

    Only what the row shows counts: a row this connection cannot see (not yet
    committed elsewhere, or deleted) proves nothing.
    """
    now = time.monotonic()
    rows = {
        pk: (token, requested, offset)
        for pk, token, requested, offset in TusSession.objects.filter(
            pk__in=[lease.session_id for lease in leases]
        ).values_list("pk", "lease_token", "lease_release_requested", "lease_release_offset")
    }
    for lease in leases:
        lease._polled = now
        row = rows.get(lease.session_id)
        if row is None:
            continue
        token, requested, offset = row
        if token != lease.token:
            lease.stop(LeaseLost())
        elif requested:
            lease.stop(UploadInterrupted(asked_at=offset))


class Heartbeat:
    """One thread per process that keeps the process's leases alive.

    Every ``TICK`` it runs the holders' watches; every ``POLL`` it looks for
    release requests and lost leases; every third of a lease it renews them
    all in one UPDATE, so the cost per process does not grow with the number
    of uploads it serves. With no lease held it sleeps until one is taken,
    and with none to keep in the database it holds no connection.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._leases: dict[int, Lease] = {}
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._errors = 0

    def add(self, lease: Lease) -> None:
        with self._cond:
            if self._pid != os.getpid():
                # A forked child: the parent's thread and leases are not ours.
                self._pid, self._thread, self._leases = os.getpid(), None, {}
            self._leases[id(lease)] = lease
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="rindle-tus-heartbeat", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def remove(self, lease: Lease) -> None:
        with self._cond:
            self._leases.pop(id(lease), None)
            self._cond.notify_all()

    def held(self) -> list[Lease]:
        with self._cond:
            return list(self._leases.values())

    def _run(self) -> None:
        polled = renewed = 0.0
        while True:
            leases = self.held()
            shared = [lease for lease in leases if lease.shared]
            if not shared:
                # Hold no connection while there is no database work.
                connections.close_all()
                if not leases:
                    with self._cond:
                        while not self._leases:
                            self._cond.wait()
                    continue
            now = time.monotonic()
            for lease in leases:
                _quietly(lease._run_watches)
            try:
                if shared and now - polled >= POLL:
                    polled = now
                    _poll(shared)
                alive = [lease for lease in shared if not lease._abandoned(now)]
                if alive and now - renewed >= min(lease.seconds for lease in alive) / 3:
                    renewed = now
                    _renew(alive)
                self._errors = 0
            except Exception:  # noqa: BLE001  (the next tick tries again, on a new connection)
                self._errors += 1
                log = logger.exception if self._errors in (1, 10, 100) else logger.debug
                log("heartbeat: keeping %d leases alive failed (%d in a row)", len(shared), self._errors)
                connections.close_all()
            with self._cond:
                # Woken early by a release, so the connection goes with the last lease.
                self._cond.wait(TICK)


heartbeat = Heartbeat()


def _quietly(callback: Callable[[], Any]) -> None:
    try:
        callback()
    except Exception:
        logger.exception("rindle_tus: lease callback %r failed", callback)
