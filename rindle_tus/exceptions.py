"""Every error the tus endpoints answer with. Each class carries its one HTTP
status and a stable machine-readable code; views turn them into responses in
one place (``views.error_response``), with the headers each carries
(``TusError.headers``: Retry-After, Allow, Tus-Version)."""

from __future__ import annotations

from collections.abc import Sequence


class TusError(Exception):
    status: int = 400
    code: str = "bad_request"
    default_message: str = "The request is not valid."
    # Seconds a client should wait before it tries again, sent as Retry-After.
    retry_after: int | None = None

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default_message
        # Headers the error response must carry besides the message.
        self.headers: dict[str, str] = {}
        if self.retry_after is not None:
            self.headers["Retry-After"] = str(self.retry_after)
        super().__init__(self.message)

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class InvalidHeader(TusError):
    code = "invalid_header"


class InvalidMetadata(TusError):
    code = "invalid_metadata"


class InvalidRequest(TusError):
    code = "invalid_request"


class ClientGone(InvalidRequest):
    """The client stopped sending before the body ended; what arrived was kept."""

    code = "incomplete_body"
    default_message = "The body ended before Content-Length bytes arrived."


class UploadInterrupted(TusError):
    """Another request for the upload asked this one to hand it over.

    What arrived before was kept. Like tusd, a status clients do not retry:
    of two live clients racing on one upload, the newer request wins.
    """

    code = "upload_interrupted"
    default_message = (
        "Another request for this upload took it over; the bytes received before were kept. "
        "HEAD the upload for its offset."
    )

    def __init__(self, message: str | None = None, *, asked_at: int | None = None) -> None:
        super().__init__(message)
        # The offset the asking request sends from (a PATCH's Upload-Offset), if it said.
        self.asked_at = asked_at


class NotAuthenticated(TusError):
    status = 401
    code = "not_authenticated"
    default_message = "Authentication is required to upload."


class Forbidden(TusError):
    """403. Named apart from ``django.core.exceptions.PermissionDenied``,
    which a permission hook may raise as well (it answers the same)."""

    status = 403
    code = "permission_denied"
    default_message = "You may not do this with this upload."


class UploadNotFound(TusError):
    status = 404
    code = "not_found"
    default_message = "No such upload."


class MethodNotAllowed(TusError):
    status = 405
    code = "method_not_allowed"

    def __init__(self, method: str, allowed: Sequence[str]) -> None:
        super().__init__(f"{method} is not allowed here.")
        self.headers["Allow"] = ", ".join(m.upper() for m in allowed)


class LengthRequired(TusError):
    status = 411
    code = "length_required"
    default_message = (
        "This server cannot read a chunked body here; send Content-Length "
        "(or run under a server that supports chunked requests, such as gunicorn)."
    )


class InconsistentLength(InvalidHeader):
    """Two indications of an upload's length disagree (``Upload-Length``, a
    recorded length, the draft's ``Upload-Complete: ?1`` with Content-Length)."""

    code = "inconsistent_length"


class OffsetMismatch(TusError):
    status = 409
    code = "offset_mismatch"

    def __init__(self, message: str | None = None, *, expected: int | None = None, provided: int | None = None) -> None:
        super().__init__(message)
        # The upload's offset and the request's, for the draft's problem details.
        self.expected = expected
        self.provided = provided


class UploadGone(TusError):
    status = 410
    code = "gone"
    default_message = "This upload has expired or was terminated."


class UnsupportedVersion(TusError):
    status = 412
    code = "unsupported_version"
    default_message = "This server speaks tus 1.0.0; send Tus-Resumable: 1.0.0."

    def __init__(self, message: str | None = None, *, supported: Sequence[str] = ("1.0.0",)) -> None:
        super().__init__(message)
        self.headers["Tus-Version"] = ",".join(supported)


class TooLarge(TusError):
    status = 413
    code = "too_large"


class AlreadyComplete(TooLarge):
    """A body sent to an upload that is complete: nothing more fits."""

    default_message = "The upload is already complete."


class UnsupportedMediaType(TusError):
    status = 415
    code = "unsupported_media_type"
    default_message = "PATCH bodies must be sent as application/offset+octet-stream."


class Locked(TusError):
    status = 423
    code = "locked"
    default_message = "Another request is writing to this upload and did not hand it over in time; retry shortly."
    retry_after = 1


class BodyStalled(TusError):
    """The body stopped arriving, or arrived slower than the server accepts.

    What arrived was kept. A 5xx, so that a client that reads it resumes on
    its own (tus-js-client retries 5xx, not 408).
    """

    status = 503
    code = "body_stalled"
    retry_after = 1


class TooManyUploads(TusError):
    """The user (or, signed out, the client address) holds as many unfinished
    uploads as ``RINDLE_TUS_MAX_UNFINISHED`` allows."""

    status = 429
    code = "too_many_uploads"


class Busy(TusError):
    """This process already reads as many bodies as ``RINDLE_TUS_MAX_BODIES``
    allows, none of them slow enough to give way."""

    status = 503
    code = "busy"
    default_message = "This server is receiving as many uploads as it can; retry shortly."
    retry_after = 1


class NodeFull(TusError):
    """The tails on this node's disk add up to ``RINDLE_TUS_MAX_TAIL_BYTES``."""

    status = 507
    code = "node_full"
    default_message = "This server holds as many buffered bytes as it may; retry later."
    retry_after = 30


class DiskUnavailable(TusError):
    """This node cannot write its upload folder (``RINDLE_TUS_TMP_DIR``): a
    fault of the server's set-up, not of the request. Nothing past the last
    committed offset was kept; the upload resumes once the folder is fixed."""

    status = 500
    code = "tmp_dir_unwritable"
    default_message = "This server cannot write its upload folder; the upload can be resumed once that is fixed."


class DatabaseUnavailable(TusError):
    status = 503
    code = "database_unavailable"
    default_message = "The database did not answer; nothing was lost and the upload can be resumed."
    retry_after = 1


class ChecksumMismatch(TusError):
    status = 460
    code = "checksum_mismatch"
    default_message = "The body does not match Upload-Checksum; nothing was stored."


class StorageError(TusError):
    status = 502
    code = "storage_error"
    default_message = "The object store did not accept the data; the upload can be resumed."


class TusTailMissing(TusError):
    """The row implies buffered bytes that this node does not hold.

    Carrying on would silently corrupt the object, so the request fails loudly;
    the upload is still whole on the node named in ``tail_node``.
    """

    status = 503
    code = "tus_tail_missing"

    def __init__(self, session_id: str, node: str, tail_node: str, detail: str) -> None:
        self.session_id = session_id
        self.node = node
        self.tail_node = tail_node
        super().__init__(
            f"upload {session_id}: {detail} on node {node!r}; its buffered bytes were "
            f"last written on node {tail_node or '?'!r}. Resume through that node."
        )


class LeaseLost(TusError):
    """Our lease expired and another request took the session over."""

    status = 423
    code = "lease_lost"
    default_message = "This request lost its hold on the upload; nothing more was stored."


class UploadRejected(TusError):
    """Raised by a ``RINDLE_TUS_PRE_CREATE`` hook to refuse an upload with a
    status and message of the host application's choosing."""

    code = "rejected"

    def __init__(self, message: str, status: int = 400) -> None:
        if not 400 <= status < 500:
            raise ValueError("UploadRejected takes a 4xx status.")
        self.status = status
        super().__init__(message)
