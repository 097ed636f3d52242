"""The S3 side, built on the client and configuration of a django-storages
``S3Storage`` taken from ``STORAGES`` by alias (``RINDLE_TUS_STORAGE``)."""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from django.core.exceptions import ImproperlyConfigured
from django.core.files.storage import storages
from storages.backends.s3 import S3Storage
from storages.utils import clean_name

from .. import metrics
from ..conf import S3_MAX_PART_SIZE, S3_MAX_PARTS, S3_MIN_PART_SIZE, MiB, tus_settings
from ..exceptions import StorageError
from ..metadata import content_disposition

logger = logging.getLogger("rindle_tus")

# Of the parameters django-storages passes to PutObject, those that
# CreateMultipartUpload also takes.
_MULTIPART_PARAMS = {
    "ACL",
    "CacheControl",
    "ContentDisposition",
    "ContentEncoding",
    "ContentLanguage",
    "ContentType",
    "Expires",
    "GrantFullControl",
    "GrantRead",
    "GrantReadACP",
    "GrantWriteACP",
    "Metadata",
    "ServerSideEncryption",
    "StorageClass",
    "WebsiteRedirectLocation",
    "SSECustomerAlgorithm",
    "SSECustomerKey",
    "SSEKMSKeyId",
    "SSEKMSEncryptionContext",
    "BucketKeyEnabled",
    "Tagging",
    "ObjectLockMode",
    "ObjectLockRetainUntilDate",
    "ObjectLockLegalHoldStatus",
    "ChecksumAlgorithm",
}
# Parameters that must accompany every request on an SSE-C object.
_SSE_C_PARAMS = {"SSECustomerAlgorithm", "SSECustomerKey", "SSECustomerKeyMD5"}


def get_storage() -> S3Storage:
    alias = tus_settings.STORAGE
    storage = storages[alias]
    if not isinstance(storage, S3Storage):
        raise ImproperlyConfigured(
            f"RINDLE_TUS_STORAGE names STORAGES[{alias!r}], which is a "
            f"{type(storage).__name__}; rindle_tus needs storages.backends.s3.S3Storage."
        )
    return storage


# S3 error codes that mean the set-up is wrong, not that S3 had a bad moment:
# what each one usually means, for the operator.
REFUSALS = {
    "NoSuchBucket": "the bucket does not exist (create it; rindle_tus never does)",
    "AccessDenied": "these credentials may not do this in the bucket (or the bucket does not exist)",
    "AllAccessDisabled": "all access to the bucket is disabled",
    "InvalidAccessKeyId": "the access key is unknown to this endpoint",
    "SignatureDoesNotMatch": "the secret key does not match the access key",
    "InvalidBucketName": "the bucket's name is not valid",
    "PermanentRedirect": "the bucket lives in another region or endpoint (region_name, endpoint_url)",
    "AuthorizationHeaderMalformed": "the region does not match the bucket's (region_name)",
}


@contextmanager
def s3_errors(action: str, bucket: str = "", endpoint: str = "") -> Iterator[None]:
    """Turn any failure of the object store into a resumable 502. A refusal
    that means the set-up is wrong (``REFUSALS``) is logged as an error that
    names the bucket, the endpoint and the likely cause."""
    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        code = s3_error_code(exc)
        if code in REFUSALS:
            logger.error(
                "S3 refused to %s in bucket %r at %s: %s, %s. `manage.py rindle_tus_doctor` checks the set-up.",
                action, bucket, endpoint or "AWS", code, REFUSALS[code],
            )
            raise StorageError(
                f"The object store refused to {action} ({code}); the upload can be resumed once its set-up is fixed."
            ) from exc
        logger.warning("S3 %s failed: %s", action, exc)
        raise StorageError(f"The object store failed to {action}; the upload can be resumed.") from exc


def s3_error_code(exc: BaseException) -> str | None:
    """The S3 error code behind ``exc`` (a ``StorageError`` or a ``ClientError``)."""
    cause = exc.__cause__ if isinstance(exc, StorageError) else exc
    if isinstance(cause, ClientError):
        return str(cause.response.get("Error", {}).get("Code", "")) or None
    return None


def is_no_such_upload(exc: BaseException) -> bool:
    return s3_error_code(exc) == "NoSuchUpload"


_clients: weakref.WeakKeyDictionary[S3Storage, Any] = weakref.WeakKeyDictionary()
_clients_lock = threading.Lock()


def shared_client(storage: S3Storage) -> Any:
    """The storage's boto3 client, one per storage per process.

    django-storages builds a boto3 session and resource per thread, each
    loading the S3 service model (about 13 MiB); under a threaded server that
    multiplies a worker's memory. boto3 clients are thread-safe, so the first
    one made is shared. A new storage object (``STORAGES`` changed) gets its own.
    """
    with _clients_lock:
        client = _clients.get(storage)
        if client is None:
            client = storage.connection.meta.client
            metrics.instrument(client)
            _clients[storage] = client
        return client


class S3Backend:
    def __init__(self, storage: S3Storage | None = None) -> None:
        self.storage = storage or get_storage()
        self.client = shared_client(self.storage)
        self.bucket = self.storage.bucket_name

    def _errors(self, action: str) -> AbstractContextManager[None]:
        return s3_errors(action, self.bucket, self.client.meta.endpoint_url)

    def head_bucket(self) -> None:
        """HeadBucket (the doctor's first step): a failure is raised, not
        logged as ``s3_errors`` would, since the doctor reports it itself."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"HeadBucket failed: {exc}") from exc

    def key_for(self, session_id: str) -> str:
        return str(self.storage._normalize_name(clean_name(f"{tus_settings.KEY_PREFIX}{session_id}")))

    @property
    def prefix(self) -> str:
        """The key prefix under which every upload of this app lives."""
        return str(self.storage._normalize_name(clean_name(tus_settings.KEY_PREFIX))).rstrip("/") + "/"

    def _write_params(self, key: str, content_type: str | None) -> dict[str, Any]:
        params: dict[str, Any] = self.storage._get_write_parameters(key)
        if content_type and "ContentType" not in self.storage.get_object_parameters(key):
            params["ContentType"] = content_type
        return params

    def _sse_params(self, key: str) -> dict[str, Any]:
        params = self.storage.get_object_parameters(key)
        return {k: v for k, v in params.items() if k in _SSE_C_PARAMS}

    def create_multipart(self, key: str, content_type: str | None = None) -> str:
        params = {k: v for k, v in self._write_params(key, content_type).items() if k in _MULTIPART_PARAMS}
        with self._errors("start a multipart upload"):
            response = self.client.create_multipart_upload(Bucket=self.bucket, Key=key, **params)
        return str(response["UploadId"])

    def upload_part(self, key: str, upload_id: str, number: int, body: Any) -> str:
        """``body``: bytes, or a seekable file (``buffers.Part.body``)."""
        with self._errors(f"store part {number}"):
            response = self.client.upload_part(
                Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body, **self._sse_params(key)
            )
        return str(response["ETag"])

    def complete(self, key: str, upload_id: str, parts: list[dict[str, Any]]) -> None:
        with self._errors("complete the multipart upload"):
            self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": [{"PartNumber": p["number"], "ETag": p["etag"]} for p in parts]},
            )

    def abort(self, key: str, upload_id: str) -> None:
        """Abort a multipart upload; one that no longer exists counts as aborted."""
        try:
            with self._errors("abort the multipart upload"):
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except StorageError as exc:
            if not is_no_such_upload(exc):
                raise

    def put(self, key: str, body: Any, content_type: str | None = None) -> None:
        """``body``: bytes, or a seekable file (``buffers.Part.body``)."""
        with self._errors("store the object"):
            self.client.put_object(Bucket=self.bucket, Key=key, Body=body, **self._write_params(key, content_type))

    def size(self, key: str) -> int:
        with self._errors("read the object's size"):
            response = self.client.head_object(Bucket=self.bucket, Key=key, **self._sse_params(key))
        return int(response["ContentLength"])

    def delete(self, key: str) -> None:
        with self._errors("delete the object"):
            self.client.delete_object(Bucket=self.bucket, Key=key)

    def upload_part_copy(self, key: str, upload_id: str, number: int, source: str, first: int, last: int) -> str:
        """Copy bytes ``first..last`` (inclusive) of ``source`` server-side as a part."""
        with self._errors(f"copy part {number}"):
            response = self.client.upload_part_copy(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                PartNumber=number,
                CopySource={"Bucket": self.bucket, "Key": source},
                CopySourceRange=f"bytes={first}-{last}",
                **self._sse_params(key),
            )
        return str(response["CopyPartResult"]["ETag"])

    def open(self, key: str) -> Any:
        """The object's body as a stream (botocore ``StreamingBody``); read
        it with ``read`` or ``chunks`` so a failure mid-way is a StorageError."""
        with self._errors("read the object"):
            return self.client.get_object(Bucket=self.bucket, Key=key, **self._sse_params(key))["Body"]

    def read(self, body: Any, size: int) -> bytes:
        """Up to ``size`` bytes of a body from ``open`` (b"" at its end)."""
        with self._errors("read the object"):
            data: bytes = body.read(size)
        return data

    def chunks(self, key: str, size: int) -> Iterator[bytes]:
        """The object's bytes in chunks of ``size``. The object is opened
        now, so a missing one fails before a response starts."""
        body = self.open(key)

        def read() -> Iterator[bytes]:
            try:
                while data := self.read(body, size):
                    yield data
            finally:
                body.close()

        return read()

    def url(self, key: str, filename: str = "", expire: int = 300) -> str:
        """A short-lived URL of the object, as the storage builds it (custom
        domain, CloudFront signing and query-string auth included), except
        where that URL could not be fetched:

        * a custom domain without a CloudFront key, on a storage that signs
          (``querystring_auth``, a private bucket): django-storages returns
          the custom domain's URL unsigned, which a private bucket refuses, so
          the URL is presigned with the storage's client (the bucket's own
          endpoint) instead;
        * an unsigned URL never asks for a file name: S3 refuses response
          header overrides on anonymous requests, so the download would fail.
        """
        storage = self.storage
        signed = bool(storage.querystring_auth)
        overrides = {"ResponseContentDisposition": content_disposition(filename)} if filename and signed else {}
        if storage.custom_domain and signed and not storage.cloudfront_signer:
            params = {"Bucket": self.bucket, "Key": key, **overrides}
            return str(self.client.generate_presigned_url("get_object", Params=params, ExpiresIn=expire))
        return str(storage.url(storage_name(key, storage.location), parameters=overrides, expire=expire))

    def multipart_uploads(self) -> Iterator[list[dict[str, Any]]]:
        """The multipart uploads in progress under ``prefix``, a page at a time."""
        paginator = self.client.get_paginator("list_multipart_uploads")
        with self._errors("list multipart uploads"):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
                yield list(page.get("Uploads", []))

    def abort_existing(self, key: str, upload_id: str) -> bool:
        """Abort a multipart upload: True if this call aborted it, False if it
        no longer existed (``abort`` counts both as aborted)."""
        try:
            with self._errors("abort the multipart upload"):
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except StorageError as exc:
            if is_no_such_upload(exc):
                return False
            raise
        return True


def storage_name(key: str, location: str) -> str:
    """The storage-relative name of a full bucket key: rows keep the key in
    the bucket, which includes the storage's ``location``, while
    ``Storage.url()`` and friends add the location themselves."""
    location = location.strip("/")
    if location and key.startswith(location + "/"):
        return key[len(location) + 1 :]
    return key


def part_size_for(length: int | None) -> int:
    """The fixed part size of a new upload.

    At least ``RINDLE_TUS_PART_SIZE`` (and S3's 5 MiB), and large enough for
    the declared length, or for a deferred one ``RINDLE_TUS_MAX_SIZE`` (else
    10,000 parts of the configured size), to fit in 10,000 parts. Rounded up
    to whole MiB.
    """
    base = max(tus_settings.PART_SIZE, S3_MIN_PART_SIZE)
    bound = length if length is not None else (tus_settings.MAX_SIZE or base * S3_MAX_PARTS)
    needed = -(-bound // S3_MAX_PARTS)
    needed = -(-needed // MiB) * MiB
    return min(max(base, needed), S3_MAX_PART_SIZE)
