"""The bucket tried for real, with the storage's own credentials and
parameters: reachable, writable, multipart allowed, objects readable and
deletable (``manage.py rindle_tus_doctor``, ``check --deploy``)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

from ..conf import tus_settings
from ..exceptions import StorageError
from .s3 import REFUSALS, S3Backend, s3_error_code

PROBE = b"rindle_tus doctor probe\n"
# A HEAD has no body, so S3 answers it with the status for a code.
_HEAD_CODES = {"404": "NoSuchBucket", "NotFound": "NoSuchBucket", "403": "AccessDenied", "Forbidden": "AccessDenied"}


@dataclass
class Finding:
    name: str
    ok: bool
    detail: str

    def __str__(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'}  {self.name}: {self.detail}"


def probe_bucket() -> list[Finding]:
    """The bucket's steps (``manage.py rindle_tus_doctor`` and ``check --deploy``)."""
    return _BucketProbe(S3Backend()).run()


class _BucketProbe:
    """One small object through the storage, as an upload makes it: a
    multipart upload of one part, read back, then deleted."""

    def __init__(self, backend: S3Backend) -> None:
        self.backend = backend
        self.endpoint = backend.client.meta.endpoint_url
        self.where = f"bucket {backend.bucket!r} at {self.endpoint}"
        self.key = f"{backend.prefix}rindle-tus-doctor-{uuid.uuid4().hex}"
        self.upload_id = ""

    def run(self) -> list[Finding]:
        findings: list[Finding] = []
        try:
            for name, action in (("bucket", self.reach), ("multipart upload", self.multipart), ("read", self.read)):
                findings.append(self.step(name, action))
                if not findings[-1].ok:
                    break
        finally:
            self.abort()
        if any(f.name == "multipart upload" and f.ok for f in findings):
            findings.append(self.step("delete", self.delete))
        if tus_settings.TAIL_STORE == "s3" and all(f.ok for f in findings):
            findings.append(Finding("shared tail store", True, "its tail objects go to the same bucket, tried above"))
        return findings

    def step(self, name: str, action: Callable[[], str]) -> Finding:
        try:
            return Finding(name, True, action())
        except StorageError as exc:
            code = s3_error_code(exc)
            code = _HEAD_CODES.get(code or "", code)
            cause = f"{code}: {REFUSALS[code]}" if code in REFUSALS else str(exc.__cause__ or exc)
            return Finding(name, False, f"{self.where}: {cause}")

    def reach(self) -> str:
        try:
            self.backend.head_bucket()
        except StorageError as exc:
            if _HEAD_CODES.get(s3_error_code(exc) or "") != "AccessDenied":
                raise
            # HeadBucket needs s3:ListBucket, which uploads never use: the
            # steps after this one try what they do use.
            return f"{self.where} answers, but refuses HeadBucket (no s3:ListBucket, which uploads do not need)"
        return f"{self.where} answers these credentials"

    def multipart(self) -> str:
        self.upload_id = self.backend.create_multipart(self.key, "text/plain")
        etag = self.backend.upload_part(self.key, self.upload_id, 1, PROBE)
        self.backend.complete(self.key, self.upload_id, [{"number": 1, "etag": etag}])
        self.upload_id = ""
        return f"a multipart upload to {self.key} completed"

    def read(self) -> str:
        data = self.backend.read(self.backend.open(self.key), len(PROBE) + 1)
        if data != PROBE:
            raise StorageError(f"the object read back holds {len(data)} bytes, not the {len(PROBE)} written")
        return "the object reads back whole"

    def delete(self) -> str:
        self.backend.delete(self.key)
        return "the probe object was deleted"

    def abort(self) -> None:
        """A multipart upload started and not completed is aborted, not left behind."""
        if self.upload_id:
            try:
                self.backend.abort(self.key, self.upload_id)
            except StorageError:
                pass
