"""HTTP for tus 1.0.0: the collection (OPTIONS, POST) and one upload
(OPTIONS, HEAD, PATCH, DELETE). Parsing lives in ``protocol``, bytes in
``receiver`` and ``storage``, life cycle in ``uploads``."""

from __future__ import annotations

import logging
from typing import Any

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from . import protocol, signals
from .body import Body, Empty, request_socket
from .concatenation import create_final, final_length, resolve_partials
from .conf import tus_settings
from .exceptions import (
    DatabaseUnavailable,
    InvalidHeader,
    LengthRequired,
    Locked,
    MethodNotAllowed,
    OffsetMismatch,
    PermissionDenied,
    TooLarge,
    TusError,
    TusTailMissing,
    UnsupportedMediaType,
    UploadGone,
    UploadNotFound,
)
from .hooks import check_permission, client_key, pre_create
from .locking import Lease, settle
from .metadata import content_type_of
from .models import ConcatKind, State, TusSession, is_session_id
from .receiver import Receiver
from .storage.s3 import S3Backend, content_disposition
from .uploads import (
    check_length,
    complete_empty,
    create_session,
    discard,
    max_size,
    set_deferred_length,
    terminate,
)

logger = logging.getLogger("rindle_tus")

EXTENSIONS = (
    "creation",
    "creation-with-upload",
    "creation-defer-length",
    "termination",
    "expiration",
    "checksum",
    "concatenation",
)
_GONE_STATES = {State.TERMINATED, State.EXPIRED, State.FAILED}


def error_response(request: HttpRequest, error: TusError) -> HttpResponse:
    body = "" if request.method == "HEAD" else f"{error}\n"
    response = HttpResponse(body, status=error.status, content_type="text/plain; charset=utf-8")
    for name, value in error.headers.items():
        response[name] = value
    if error.status == 412:
        response["Tus-Version"] = ",".join(protocol.SUPPORTED_VERSIONS)
    return response


def body_stream(request: HttpRequest) -> Body:
    """The request body as a stream, with its length when declared; one per request.

    Never ``request.body``: bytes are read in bounded chunks. A chunked body
    (no Content-Length) is read straight from the server's input where the
    server delimits it (``wsgi.input_terminated``).
    """
    body: Body | None = getattr(request, "_tus_body", None)
    if body is not None:
        return body
    declared = request.META.get("CONTENT_LENGTH")
    sock = request_socket(request.META)
    discardable = "gunicorn.socket" in request.META
    if declared not in (None, ""):
        body = Body(request, protocol.parse_int(declared, "Content-Length"), sock, discardable=discardable)
    elif request.META.get("wsgi.input_terminated"):
        body = Body(request.META["wsgi.input"], None, sock, discardable=discardable)
    elif "chunked" in request.headers.get("Transfer-Encoding", "").lower():
        # The server did not delimit the chunked body for us: reading would
        # see nothing, and answering as if the body were empty would lie.
        raise LengthRequired()
    else:
        body = Body(Empty(), 0)
    request._tus_body = body  # type: ignore[attr-defined]
    return body


def _discard_unread_body(request: HttpRequest, response: HttpResponseBase) -> None:
    """Let the client read a refusal: drop what it still sends once the
    answer is out (``Body.discard``), instead of resetting the connection."""
    try:
        body = body_stream(request)
    except TusError:
        return
    if body.unread:
        # The server calls close() once the response is written.
        response._resource_closers.append(body.discard)  # type: ignore[attr-defined]


def get_session(upload_id: str) -> TusSession:
    if not is_session_id(upload_id):
        raise UploadNotFound()
    try:
        session = TusSession.objects.get(pk=upload_id)
    except TusSession.DoesNotExist:
        raise UploadNotFound() from None
    if session.state in _GONE_STATES or session.is_expired():
        message = session.last_error if session.state == State.FAILED and session.last_error else None
        raise UploadGone(message)
    return session


def _upload_headers(response: HttpResponse, session: TusSession) -> None:
    response["Upload-Offset"] = str(session.offset)
    _expires_header(response, session)


def _expires_header(response: HttpResponse, session: TusSession) -> None:
    if session.state == State.RECEIVING and session.expires_at is not None:
        response["Upload-Expires"] = protocol.http_date(session.expires_at)


@method_decorator(csrf_exempt, name="dispatch")
class TusView(View):
    """Common to both endpoints: method override, version check, errors."""

    http_method_names = ["options", "post", "head", "patch", "delete", "get"]

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        override = request.headers.get("X-HTTP-Method-Override")
        if override:
            request.method = override.strip().upper()
        method = (request.method or "").lower()
        try:
            handler = getattr(self, method, None) if method in self.http_method_names else None
            if handler is None:
                raise MethodNotAllowed(f"{request.method} is not allowed here.")
            # OPTIONS is discovery and GET a plain download: neither is tus.
            if method not in ("options", "get"):
                protocol.check_version(request.headers.get("Tus-Resumable"))
            try:
                response: HttpResponseBase = handler(request, *args, **kwargs)
            except (OperationalError, InterfaceError) as exc:
                # The database went away (restarted, failed over, a dropped
                # connection): nothing was committed past what HEAD reports.
                # Django closes this request's broken connection when it ends;
                # idle ones of other threads need CONN_HEALTH_CHECKS.
                logger.warning("database unavailable: %s", exc)
                raise DatabaseUnavailable() from exc
        except TusError as error:
            response = error_response(request, error)
            if isinstance(error, MethodNotAllowed):
                response["Allow"] = ", ".join(m.upper() for m in self.http_method_names)
        response["Tus-Resumable"] = protocol.TUS_VERSION
        response["Cache-Control"] = "no-store"
        _discard_unread_body(request, response)
        return response

    def options(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = HttpResponse(status=204)
        response["Tus-Version"] = ",".join(protocol.SUPPORTED_VERSIONS)
        response["Tus-Extension"] = ",".join(EXTENSIONS)
        if tus_settings.MAX_SIZE is not None:
            response["Tus-Max-Size"] = str(max_size())
        response["Tus-Checksum-Algorithm"] = ",".join(protocol.CHECKSUM_ALGORITHMS)
        return response


class TusUploadsView(TusView):
    http_method_names = ["options", "post"]

    def post(self, request: HttpRequest) -> HttpResponse:
        headers = request.headers
        length = protocol.parse_int(headers.get("Upload-Length"), "Upload-Length")
        deferred = protocol.parse_defer_length(headers.get("Upload-Defer-Length"))
        concat = protocol.parse_concat(headers.get("Upload-Concat"))
        metadata_raw = headers.get("Upload-Metadata", "")
        metadata = protocol.parse_metadata(metadata_raw, tus_settings.METADATA_MAX_SIZE)
        protocol.check_header_metadata(metadata)
        if concat is not None and concat.kind == "final":
            return self._create_final(request, concat, length, deferred, metadata_raw, metadata)
        if length is None and not deferred:
            raise InvalidHeader("Send Upload-Length, or Upload-Defer-Length: 1.")
        if length is not None and deferred:
            raise InvalidHeader("Send either Upload-Length or Upload-Defer-Length, not both.")
        if length is not None and length > max_size():
            raise TooLarge(f"Upload-Length {length} is larger than Tus-Max-Size ({max_size()}).")
        check_permission(request, "create", None)
        pre_create(request, length, metadata)
        with_body = request.content_type == protocol.OFFSET_CONTENT_TYPE
        checksum = protocol.parse_checksum(headers.get("Upload-Checksum")) if with_body else None
        body = body_stream(request) if with_body else Body(Empty(), 0)
        if length is not None and body.length is not None and body.length > length:
            raise TooLarge(f"The body of {body.length} bytes goes past Upload-Length ({length}).")

        backend = S3Backend()
        session = create_session(
            backend,
            length=length,
            metadata_raw=metadata_raw,
            metadata=protocol.decoded_metadata(metadata),
            user=getattr(request, "user", None),
            client=client_key(request),
            concat=ConcatKind.PARTIAL if concat else ConcatKind.NONE,
        )
        if length == 0:
            complete_empty(session, backend)
        elif with_body and body.length != 0:
            try:
                _receive(session, body, checksum, backend)
            except TusError:
                # The client never learns this upload's URL, so nobody could
                # resume it: free whatever it stored and let the error stand.
                discard(session, backend)
                raise

        response = _created(request, session)
        if with_body or session.state == State.COMPLETED:
            response["Upload-Offset"] = str(session.offset)
        return response

    def _create_final(
        self,
        request: HttpRequest,
        concat: protocol.Concat,
        length: int | None,
        deferred: bool,
        metadata_raw: str,
        metadata: dict[str, bytes | None],
    ) -> HttpResponse:
        if length is not None or deferred:
            raise InvalidHeader("A final upload takes its length from its partial uploads: send no Upload-Length.")
        check_permission(request, "create", None)
        partials = resolve_partials(request, concat.urls)
        total = final_length(partials)
        if total > max_size():
            raise TooLarge(f"The partial uploads add up to {total} bytes, more than Tus-Max-Size ({max_size()}).")
        pre_create(request, total, metadata)
        session = create_final(
            request, S3Backend(), partials, concat.urls, metadata_raw, protocol.decoded_metadata(metadata)
        )
        session.refresh_from_db()
        return _created(request, session)


class TusUploadView(TusView):
    http_method_names = ["options", "head", "patch", "delete", "get"]

    def head(self, request: HttpRequest, upload_id: str) -> HttpResponse:
        session = get_session(upload_id)
        check_permission(request, "head", session)
        # A request may hold it (often one whose client vanished and is now
        # asking here): have it hand over, so the offset answered is what it
        # kept, and no request that arrived before this one changes it later.
        if not settle(session):
            session = get_session(upload_id)
        if session.completion_pending:
            # Every byte arrived but completing the object failed. A client
            # that sees offset == length stops, so finish it now, or answer
            # with the error so the client asks again later.
            _finish_pending(session, S3Backend())
        response = HttpResponse(status=200)
        if session.concat != ConcatKind.FINAL or session.state == State.COMPLETED:
            _upload_headers(response, session)
        if session.concat == ConcatKind.PARTIAL:
            response["Upload-Concat"] = "partial"
        elif session.concat == ConcatKind.FINAL:
            response["Upload-Concat"] = "final;" + " ".join(s["url"] for s in session.concat_sources)
        if session.length is not None:
            response["Upload-Length"] = str(session.length)
        else:
            response["Upload-Defer-Length"] = "1"
        if session.metadata_raw:
            response["Upload-Metadata"] = session.metadata_raw
        return response

    def patch(self, request: HttpRequest, upload_id: str) -> HttpResponse:
        session = get_session(upload_id)
        check_permission(request, "patch", session)
        if session.concat == ConcatKind.FINAL:
            raise PermissionDenied("A final concatenated upload cannot be patched.")
        if request.content_type != protocol.OFFSET_CONTENT_TYPE:
            raise UnsupportedMediaType()
        offset = protocol.parse_int(request.headers.get("Upload-Offset"), "Upload-Offset")
        if offset is None:
            raise InvalidHeader("PATCH requires Upload-Offset.")
        length = protocol.parse_int(request.headers.get("Upload-Length"), "Upload-Length")
        checksum = protocol.parse_checksum(request.headers.get("Upload-Checksum"))
        body = body_stream(request)
        _check_offset(session, offset)
        if session.state == State.COMPLETED:
            if body.length:
                raise TooLarge("The upload is already complete.")
            response = HttpResponse(status=204)
            _upload_headers(response, session)
            return response
        if length is not None and session.length is None:
            # The deferred length becomes known: the same limits and hook as at creation.
            check_length(length, session.part_size)
            pre_create(request, length, protocol.parse_metadata(session.metadata_raw, tus_settings.METADATA_MAX_SIZE))

        _receive(session, body, checksum, S3Backend(), length=length, offset=offset)
        response = HttpResponse(status=204)
        _upload_headers(response, session)
        return response

    def delete(self, request: HttpRequest, upload_id: str) -> HttpResponse:
        session = get_session(upload_id)
        check_permission(request, "delete", session)
        lease = Lease.acquire(session.id, arrival=session.lease_epoch)
        try:
            session.refresh_from_db()
            terminate(session, lease, S3Backend())
        finally:
            lease.release()
        return HttpResponse(status=204)

    def get(self, request: HttpRequest, upload_id: str) -> HttpResponseBase:
        """A finished upload's bytes: a redirect to a short-lived URL of the
        object, or (``RINDLE_TUS_GET_REDIRECT = False``) the bytes themselves."""
        session = get_session(upload_id)
        check_permission(request, "get", session)
        if session.state != State.COMPLETED:
            raise UploadNotFound("This upload is not finished.")
        backend = S3Backend()
        if tus_settings.GET_REDIRECT:
            url = backend.url(session.key, session.filename, tus_settings.GET_URL_EXPIRY)
            return HttpResponseRedirect(url)
        body = backend.open(session.key)
        response = StreamingHttpResponse(
            body.iter_chunks(tus_settings.READ_CHUNK_SIZE),
            content_type=content_type_of(session) or "application/octet-stream",
        )
        response["Content-Length"] = str(session.length)
        response["Content-Disposition"] = content_disposition(session.filename or session.id)
        # The uploader's bytes, served from this site's origin: a browser must
        # neither guess them to be a page nor run them as one of the site's.
        response["X-Content-Type-Options"] = "nosniff"
        response["Content-Security-Policy"] = "default-src 'none'; sandbox"
        return response


def _created(request: HttpRequest, session: TusSession) -> HttpResponse:
    response = HttpResponse(status=201)
    response["Location"] = _location(request, session)
    _expires_header(response, session)
    return response


def _finish_pending(session: TusSession, backend: S3Backend) -> None:
    try:
        lease = Lease.acquire(session.id, wait=0)
    except Locked:
        # The request that holds it is completing the upload right now.
        return
    try:
        session.refresh_from_db()
        if session.completion_pending:
            Receiver(session, lease, backend).finish(session.parts)
    finally:
        lease.release()


def _location(request: HttpRequest, session: TusSession) -> str:
    return request.build_absolute_uri(reverse("rindle_tus:upload", args=[session.id]))


def _check_offset(session: TusSession, offset: int) -> None:
    if offset != session.offset:
        raise OffsetMismatch(f"Upload-Offset is {offset}, but the upload is at {session.offset}.")


def _receive(
    session: TusSession,
    body: Body,
    checksum: protocol.Checksum | None,
    backend: S3Backend,
    *,
    length: int | None = None,
    offset: int = 0,
) -> None:
    """Take the lease (a request holding it is asked to hand over), re-read
    the row under it, and apply the body."""
    lease = Lease.acquire(session.id, arrival=session.lease_epoch)
    try:
        session.refresh_from_db()
        if session.state != State.RECEIVING:
            raise UploadGone() if session.state in _GONE_STATES else OffsetMismatch("The upload is complete.")
        _check_offset(session, offset)
        if length is not None:
            if session.length is None:
                set_deferred_length(session, lease, length)
            elif length != session.length:
                raise InvalidHeader(f"Upload-Length is {session.length} and cannot change.")
        try:
            Receiver(session, lease, backend).receive(body, checksum)
        except TusTailMissing:
            signals.send_tail_missing(session, tus_settings.NODE_NAME)
            raise
    finally:
        lease.release()
