"""The shared tail store (``RINDLE_TUS_TAIL_STORE = "s3"``): the tail is an
object in the upload's bucket, so any node can resume any upload.

It keeps the same invariant as the node-local tail (the first
``tail_length`` bytes are the upload's bytes ``[committed, offset)``), at the
price of S3 round trips per PATCH: a GET of the tail when one is buffered and
a PUT of the new remainder. With the tail empty (at a part boundary) neither
is needed.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator

from ..exceptions import StorageError
from .base import TailMissing
from .buffers import COPY, Part, new_part
from .s3 import S3Backend, s3_error_code

TAIL_FOLDER = ".tails/"


def tus_tail_key(session_id: str, backend: S3Backend) -> str:
    """The one place a shared tail's key is computed (the id base64url-encoded)."""
    name = base64.urlsafe_b64encode(session_id.encode("utf-8")).rstrip(b"=").decode("ascii")
    return f"{backend.prefix}{TAIL_FOLDER}{name}.tail"


class S3Tail:
    """One upload's tail as an object, written and read through ``S3Backend``
    (so the storage's parameters, encryption included, apply to it)."""

    # A write is a PUT that, boto3's retries included, can outlast a lease.
    remote = True

    def __init__(self, session_id: str, backend: S3Backend | None = None) -> None:
        self.backend = backend or S3Backend()
        self.key = tus_tail_key(session_id, self.backend)
        self._data: Part | None = None

    def size(self) -> int | None:
        try:
            return self.backend.size(self.key)
        except StorageError as exc:
            if _not_found(exc):
                return None
            raise

    def check(self, expected: int, implied: bool) -> None:
        # An empty tail needs no object: a missing one is consistent.
        if expected == 0:
            return
        # Held in a part buffer (in memory, or a file when large) until used.
        data = new_part(expected, pooled=False)
        got = 0
        try:
            body = self.backend.open(self.key)
            try:
                while got < expected and (chunk := self.backend.read(body, min(COPY, expected - got))):
                    data.write(got, chunk)
                    got += len(chunk)
            finally:
                body.close()
        except StorageError as exc:
            data.close()
            if _not_found(exc):
                raise TailMissing("the shared tail object is absent") from exc
            raise
        if got < expected:
            data.close()
            raise TailMissing(f"the shared tail holds {got} bytes but the upload implies {expected}")
        self._data = data

    def _read(self, length: int) -> Part:
        if self._data is None or self._data.capacity < length:
            raise TailMissing("the shared tail was not read before use")
        return self._data

    def read_into(self, part: Part, length: int) -> None:
        for at, chunk in _positioned(self._read(length).chunks(0, length)):
            part.write(at, chunk)

    def store(self, part: Part, length: int, unchanged: int) -> None:
        """Replace the object with ``part``'s first ``length`` bytes, its
        first ``unchanged`` taken from what ``check`` read (the caller may not
        have loaded them into ``part``)."""
        if not length:
            # An empty tail implies nothing; whatever the object holds is debris.
            return
        whole = part
        if unchanged:
            whole = new_part(length, pooled=False)
            for at, chunk in _positioned(self._read(unchanged).chunks(0, unchanged)):
                whole.write(at, chunk)
            for at, chunk in _positioned(part.chunks(unchanged, length), unchanged):
                whole.write(at, chunk)
        try:
            self.backend.put(self.key, whole.body(length))
        finally:
            if whole is not part:
                whole.close()

    def ensure(self) -> None:
        """Nothing to prepare: a missing object with an empty tail is consistent."""

    def delete(self) -> None:
        self.backend.delete(self.key)


def _positioned(chunks: Iterator[memoryview], at: int = 0) -> Iterator[tuple[int, memoryview]]:
    for chunk in chunks:
        yield at, chunk
        at += len(chunk)


def _not_found(exc: StorageError) -> bool:
    return s3_error_code(exc) in ("404", "NoSuchKey", "NotFound")
