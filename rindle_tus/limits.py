"""The server's bounds on what a client may make it hold, whatever the
client declares: one definition of each, used by every path into storage
(creation, PATCH, deferred lengths, concatenation).

``RINDLE_TUS_MAX_BODIES`` is enforced where bodies are read (``body.slots``).
"""

from __future__ import annotations

from typing import Any

from .conf import S3_MAX_OBJECT_SIZE, S3_MAX_PARTS, tus_settings
from .exceptions import NodeFull, TooLarge, TooManyUploads
from .models import TusSession
from .storage.folder import tails_usage


def max_size() -> int:
    """The largest upload accepted: ``RINDLE_TUS_MAX_SIZE``, never past S3's own limit."""
    configured = tus_settings.MAX_SIZE
    return S3_MAX_OBJECT_SIZE if configured is None else min(configured, S3_MAX_OBJECT_SIZE)


def largest(part_size: int | None = None) -> int:
    """The largest upload accepted with this part size: its parts can hold
    no more than 10,000 of it."""
    return max_size() if part_size is None else min(max_size(), part_size * S3_MAX_PARTS)


def check_length(length: int, part_size: int | None = None, *, what: str | None = None) -> None:
    """A declared length (``Upload-Length``, a deferred one, a final's sum)."""
    limit = largest(part_size)
    if length > limit:
        what = what or f"Upload-Length {length}"
        raise TooLarge(f"{what} is larger than this server accepts ({limit} bytes).")


def room(session: TusSession) -> int:
    """How many more bytes the upload may take: up to its length, or while
    the length is deferred, up to the largest upload this server accepts.
    Every body stops there."""
    ceiling = session.length if session.length is not None else largest(session.part_size)
    return ceiling - session.offset


def check_body(length: int | None, session: TusSession) -> int:
    """A body's declared length, against the room the upload has left; that room."""
    remaining = room(session)
    if length is not None and length > remaining:
        past = "Upload-Length" if session.length is not None else "the largest upload this server accepts"
        raise TooLarge(f"The body of {length} bytes goes past {past}: only {remaining} more bytes fit.")
    return remaining


def check_append(length: int | None) -> None:
    """``RINDLE_TUS_MAX_APPEND_SIZE``: the largest body one request may carry
    (announced to draft clients as ``max-append-size``)."""
    limit = tus_settings.MAX_APPEND_SIZE
    if limit is not None and length is not None and length > limit:
        raise TooLarge(f"The body of {length} bytes is larger than one request may carry here ({limit} bytes).")


def check_unfinished(user: Any, client: str) -> None:
    """``RINDLE_TUS_MAX_UNFINISHED``: a user (or a signed-out client) holds at
    most that many receiving uploads that have not expired."""
    limit = tus_settings.MAX_UNFINISHED
    if limit is None:
        return
    held = TusSession.objects.unexpired()
    if getattr(user, "is_authenticated", False):
        held = held.filter(created_by=user)
    else:
        held = held.filter(created_by=None, client=client)
    if held[:limit].count() >= limit:
        raise TooManyUploads(
            f"You have {limit} unfinished uploads, as many as this server allows: finish or delete one first, "
            "or wait until they expire."
        )


def check_node_room() -> None:
    """``RINDLE_TUS_MAX_TAIL_BYTES``: refuse to buffer more on this node's
    disk once its tails add up to that (507, the client retries later)."""
    limit = tus_settings.MAX_TAIL_BYTES
    if limit is None:
        return
    used = tails_usage()
    if used >= limit:
        raise NodeFull(f"The tails on this node hold {used} bytes, as many as RINDLE_TUS_MAX_TAIL_BYTES allows.")
