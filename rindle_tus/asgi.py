"""The ASGI entry point: Django's handler, except that tus request bodies
stream.

Django's ``ASGIHandler`` reads a whole request body into a temporary file
before the view runs, and drops the request without calling the view when
the client disconnects meanwhile. For tus that means no part goes up while
the body arrives and a cut PATCH keeps nothing. Here, a PATCH or POST routed
to a rindle_tus view gets a body read from ``receive()`` on demand, by the
view's own thread as it reads (so the ASGI server's flow control holds the
client back: back-pressure), and the view runs however the body ends, so
what arrived is kept as under WSGI. Every other request, and every other
part of a tus request (middleware, authentication, the response), goes
through Django's handler unchanged.

Use it in place of ``django.core.asgi.get_asgi_application()``::

    from rindle_tus.asgi import get_asgi_application
    application = get_asgi_application()
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import django
from django.conf import settings
from django.core.checks import CheckMessage, Warning
from django.core.handlers.asgi import ASGIHandler, ASGIRequest
from django.http.response import HttpResponseBase
from django.urls import Resolver404, get_resolver, set_urlconf
from django.urls.base import get_script_prefix

from .body import STREAM_KEY

Scope = dict[str, Any]
Message = Mapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

logger = logging.getLogger("rindle_tus")

# How often a blocked read looks whether it was interrupted (a handover, a stall).
POLL = 0.1
_BODY_METHODS = frozenset({"PATCH", "POST"})


def get_asgi_application() -> ASGIHandler:
    """``django.core.asgi.get_asgi_application()``, streaming tus bodies."""
    django.setup(set_prefix=False)
    # uvicorn, granian and hypercorn never run the system checks: say it in the log.
    for message in persistent_connection_warnings():
        logger.warning("%s (%s) %s", message.msg, message.id, message.hint)
    return StreamingASGIHandler()


class ReceiveStream:
    """A request body read from ``receive()`` as a blocking file, from the
    view's thread. Nothing is read ahead: each read that finds the buffer
    empty awaits one more message on the event loop."""

    # A read returns what one message brought, never waiting for more (see ``body.Body``).
    partial_reads = True

    def __init__(self, receive: Receive, loop: asyncio.AbstractEventLoop) -> None:
        self._receive = receive
        self._loop = loop
        self._buffer = bytearray()
        self._lock = threading.Lock()
        self._interrupted = False
        self.ended = False
        self.disconnected = False
        # Set (on the loop) once no more messages of the body will be read.
        self.done = asyncio.Event()

    def read(self, size: int = -1, /) -> bytes:
        while not self._buffer and not self.ended:
            message = self._next()
            if message is None:
                return b""
            self._take(message)
        if size < 0 or size >= len(self._buffer):
            data = bytes(self._buffer)
            self._buffer.clear()
        else:
            data = bytes(self._buffer[:size])
            del self._buffer[:size]
        return data

    def _next(self) -> Message | None:
        """The next message, or None once the read was interrupted."""
        future: Future[Message] = asyncio.run_coroutine_threadsafe(_call(self._receive), self._loop)
        while True:
            try:
                return future.result(timeout=POLL)
            except FutureTimeout:
                with self._lock:
                    if self._interrupted:
                        future.cancel()
                        self._interrupted = False
                        return None

    def _take(self, message: Message) -> None:
        if message["type"] == "http.disconnect":
            self.disconnected = True
            self._end()
            return
        self._buffer += message.get("body", b"")
        if not message.get("more_body", False):
            self._end()

    def _end(self) -> None:
        self.ended = True
        self._loop.call_soon_threadsafe(self.done.set)

    def interrupt(self) -> None:
        """End the read that waits for the client now (from any thread): it
        returns b"", as if the client had stopped sending."""
        with self._lock:
            self._interrupted = True

    def close(self) -> None:
        """The view is done with the body: Django's disconnect watch may read on."""
        if not self.ended:
            self._end()


class _StreamedReceive:
    """Tells ``read_body`` and ``listen_for_disconnect`` that this request's
    body is the view's to read."""

    def __init__(self, receive: Receive, stream: ReceiveStream) -> None:
        self.receive = receive
        self.stream = stream

    async def __call__(self) -> Message:
        return await self.receive()


class StreamingASGIHandler(ASGIHandler):
    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("method") in _BODY_METHODS and _is_tus_view(scope):
            stream = ReceiveStream(receive, asyncio.get_running_loop())
            receive = _StreamedReceive(receive, stream)
        await super().handle(scope, receive, send)

    async def read_body(self, receive: Receive) -> Any:
        if isinstance(receive, _StreamedReceive):
            return receive.stream
        return await super().read_body(receive)

    def create_request(  # type: ignore[override]
        self, scope: Scope, body_file: Any
    ) -> tuple[ASGIRequest, None] | tuple[None, HttpResponseBase]:
        made = super().create_request(scope, body_file)
        if made[0] is not None and isinstance(body_file, ReceiveStream):
            made[0].META[STREAM_KEY] = body_file
        return made

    async def listen_for_disconnect(self, receive: Receive) -> None:
        if isinstance(receive, _StreamedReceive):
            # The view reads the body; only once it is over may this read
            # on. A client gone mid-body ends the body, not the request: the
            # view keeps what arrived and answers, as under WSGI.
            await receive.stream.done.wait()
            if receive.stream.disconnected:
                await asyncio.Event().wait()  # cancelled when the response is done
            receive = receive.receive
        await super().listen_for_disconnect(receive)


async def _call(receive: Receive) -> Message:
    return await receive()


def _is_tus_view(scope: Scope) -> bool:
    """Whether the request is routed to a rindle_tus view (resolved as
    Django will resolve it, with the script prefix removed)."""
    path = scope.get("path", "")
    root = scope.get("root_path", "") or get_script_prefix().rstrip("/")
    if root and path.startswith(root):
        path = path[len(root) :]
    set_urlconf(None)
    try:
        match = get_resolver().resolve(path or "/")
    except Resolver404:
        return False
    from .views import TusView

    view = getattr(match.func, "view_class", None)
    return isinstance(view, type) and issubclass(view, TusView)


def persistent_connection_warnings() -> list[CheckMessage]:
    """W004: under ASGI, databases with persistent connections. Each request
    runs in a thread of its own there, so a persistent connection is never
    reused: every request opens one, which lingers until it is collected, and
    a busy process runs the database out of connections ("too many clients").
    Run by ``checks.check_asgi_application`` and when ``get_asgi_application`` builds its handler."""
    persistent = [alias for alias, db in settings.DATABASES.items() if db.get("CONN_MAX_AGE", 0) != 0]
    if not persistent:
        return []
    return [
        Warning(
            f"Under ASGI, persistent connections are never reused (CONN_MAX_AGE of {', '.join(persistent)}): "
            "each request opens a connection of its own, and they pile up until the database refuses more.",
            hint='Set CONN_MAX_AGE to 0; on PostgreSQL (Django 5.1+) pool instead, with OPTIONS {"pool": ...}.',
            id="rindle_tus.W004",
        )
    ]
