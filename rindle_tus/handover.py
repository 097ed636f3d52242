"""Taking an upload from whoever holds it, and the requests' place in line.

A request that finds the upload held asks the holder to hand it over (a
flag in the row, ``lease_release_requested``, which the holder's heartbeat
sees) and takes the lease once it is free (``seize``); a holder that died on
this machine is taken over at once. Each writing request first takes its
place in line (``arrive``, a new ``lease_epoch``), so a request cut by the
network that reaches its view late gives way to the client's retry instead
of taking the upload from it; a HEAD marks the upload answered (``settle``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from django.db.models import F

from . import metrics
from .conf import tus_settings
from .exceptions import UploadInterrupted, UploadNotFound
from .holders import describe_holder, free, holder_gone
from .models import TusSession
from .returning import supported, update_returning

logger = logging.getLogger("rindle_tus")


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
    hand_over(session.pk, wait, None, lambda: seize(session.pk, None, {}))
    return False


def seize(session_id: str, arrival: int | None, fields: dict[str, Any]) -> bool:
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


def hand_over(
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
