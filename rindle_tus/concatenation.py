"""The concatenation extension: a final upload assembled from finished
partial uploads, server-side with UploadPartCopy where S3 allows it (every
partial but the last at least 5 MiB), by streaming the partials otherwise.

No HTTP here: the views turn the URLs of ``Upload-Concat`` into upload ids
and check the permission hook; this module decides which partials may make
a final upload and assembles it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .body import Body
from .conf import S3_MAX_PART_SIZE, S3_MIN_PART_SIZE
from .exceptions import InvalidRequest
from .models import ConcatKind, State, TusSession
from .receiver import Receiver
from .storage import S3Backend
from .writer import Writer


def partials(
    named: Sequence[tuple[str, str]], user: Any, check: Callable[[TusSession], None]
) -> list[TusSession]:
    """The partial uploads of ``named`` (pairs of URL and upload id, in
    order), each allowed by ``check`` (the permission hook)."""
    found: list[TusSession] = []
    user_pk = getattr(user, "pk", None)
    for url, upload_id in named:
        session = TusSession.objects.filter(pk=upload_id).first()
        if session is None:
            raise InvalidRequest(f"Upload-Concat names {url!r}, which does not exist.")
        if session.concat != ConcatKind.PARTIAL:
            raise InvalidRequest(f"Upload-Concat names {url!r}, which is not a partial upload.")
        # Whatever the permission hook allows, a signed-in user's partial
        # upload is material for that user's final uploads only: a final
        # upload is a copy its creator can download.
        if session.created_by_id is not None and session.created_by_id != user_pk:
            raise InvalidRequest(f"Upload-Concat names {url!r}, which belongs to someone else.")
        check(session)
        if session.state != State.COMPLETED:
            raise InvalidRequest(f"Upload-Concat names {url!r}, which is not finished.")
        if any(p.pk == session.pk for p in found):
            # Copied server-side, one small partial named many times would
            # make an object of any size out of nothing the client sent.
            raise InvalidRequest(f"Upload-Concat names {url!r} more than once.")
        found.append(session)
    return found


def final_length(partials: Sequence[TusSession]) -> int:
    return sum(int(p.length or 0) for p in partials)


def assemble(writer: Writer, partials: Sequence[TusSession]) -> None:
    """Write the final upload of ``writer`` from ``partials``' objects."""
    sources = [p for p in partials if p.length]
    if all(int(p.length or 0) >= S3_MIN_PART_SIZE for p in sources[:-1]):
        writer.copy_parts(sources, _ranges)
    else:
        stream = _Concatenated(writer.backend, [p.key for p in sources])
        Receiver(writer).receive(Body(stream, final_length(sources)), None)


def _ranges(size: int) -> list[tuple[int, int]]:
    """Split ``size`` bytes into near-equal inclusive ranges of at most 5 GiB."""
    count = -(-size // S3_MAX_PART_SIZE)
    step = -(-size // count)
    return [(start, min(start + step, size) - 1) for start in range(0, size, step)]


class _Concatenated:
    """The partial objects, read one after another as one stream."""

    def __init__(self, backend: S3Backend, keys: list[str]) -> None:
        self.backend = backend
        self.keys = list(keys)
        self.body: Any = None

    def read(self, size: int = -1, /) -> bytes:
        while True:
            if self.body is None:
                if not self.keys:
                    return b""
                self.body = self.backend.open(self.keys.pop(0))
            data = self.backend.read(self.body, size)
            if data:
                return data
            self.body.close()
            self.body = None
