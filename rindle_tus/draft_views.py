"""HTTP for the resumable upload draft (``draft``): creation (POST), offset
retrieval (HEAD), append (PATCH) and cancellation (DELETE), reached through
the tus views' dispatch when a request names an interop version served here.

Each method parses the draft's headers, asks the same hooks as tus and calls
the same verb of ``uploads``: one upload is one row, one lease and one tail
whichever protocol created or resumes it. What the interop versions ask
differently comes from their ``draft.Version``, never from a branch of its own.
"""

from __future__ import annotations

import base64
import json
import logging
import socket
from collections.abc import Mapping

from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from . import draft, protocol, uploads
from .conf import tus_settings
from .draft import Version
from .exceptions import (
    AlreadyComplete,
    ChecksumMismatch,
    Forbidden,
    InconsistentLength,
    InvalidHeader,
    InvalidMetadata,
    OffsetMismatch,
    TusError,
    UnsupportedMediaType,
    UploadGone,
)
from .exchange import body_stream, location
from .hooks import check_permission, client_key, permits_all, pre_create
from .limits import check_append, check_length, largest
from .locking import Lease
from .models import ConcatKind, State, TusSession

logger = logging.getLogger("rindle_tus")

METHODS = frozenset({"post", "head", "patch", "delete"})
# Content types that label the transfer, not the upload's own media type.
_TRANSFER_TYPES = frozenset({draft.PARTIAL_UPLOAD_TYPE, protocol.OFFSET_CONTENT_TYPE})


# -- the answers ----------------------------------------------------------------


def discovery_headers(response: HttpResponse, version: Version) -> None:
    """What an OPTIONS answer tells a draft client: appends are accepted, and the limits."""
    response["Accept-Patch"] = draft.PARTIAL_UPLOAD_TYPE
    _limit_header(response, version, None)


def _limit_header(response: HttpResponse, version: Version, session: TusSession | None) -> None:
    value = _limit(version, session)
    if value is not None:
        response["Upload-Limit"] = value


def _limit(version: Version, session: TusSession | None) -> str | None:
    """``Upload-Limit``: the largest upload, the largest body if a proxy caps
    it, and (while the upload may still grow) how long it lives on: the
    sliding expiry, renewed by every request that commits."""
    if session is None:
        age: int | None = int(tus_settings.EXPIRATION.total_seconds())
    elif session.state == State.RECEIVING and session.expires_at is not None:
        age = int((session.expires_at - timezone.now()).total_seconds())
    else:
        age = None
    # An upload's own ceiling: its parts must hold it in 10,000 (a deferred
    # length is planned for at creation).
    ceiling = largest(None if session is None else session.part_size)
    return draft.upload_limit(version, max_size=ceiling, max_append=tus_settings.MAX_APPEND_SIZE, max_age=age)


def _state_headers(response: HttpResponse, version: Version, session: TusSession) -> None:
    response["Upload-Offset"] = str(session.offset)
    response["Upload-Complete"] = draft.boolean(session.state == State.COMPLETED)
    if session.length is not None:
        response["Upload-Length"] = str(session.length)
    _limit_header(response, version, session)


def error_response(request: HttpRequest, version: Version, error: TusError) -> HttpResponse:
    """An error as the version words it: its status, and problem details
    (RFC 9457) where the version defines a problem type for it."""
    status = error.status
    headers = dict(error.headers)
    problem: dict[str, object] | None = None
    if isinstance(error, UploadGone):
        # The draft knows no 410: an upload that cannot be used is not found.
        status = 404
    elif isinstance(error, OffsetMismatch):
        if error.expected is not None:
            headers["Upload-Offset"] = str(error.expected)
        problem = draft.problem(
            version,
            draft.MISMATCHING_OFFSET,
            "offset from request does not match offset of resource",
            **{"expected-offset": error.expected, "provided-offset": error.provided},
        )
    elif isinstance(error, AlreadyComplete):
        status = 400
        # Drafts from -06 call appending to a complete upload an inconsistent length.
        if draft.INCONSISTENT_LENGTH in version.problems:
            problem = draft.problem(version, draft.INCONSISTENT_LENGTH, "inconsistent length values for upload")
        else:
            problem = draft.problem(version, draft.COMPLETED_UPLOAD, "upload is already completed")
    elif isinstance(error, InconsistentLength):
        problem = draft.problem(version, draft.INCONSISTENT_LENGTH, "inconsistent length values for upload")
    elif isinstance(error, ChecksumMismatch):
        # 460 is tus's own; the draft's digests fail as a bad request.
        status = 400
        error = ChecksumMismatch("The content does not match its Content-Digest or Repr-Digest; nothing was stored.")
    limit = _limit(version, None) if status == 413 else None
    if limit is not None:
        headers["Upload-Limit"] = limit
    if problem is not None:
        problem = {key: value for key, value in problem.items() if value is not None}
        problem["detail"] = error.message
        content = "" if request.method == "HEAD" else json.dumps(problem)
        response = HttpResponse(content, status=status, content_type="application/problem+json")
    else:
        content = "" if request.method == "HEAD" else f"{error}\n"
        response = HttpResponse(content, status=status, content_type="text/plain; charset=utf-8")
    for name, value in headers.items():
        response[name] = value
    return response


# -- the methods ----------------------------------------------------------------


def post(request: HttpRequest, *, version: Version) -> HttpResponse:
    """Upload creation: a new upload, with as much of its body as arrives."""
    headers = request.headers
    complete = _upload_complete(headers, "Upload creation")
    if "Upload-Offset" in headers:
        raise InvalidHeader("Upload creation carries no Upload-Offset: a new upload starts at 0.")
    body = body_stream(request)
    check_append(body.length)
    length = _length(headers, complete, body.length, offset=0, recorded=None)
    metadata_raw, metadata = _metadata(headers)
    if length is not None:
        check_length(length)
    check_permission(request, "create", None)
    pre_create(request, length, metadata)
    checksum = _checksum(version, headers, whole=complete)
    announcer = _Announcer(request, version) if tus_settings.SEND_104 else None
    try:
        session = uploads.create(
            length=length,
            metadata_raw=metadata_raw,
            metadata=protocol.decoded_metadata(metadata),
            user=getattr(request, "user", None),
            client=client_key(request),
            body=body,
            checksum=checksum,
            protocol=version.name,
            complete=complete,
            announce=announcer,
            # A length learnt only where a chunked body ends meets the hook then.
            confirm_length=None if length is not None else lambda found: pre_create(request, found, metadata),
        )
    except TusError as error:
        if announcer is not None and announcer.url is not None:
            # Every answer to one request names the same upload.
            error.headers["Location"] = announcer.url
        raise
    response = HttpResponse(status=201)
    response["Location"] = location(request, session)
    _state_headers(response, version, session)
    return response


def head(request: HttpRequest, upload_id: str, *, version: Version) -> HttpResponse:
    """Offset retrieval: where the upload stands, once a request still
    holding it has handed over."""
    if version.refuses_state_headers:
        _refuse(request.headers, ("Upload-Offset", "Upload-Complete", "Upload-Length"), "Offset retrieval")
    session = uploads.get(upload_id)
    check_permission(request, "head", session)
    session = uploads.settled(session)
    response = HttpResponse(status=204)
    _state_headers(response, version, session)
    return response


def patch(request: HttpRequest, upload_id: str, *, version: Version) -> HttpResponse:
    """Upload append: the body at ``Upload-Offset``; ``Upload-Complete: ?1`` ends the upload."""
    headers = request.headers
    # With no permission hook, the row is read as the lease is taken (see the tus view's patch).
    session, lease = uploads.for_body(upload_id, draft.non_negative(headers.get("Upload-Offset")), take=permits_all())
    with uploads.holding(lease):
        session = _append(request, session, lease, version=version)
    response = HttpResponse(status=version.append_status)
    _state_headers(response, version, session)
    return response


def _append(request: HttpRequest, session: TusSession, lease: Lease | None, *, version: Version) -> TusSession:
    headers = request.headers
    check_permission(request, "patch", session)
    if session.concat == ConcatKind.FINAL:
        raise Forbidden("A final concatenated upload cannot be appended to.")
    if version.partial_upload_type and request.content_type != draft.PARTIAL_UPLOAD_TYPE:
        raise UnsupportedMediaType(f"An append is sent as Content-Type: {draft.PARTIAL_UPLOAD_TYPE}.")
    offset = draft.non_negative(headers.get("Upload-Offset"))
    if offset is None:
        raise InvalidHeader("An append carries Upload-Offset, a non-negative integer.")
    complete = _upload_complete(headers, "An append")
    body = body_stream(request)
    uploads.check_offset(session, offset)
    # Before the lengths: appending to a complete upload has its own answer.
    uploads.check_room(session, body)
    check_append(body.length)
    length = _length(headers, complete, body.length, offset=offset, recorded=session.length)
    checksum = _checksum(version, headers, whole=complete and offset == 0)
    declared = length if session.length is None else None
    confirm = None
    if session.length is None:
        # The length becomes known here, or where the body ends: the same
        # limits and hook as at creation. (Only then: metadata is not parsed
        # on every append.)
        metadata = protocol.parse_metadata(session.metadata_raw, tus_settings.METADATA_MAX_SIZE)

        def confirm(found: int) -> None:
            pre_create(request, found, metadata)

        if declared is not None:
            check_length(declared, session.part_size)
            confirm(declared)
    return uploads.apply_body(
        session, body, checksum, offset=offset, length=declared, complete=complete, confirm_length=confirm, lease=lease
    )


def delete(request: HttpRequest, upload_id: str, *, version: Version) -> HttpResponse:
    """Upload cancellation: a request still holding the upload hands it over first."""
    if version.refuses_state_headers:
        _refuse(request.headers, ("Upload-Offset", "Upload-Complete"), "Upload cancellation")
    session = uploads.get(upload_id)
    check_permission(request, "delete", session)
    uploads.terminate(session)
    return HttpResponse(status=204)


# -- the headers ----------------------------------------------------------------


def _upload_complete(headers: Mapping[str, str], what: str) -> bool:
    complete = draft.sf_boolean(headers.get("Upload-Complete"))
    if complete is None:
        raise InvalidHeader(
            f"{what} carries Upload-Complete: ?1 when its body ends the upload, ?0 when more will follow."
        )
    return complete


def _refuse(headers: Mapping[str, str], names: tuple[str, ...], what: str) -> None:
    present = [name for name in names if name in headers]
    if present:
        raise InvalidHeader(f"{what} carries no {' or '.join(present)}.")


def _length(
    headers: Mapping[str, str], complete: bool, body_length: int | None, *, offset: int, recorded: int | None
) -> int | None:
    """The upload's length as the request indicates it: ``Upload-Length``, or
    where a body that completes the upload ends. Every indication must agree,
    with each other and with a length recorded before."""
    declared = draft.non_negative(headers.get("Upload-Length"))
    implied = offset + body_length if complete and body_length is not None else None
    if declared is not None and implied is not None and declared != implied:
        raise InconsistentLength(
            f"Upload-Length is {declared}, but the body completes the upload at {implied} bytes."
        )
    length = declared if declared is not None else implied
    if recorded is not None and length is not None and length != recorded:
        raise InconsistentLength(f"The upload's length is {recorded}; this request indicates {length}.")
    return length


def _metadata(headers: Mapping[str, str]) -> tuple[str, dict[str, bytes | None]]:
    """The upload's metadata, kept as tus keeps it so both protocols see it:
    ``Upload-Metadata`` if sent, with the file name of ``Content-Disposition``
    and the media type of ``Content-Type`` where it names none."""
    raw = headers.get("Upload-Metadata", "")
    metadata = protocol.parse_metadata(raw, tus_settings.METADATA_MAX_SIZE)
    added: dict[str, bytes] = {}
    filename = draft.filename_of(headers.get("Content-Disposition"))
    if filename and not any(metadata.get(key) for key in protocol.FILE_NAME_KEYS):
        added["filename"] = filename.encode()
    content_type = headers.get("Content-Type", "").strip()
    if (
        content_type
        and content_type.split(";")[0].strip().lower() not in _TRANSFER_TYPES
        and protocol.is_media_type(content_type)
        and not any(metadata.get(key) for key in protocol.CONTENT_TYPE_KEYS)
    ):
        added["filetype"] = content_type.encode()
    if added:
        pairs = [raw.strip()] if raw.strip() else []
        pairs += [f"{key} {base64.b64encode(value).decode('ascii')}" for key, value in added.items()]
        raw = ",".join(pairs)
        if len(raw) > tus_settings.METADATA_MAX_SIZE:
            raise InvalidMetadata(f"The upload's metadata is longer than {tus_settings.METADATA_MAX_SIZE} bytes.")
        metadata.update(added)
    protocol.check_header_metadata(metadata)
    return raw, metadata


def _checksum(version: Version, headers: Mapping[str, str], *, whole: bool) -> protocol.Checksum | None:
    """The digest the request's bytes must match, through the same machinery
    as tus's ``Upload-Checksum``: ``Content-Digest`` (of this request's
    content), or ``Repr-Digest`` (of the whole upload, so only on a request
    whose content is the whole upload)."""
    if not version.digests:
        return None
    content = draft.parse_digest(headers.get("Content-Digest"), "Content-Digest")
    representation = draft.parse_digest(headers.get("Repr-Digest"), "Repr-Digest")
    if representation is None:
        return content
    if not whole:
        raise InvalidHeader(
            "Repr-Digest is checked only on a request that carries the whole upload (from offset 0, "
            "with Upload-Complete: ?1); send Content-Digest with each request instead."
        )
    if content is not None and content != representation:
        raise InvalidHeader("The request carries the whole upload, so its Content-Digest and Repr-Digest must agree.")
    return representation


class _Announcer:
    """Sends ``104 (Upload Resumption Supported)`` once the upload exists and
    before its body is read, where the server lets an interim response be
    written: gunicorn hands its socket to the application and writes the
    final response only after it. WSGI itself has no way to, and neither do
    the ASGI servers (ASGI knows only 103 Early Hints)."""

    def __init__(self, request: HttpRequest, version: Version) -> None:
        self.request = request
        self.version = version
        self.url: str | None = None

    def __call__(self, session: TusSession) -> bool:
        meta = self.request.META
        sock = meta.get("gunicorn.socket")
        if not isinstance(sock, socket.socket) or meta.get("SERVER_PROTOCOL") != "HTTP/1.1":
            return False
        url = location(self.request, session)
        lines = [
            "HTTP/1.1 104 Upload Resumption Supported",
            f"Location: {url}",
            f"{draft.VERSION_HEADER}: {self.version.number}",
        ]
        limit = _limit(self.version, session)
        if limit is not None:
            lines.append(f"Upload-Limit: {limit}")
        try:
            sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        except OSError as exc:
            logger.info("upload %s: the 104 could not be sent: %s", session.id, exc)
            return False
        self.url = url
        return True

