"""The heartbeat: one thread per process that keeps the process's leases alive.

While the holder's process lives, its heartbeat renews every lease the
process holds, whatever the request thread is doing (blocked on a silent
socket, waiting for S3), looks for release requests and lost leases, and
runs the holders' watches (the stalled-body rule). The leases it keeps are
``locking.Lease``; it knows them only as ``Kept``.
"""

from __future__ import annotations

import functools
import logging
import operator
import os
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from django.db import connections
from django.db.models import Q, QuerySet

from .exceptions import LeaseLost, TusError, UploadInterrupted
from .holders import expiry
from .models import TusSession

logger = logging.getLogger("rindle_tus")

# How often the holder's side looks for release requests and lost leases.
POLL = 0.5
# How often the heartbeat wakes to run the holders' watches (the stalled-body rule).
TICK = 0.1


class Kept(Protocol):
    """What the heartbeat needs of a lease."""

    session_id: str
    token: str
    seconds: float
    # False when taken inside a transaction: the heartbeat's connection cannot see it.
    shared: bool
    # When, by this process's clock, it was last renewed, confirmed by the database, polled.
    renewed: float
    confirmed: float
    polled: float

    def stop(self, reason: TusError) -> None: ...

    def run_watches(self) -> None: ...

    def abandoned(self, now: float) -> bool: ...


def renew_query(leases: list[Kept]) -> QuerySet[TusSession]:
    match = functools.reduce(operator.or_, (Q(pk=lease.session_id, lease_token=lease.token) for lease in leases))
    return TusSession.objects.filter(match)


def renew(leases: list[Kept]) -> None:
    """Push the leases' expiry out; a lease that was lost shows in the next poll."""
    by_seconds: dict[float, list[Kept]] = {}
    for lease in leases:
        by_seconds.setdefault(lease.seconds, []).append(lease)
    for seconds, group in by_seconds.items():
        started = time.monotonic()
        found = renew_query(group).update(lease_expires_at=expiry(seconds))
        for lease in group:
            lease.renewed = started
            if found == len(group):
                lease.confirmed = started


def poll(leases: list[Kept]) -> None:
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
        lease.polled = now
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
        self._leases: dict[int, Kept] = {}
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._errors = 0

    def add(self, lease: Kept) -> None:
        with self._cond:
            if self._pid != os.getpid():
                # A forked child: the parent's thread and leases are not ours.
                self._pid, self._thread, self._leases = os.getpid(), None, {}
            self._leases[id(lease)] = lease
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="rindle-tus-heartbeat", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def remove(self, lease: Kept) -> None:
        with self._cond:
            self._leases.pop(id(lease), None)
            self._cond.notify_all()

    def held(self) -> list[Kept]:
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
                quietly(lease.run_watches)
            try:
                if shared and now - polled >= POLL:
                    polled = now
                    poll(shared)
                alive = [lease for lease in shared if not lease.abandoned(now)]
                if alive and now - renewed >= min(lease.seconds for lease in alive) / 3:
                    renewed = now
                    renew(alive)
                self._errors = 0
            except Exception:  # noqa: BLE001  (the next tick tries again, on a new connection)
                self._errors += 1
                log = logger.exception if self._errors in (1, 10, 100) else logger.debug
                log("heartbeat: keeping %d leases alive failed (%d in a row)", len(shared), self._errors)
                connections.close_all()
            with self._cond:
                # Woken early by a release, so the connection goes with the last lease.
                self._cond.wait(TICK)


thread = Heartbeat()


def quietly(callback: Callable[[], Any]) -> None:
    try:
        callback()
    except Exception:
        logger.exception("rindle_tus: lease callback %r failed", callback)
