"""What the views of both protocols (tus in ``views``, the draft in
``draft_views``) share about one exchange: the request body as a stream,
draining a refused one, and the URL of an upload."""

from __future__ import annotations

import functools
import logging

from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.urls import reverse

from . import protocol
from .body import STREAM_KEY, Body, Empty, request_socket
from .exceptions import LengthRequired, TusError
from .models import TusSession
from .socket_body import take_over

logger = logging.getLogger("rindle_tus")


def body_stream(request: HttpRequest) -> Body:
    """The request body as a stream, with its length when declared; one per request.

    Never ``request.body``: bytes are read in bounded chunks (under gunicorn
    straight from the socket, ``socket_body``). A chunked body
    (no Content-Length) is read straight from the server's input where the
    server delimits it (``wsgi.input_terminated``).
    """
    body: Body | None = getattr(request, "_tus_body", None)
    if body is not None:
        return body
    declared = request.META.get("CONTENT_LENGTH")
    sock = request_socket(request.META)
    discardable = "gunicorn.socket" in request.META
    streamed = request.META.get(STREAM_KEY)
    if streamed is None and isinstance(request, ASGIRequest) and request.method in ("PATCH", "POST"):
        _warn_plain_asgi()
    interrupter = streamed.interrupt if streamed is not None else None
    if declared not in (None, ""):
        length = protocol.parse_int(declared, "Content-Length")
        # Under gunicorn, straight from the socket (``socket_body``); else through the request.
        direct = take_over(request, length) if length else None
        stream = request if direct is None else direct
        body = Body(stream, length, sock, discardable=discardable, interrupter=interrupter)
    elif streamed is not None:
        # An ASGI server delimits a chunked body itself.
        body = Body(streamed, None, interrupter=interrupter)
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


@functools.cache
def _warn_plain_asgi() -> None:
    logger.warning(
        "rindle_tus is served by Django's own ASGI handler, which reads each request body whole "
        "before the view runs: no part is uploaded while a body arrives and a cut PATCH keeps "
        "nothing. Serve the project with rindle_tus.asgi.get_asgi_application()."
    )


def discard_unread_body(request: HttpRequest, response: HttpResponseBase) -> None:
    """Let the client read a refusal: drop what it still sends once the
    answer is out (``Body.discard``), instead of resetting the connection."""
    try:
        body = body_stream(request)
    except TusError:
        return
    if body.unread:
        # The server calls close() once the response is written.
        response._resource_closers.append(body.discard)  # type: ignore[attr-defined]


def location(request: HttpRequest, session: TusSession) -> str:
    return request.build_absolute_uri(reverse("rindle_tus:upload", args=[session.id]))
