"""HTTP for tus 1.0.0: the collection (OPTIONS, POST) and one upload
(OPTIONS, HEAD, PATCH, DELETE, GET).

HTTP only: each method parses its headers (``protocol``), asks the host's
hooks (``hooks``), calls one verb of ``uploads`` and formats the answer.
Nothing here touches S3, the tail or the lease. A request that speaks the
IETF draft (``draft.version_of``) is answered by ``draft_views`` instead,
through the same dispatch."""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.urls import Resolver404, resolve
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from . import concatenation, downloads, draft, draft_views, metrics, protocol, uploads
from .conf import tus_settings
from .exceptions import (
    DatabaseUnavailable,
    Forbidden,
    InvalidHeader,
    InvalidRequest,
    MethodNotAllowed,
    TusError,
    UnsupportedMediaType,
    UnsupportedVersion,
)
from .exchange import body_stream, discard_unread_body, location
from .hooks import authenticate, check_permission, client_key, permits_all, pre_create
from .limits import check_append, check_length, max_size
from .metadata import content_disposition
from .models import ConcatKind, State, TusSession, is_session_id

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


def error_response(request: HttpRequest, error: TusError) -> HttpResponse:
    body = "" if request.method == "HEAD" else f"{error}\n"
    response = HttpResponse(body, status=error.status, content_type="text/plain; charset=utf-8")
    for name, value in error.headers.items():
        response[name] = value
    return response


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
        version = draft.version_of(request.headers)
        try:
            handler = getattr(self, method, None) if method in self.http_method_names else None
            if handler is None:
                raise MethodNotAllowed(request.method or "", self.http_method_names)
            if version is not None and method in draft_views.METHODS:
                handler = functools.partial(getattr(draft_views, method), version=version)
            # OPTIONS is discovery and GET a plain download: neither is tus.
            elif method not in ("options", "get"):
                _check_version(request)
            try:
                if method != "options":
                    authenticate(request)
                response: HttpResponseBase = handler(request, *args, **kwargs)
            except (OperationalError, InterfaceError) as exc:
                # The database went away (restarted, failed over, a dropped
                # connection): nothing was committed past what HEAD reports.
                # Django closes this request's broken connection when it ends;
                # idle ones of other threads need CONN_HEALTH_CHECKS.
                logger.warning("database unavailable: %s", exc)
                raise DatabaseUnavailable() from exc
        except TusError as error:
            if version is not None:
                response = draft_views.error_response(request, version, error)
            else:
                response = error_response(request, error)
            metrics.request(method.upper(), response.status_code, error.code)
        else:
            metrics.request(method.upper(), response.status_code, None)
        if version is not None:
            response[draft.VERSION_HEADER] = str(version.number)
        else:
            response["Tus-Resumable"] = protocol.TUS_VERSION
        response["Cache-Control"] = "no-store"
        discard_unread_body(request, response)
        return response

    def options(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = HttpResponse(status=204)
        response["Tus-Version"] = ",".join(protocol.SUPPORTED_VERSIONS)
        response["Tus-Extension"] = ",".join(EXTENSIONS)
        # Always: S3's 5 TiB object limit is a hard limit even when no setting
        # lowers it, and tus asks a server with one to advertise it.
        response["Tus-Max-Size"] = str(max_size())
        response["Tus-Checksum-Algorithm"] = ",".join(protocol.CHECKSUM_ALGORITHMS)
        # The draft's discovery, on the same answer.
        draft_views.discovery_headers(response, draft.version_of(request.headers) or draft.NEWEST)
        return response


def _check_version(request: HttpRequest) -> None:
    """A request that is not the draft must be tus 1.0.0."""
    named = draft.requested(request.headers)
    if named is not None and request.headers.get("Tus-Resumable") is None:
        served = ", ".join(str(v) for v in draft.VERSIONS)
        raise UnsupportedVersion(
            f"{draft.VERSION_HEADER} {request.headers[draft.VERSION_HEADER]!r} is not served: this server speaks "
            f"tus 1.0.0 and the resumable upload draft's interop versions {served}.",
            supported=protocol.SUPPORTED_VERSIONS,
        )
    protocol.check_version(request.headers.get("Tus-Resumable"))


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
        if length is not None:
            check_length(length)
        check_permission(request, "create", None)
        pre_create(request, length, metadata)
        with_body = request.content_type == protocol.OFFSET_CONTENT_TYPE
        body = body_stream(request) if with_body else None
        if body is not None:
            check_append(body.length)
        session = uploads.create(
            length=length,
            metadata_raw=metadata_raw,
            metadata=protocol.decoded_metadata(metadata),
            user=getattr(request, "user", None),
            client=client_key(request),
            partial=concat is not None,
            body=body,
            checksum=protocol.parse_checksum(headers.get("Upload-Checksum")) if body is not None else None,
        )
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
        user = getattr(request, "user", None)
        partials = concatenation.partials(
            _named_uploads(request, concat.urls), user, lambda p: check_permission(request, "concatenate", p)
        )
        total = concatenation.final_length(partials)
        check_length(total, what=f"The partial uploads add up to {total} bytes, which")
        pre_create(request, total, metadata)
        session = uploads.create_final(
            partials,
            concat.urls,
            metadata_raw=metadata_raw,
            metadata=protocol.decoded_metadata(metadata),
            user=user,
            client=client_key(request),
        )
        return _created(request, session)


class TusUploadView(TusView):
    http_method_names = ["options", "head", "patch", "delete", "get"]

    def head(self, request: HttpRequest, upload_id: str) -> HttpResponse:
        session = uploads.get(upload_id)
        check_permission(request, "head", session)
        session = uploads.settled(session)
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
        # With no permission hook, the row is read as the lease is taken: no
        # check below can refuse what another client could not have sent.
        offset = _offset_if_valid(request.headers.get("Upload-Offset"))
        session, lease = uploads.for_body(upload_id, offset, take=permits_all())
        with uploads.holding(lease):
            check_permission(request, "patch", session)
            if session.concat == ConcatKind.FINAL:
                raise Forbidden("A final concatenated upload cannot be patched.")
            if request.content_type != protocol.OFFSET_CONTENT_TYPE:
                raise UnsupportedMediaType()
            offset = protocol.parse_int(request.headers.get("Upload-Offset"), "Upload-Offset")
            if offset is None:
                raise InvalidHeader("PATCH requires Upload-Offset.")
            length = protocol.parse_int(request.headers.get("Upload-Length"), "Upload-Length")
            checksum = protocol.parse_checksum(request.headers.get("Upload-Checksum"))
            body = body_stream(request)
            check_append(body.length)
            if length is not None and session.length is None and offset == session.offset:
                # The deferred length becomes known: the same limits and hook as at creation.
                check_length(length, session.part_size)
                metadata = protocol.parse_metadata(session.metadata_raw, tus_settings.METADATA_MAX_SIZE)
                pre_create(request, length, metadata)
            session = uploads.apply_body(session, body, checksum, offset=offset, length=length, lease=lease)
        response = HttpResponse(status=204)
        _upload_headers(response, session)
        return response

    def delete(self, request: HttpRequest, upload_id: str) -> HttpResponse:
        session = uploads.get(upload_id)
        check_permission(request, "delete", session)
        uploads.terminate(session)
        return HttpResponse(status=204)

    def get(self, request: HttpRequest, upload_id: str) -> HttpResponseBase:
        """A finished upload's bytes: a redirect to a short-lived URL of the
        object, or (``RINDLE_TUS_GET_REDIRECT = False``) the bytes themselves."""
        session = uploads.get(upload_id)
        check_permission(request, "get", session)
        download = downloads.open_download(session)
        if download.url is not None:
            return HttpResponseRedirect(download.url)
        assert download.chunks is not None
        # Under ASGI, Django would gather a sync iterator whole in memory.
        chunks = _async_chunks(download.chunks) if isinstance(request, ASGIRequest) else download.chunks
        response = StreamingHttpResponse(chunks, content_type=download.content_type)
        response["Content-Length"] = str(download.length)
        response["Content-Disposition"] = content_disposition(download.filename)
        # The uploader's bytes, served from this site's origin: a browser must
        # neither guess them to be a page nor run them as one of the site's.
        response["X-Content-Type-Options"] = "nosniff"
        response["Content-Security-Policy"] = "default-src 'none'; sandbox"
        return response


def _offset_if_valid(value: str | None) -> int | None:
    """``Upload-Offset`` if it parses; otherwise the view refuses it in its turn."""
    try:
        return protocol.parse_int(value, "Upload-Offset")
    except InvalidHeader:
        return None


async def _async_chunks(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    """``chunks`` read one at a time on a worker thread."""
    read = sync_to_async(_next_chunk, thread_sensitive=False)
    while (chunk := await read(chunks)) is not None:
        yield chunk


def _next_chunk(chunks: Iterator[bytes]) -> bytes | None:
    return next(chunks, None)


def _created(request: HttpRequest, session: TusSession) -> HttpResponse:
    response = HttpResponse(status=201)
    response["Location"] = location(request, session)
    _expires_header(response, session)
    return response


def _named_uploads(request: HttpRequest, urls: Sequence[str]) -> list[tuple[str, str]]:
    """The upload id each URL of ``Upload-Concat`` names on this server."""
    named: list[tuple[str, str]] = []
    script = request.META.get("SCRIPT_NAME", "").rstrip("/")
    for url in urls:
        parts = urlsplit(url)
        if parts.netloc and parts.netloc != request.get_host():
            raise InvalidRequest(f"Upload-Concat names {url!r}, which is not an upload of this server.")
        path = unquote(parts.path)
        if script and path.startswith(script + "/"):
            path = path[len(script) :]
        try:
            match = resolve(path)
        except Resolver404:
            raise InvalidRequest(f"Upload-Concat names {url!r}, which is not an upload.") from None
        upload_id = match.kwargs.get("upload_id")
        if match.view_name != "rindle_tus:upload" or not upload_id or not is_session_id(upload_id):
            raise InvalidRequest(f"Upload-Concat names {url!r}, which is not an upload.")
        named.append((url, upload_id))
    return named
