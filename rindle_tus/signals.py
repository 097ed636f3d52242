"""Signals for the host application. Each is sent after the database
transaction that recorded the event has committed, so a receiver always sees
the row as the signal describes it.

``upload_created(sender=TusSession, session)``
    A new upload was created (POST).
``upload_finished(sender=TusSession, session, key, size)``
    The object is complete in S3 under ``key`` (full key in the bucket) with
    ``size`` bytes.
``upload_terminated(sender=TusSession, session)``
    The client terminated the upload (DELETE); its storage is being freed.
``tail_missing(sender=TusSession, session, node, tail_node)``
    A resume reached ``node``, which does not hold the tail the row implies;
    the request was refused with ``tus_tail_missing``.

Receivers are called with ``send_robust``: an exception in one is logged on
the ``rindle_tus`` logger and does not stop the others, nor turn the request
that finished an upload into an error (the upload is already safe in S3).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from django.dispatch import Signal

if TYPE_CHECKING:
    from .models import TusSession

logger = logging.getLogger("rindle_tus")

upload_created = Signal()
upload_finished = Signal()
upload_terminated = Signal()
tail_missing = Signal()


def _sender() -> type[TusSession]:
    from .models import TusSession

    return TusSession


def _send(signal: Signal, name: str, session: TusSession, **kwargs: Any) -> None:
    for receiver, result in signal.send_robust(sender=_sender(), session=session, **kwargs):
        if isinstance(result, Exception):
            logger.error(
                "%s receiver %r failed for upload %s", name, receiver, session.pk, exc_info=result
            )


def send_created(session: TusSession) -> None:
    _send(upload_created, "upload_created", session)


def send_finished(session: TusSession) -> None:
    _send(upload_finished, "upload_finished", session, key=session.key, size=session.length)


def send_terminated(session: TusSession) -> None:
    _send(upload_terminated, "upload_terminated", session)


def send_tail_missing(session: TusSession, node: str) -> None:
    _send(tail_missing, "tail_missing", session, node=node, tail_node=session.tail_node)
