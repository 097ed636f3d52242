"""A gunicorn request body of known length, read straight from the client's socket.

gunicorn hands a WSGI application its body through three layers of
buffers (the socket unreader, the length reader, the body object), and
Django adds its own ``LimitedStream``: every read of a 512 KiB chunk is
copied five or six times in Python, about 0.8 ms a PATCH on this project's
benchmark machine, against 0.04 ms for one ``recv`` of the same bytes.

``SocketBody`` takes over the body once, before its first byte is read:
it takes the bytes gunicorn's buffers already hold (only this body's: what
a client pipelined behind it goes back where gunicorn will look for the
next request), then reads the rest with ``recv``, never past the body's
end. Every byte it reads is subtracted from gunicorn's own count of the
body still to come, so gunicorn decides keep-alive (and drains what is left
after a refusal) exactly as if it had read the bytes itself.

It is used only where gunicorn's objects are what this module knows
(``take_over`` checks their shape, ``None`` otherwise): any other server,
or a gunicorn whose internals change, is read through the request as before.
"""

from __future__ import annotations

import io
import socket
from collections.abc import Mapping
from typing import Any

# The longest a single read asks for: the receiver's own chunks are at most
# ``RINDLE_TUS_READ_CHUNK_SIZE``, this only bounds a caller asking for more.
MAX_RECV = 4 * 1024 * 1024


class SocketBody:
    """The unread rest of one request body: ``read`` as a file's, at most ``size``
    bytes and b"" at its end; a read returns what the socket has (at least one byte)."""

    # A read never waits for more than the socket has (``Body`` need not keep its reads small).
    partial_reads = True

    def __init__(self, sock: socket.socket, head: bytes, reader: Any, wsgi_input: Any) -> None:
        self._sock = sock
        # Bytes of this body that gunicorn had read already, handed out first.
        self._head = memoryview(head)
        # gunicorn's LengthReader: its ``length`` is the body still in the socket.
        self._reader = reader
        self._input = wsgi_input

    def read(self, size: int = -1, /) -> bytes:
        if self._head:
            count = len(self._head) if size < 0 else min(size, len(self._head))
            data, self._head = bytes(self._head[:count]), self._head[count:]
            return data
        left = self._reader.length
        if left <= 0 or size == 0:
            return b""
        want = min(left, MAX_RECV if size < 0 else size, MAX_RECV)
        try:
            data = self._sock.recv(want)
        except Exception:
            # Where the next request would start is unknown now: gunicorn must not reuse the connection.
            self._input.failed = True
            raise
        self._reader.length = left - len(data)
        return data


def take_over(request: Any, length: int) -> SocketBody | None:
    """The body of ``request`` (gunicorn, ``Content-Length: length``) as a
    ``SocketBody``, or None where it cannot be taken over safely: another
    server, an unfamiliar gunicorn, or a body something has started to read."""
    environ: Mapping[str, Any] = request.META
    sock = environ.get("gunicorn.socket")
    if not isinstance(sock, socket.socket):
        return None
    if getattr(request, "_read_started", True):
        return None
    # gunicorn's objects, checked by shape below: it exports no types for them.
    wsgi_input: Any = environ.get("wsgi.input")
    reader: Any = getattr(wsgi_input, "reader", None)
    unreader: Any = getattr(reader, "unreader", None)
    if not (
        type(wsgi_input).__module__ == "gunicorn.http.body"
        and type(wsgi_input).__name__ == "Body"
        and type(reader).__name__ == "LengthReader"
        and type(unreader).__name__ == "SocketUnreader"
        and getattr(unreader, "sock", None) == sock
        and isinstance(getattr(wsgi_input, "buf", None), io.BytesIO)
        and isinstance(getattr(unreader, "buf", None), io.BytesIO)
        and isinstance(getattr(reader, "length", None), int)
    ):
        return None
    # What the body object already took from its reader is all this body's.
    head = wsgi_input.buf.getvalue()
    if len(head) + reader.length != length:
        # Not the untouched body this request declares.
        return None
    wsgi_input.buf = io.BytesIO()
    # What the unreader holds beyond the headers may run past this body (a
    # pipelined request): only this body's share is taken.
    buffered = unreader.buf.getvalue()
    share = min(len(buffered), reader.length)
    unreader.buf = io.BytesIO()
    unreader.buf.write(buffered[share:])
    reader.length -= share
    # Nothing may read the body through the request from now on.
    request._read_started = True
    return SocketBody(sock, head + buffered[:share], reader, wsgi_input)
