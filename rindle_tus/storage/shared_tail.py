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

from ..exceptions import StorageError
from ..models import TusSession
from .s3 import S3Backend, s3_error_code, s3_errors
from .tail import raise_tail_missing

TAIL_FOLDER = ".tails/"


def tus_tail_key(session_id: str, backend: S3Backend) -> str:
    """The one place a shared tail's key is computed (the id base64url-encoded)."""
    name = base64.urlsafe_b64encode(session_id.encode("utf-8")).rstrip(b"=").decode("ascii")
    return f"{backend.prefix}{TAIL_FOLDER}{name}.tail"


class S3Tail:
    # A write is a PUT that, boto3's retries included, can outlast a lease.
    remote = True

    def __init__(self, session: TusSession, backend: S3Backend | None = None) -> None:
        self.session = session
        self.backend = backend or S3Backend()
        self.key = tus_tail_key(session.id, self.backend)
        self._data: bytes | None = None

    def size(self) -> int | None:
        try:
            with s3_errors("read the tail's size"):
                response = self.backend.client.head_object(Bucket=self.backend.bucket, Key=self.key)
        except StorageError as exc:
            if _not_found(exc):
                return None
            raise
        return int(response["ContentLength"])

    def exists(self) -> bool:
        return self.size() is not None

    def check(self) -> None:
        expected = self.session.tail_length
        if expected == 0:
            return
        try:
            with s3_errors("read the tail"):
                body = self.backend.client.get_object(Bucket=self.backend.bucket, Key=self.key)["Body"]
                data = body.read()
        except StorageError as exc:
            if _not_found(exc):
                raise_tail_missing(self.session, "the shared tail object is absent")
            raise
        if len(data) < expected:
            detail = f"the shared tail holds {len(data)} bytes but the upload implies {expected}"
            raise_tail_missing(self.session, detail)
        self._data = data[:expected]

    def read_into(self, buffer: memoryview) -> int:
        wanted = len(buffer)
        if wanted == 0:
            return 0
        if self._data is None or len(self._data) < wanted:
            raise_tail_missing(self.session, "the shared tail was not read before use")
        buffer[:wanted] = self._data[:wanted]
        return wanted

    def store(self, data: memoryview, unchanged: int) -> None:
        """Replace the object; its first ``unchanged`` bytes come from what
        ``check`` read (the caller may not have loaded them into ``data``)."""
        if not len(data):
            # An empty tail implies nothing; whatever the object holds is debris.
            return
        if unchanged:
            if self._data is None or len(self._data) < unchanged:
                raise_tail_missing(self.session, "the shared tail was not read before use")
            body = self._data[:unchanged] + bytes(data[unchanged:])
        else:
            body = bytes(data)
        with s3_errors("store the tail"):
            self.backend.client.put_object(Bucket=self.backend.bucket, Key=self.key, Body=body)

    def ensure(self) -> None:
        """Nothing to prepare: a missing object with an empty tail is consistent."""

    def delete(self) -> None:
        with s3_errors("delete the tail"):
            self.backend.client.delete_object(Bucket=self.backend.bucket, Key=self.key)


def _not_found(exc: StorageError) -> bool:
    return s3_error_code(exc) in ("404", "NoSuchKey", "NotFound")
