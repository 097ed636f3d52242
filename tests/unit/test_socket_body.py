"""Taking a body over from gunicorn (``socket_body``): gunicorn's own parser
and Django's own request over a socket pair, so every byte of the body is
read once, none of the request behind it, and gunicorn's count of the body
still to come stays true."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import gunicorn.config
import pytest
from django.core.handlers.wsgi import WSGIRequest
from gunicorn.http import wsgi
from gunicorn.http.parser import RequestParser

from rindle_tus.body import Body
from rindle_tus.socket_body import SocketBody, take_over


def _request(method: str, body: bytes, *, length: int | None = None) -> bytes:
    declared = len(body) if length is None else length
    return f"{method} /files/x HTTP/1.1\r\nHost: t\r\nContent-Length: {declared}\r\n\r\n".encode() + body


@pytest.fixture
def served() -> Iterator[tuple[socket.socket, Any]]:
    """The client's end of a socket pair, and gunicorn's parser on the server's end."""
    client, server = socket.socketpair()
    cfg = gunicorn.config.Config()
    try:
        yield client, (server, cfg, RequestParser(cfg, server, ("127.0.0.1", 1)))
    finally:
        client.close()
        server.close()


def _next(served: tuple[socket.socket, Any]) -> tuple[WSGIRequest, Any]:
    _, (server, cfg, parser) = served
    message = next(parser)
    _, environ = wsgi.create(message, server, ("127.0.0.1", 1), ("127.0.0.1", 8000), cfg)
    return WSGIRequest(environ), message


def _read_all(body: Body, size: int) -> bytes:
    """As the receiver reads: until Content-Length arrived, or the body ends early."""
    out = b""
    while body.length is None or body.received < body.length:
        data = body.read(size)
        if not data:
            break
        out += data
    return out


@pytest.mark.parametrize("length", [100, 5000, 300_000])
def test_a_body_then_a_pipelined_request(served: Any, length: int) -> None:
    """A short body gunicorn read with the headers, or a long one mostly in
    the socket, with the next request sent in the same write."""
    client, _ = served
    data = bytes(range(256)) * (length // 256) + b"x" * (length % 256)
    behind = _request("PATCH", b"next!")
    sender = threading.Thread(target=client.sendall, args=(_request("PATCH", data) + behind,))
    sender.start()
    request, message = _next(served)
    stream = take_over(request, length)
    assert isinstance(stream, SocketBody)
    body = Body(stream, length)
    assert _read_all(body, 64 * 1024) == data
    assert not body.disconnected and not body.unread
    # gunicorn sees the body as read: nothing left for it to drain.
    assert message.body.read() == b""
    sender.join()
    following, _ = _next(served)
    assert following.read() == b"next!"


def test_a_body_read_in_part_leaves_the_rest_to_gunicorn(served: Any) -> None:
    """What a refusal reads off is counted: gunicorn drains only the rest."""
    client, _ = served
    data = b"a" * 200_000
    client.sendall(_request("PATCH", data) + _request("HEAD", b""))
    request, message = _next(served)
    stream = take_over(request, len(data))
    assert stream is not None
    first = stream.read(50_000)
    assert first == data[: len(first)]
    rest = b""
    while piece := message.body.read(65536):
        rest += piece
    assert first + rest == data
    following, _ = _next(served)
    assert following.method == "HEAD"


def test_a_client_that_goes_away_is_a_disconnect(served: Any) -> None:
    client, _ = served
    client.sendall(_request("PATCH", b"b" * 1000, length=10_000))
    request, _ = _next(served)
    stream = take_over(request, 10_000)
    assert stream is not None
    body = Body(stream, 10_000)
    client.shutdown(socket.SHUT_WR)
    assert _read_all(body, 4096) == b"b" * 1000
    assert body.disconnected


def test_a_body_already_started_is_not_taken_over(served: Any) -> None:
    client, _ = served
    client.sendall(_request("PATCH", b"c" * 3000))
    request, _ = _next(served)
    assert request.read(10) == b"c" * 10
    assert take_over(request, 3000) is None
    assert request.read() == b"c" * 2990


def test_only_gunicorn_bodies_are_taken_over(served: Any) -> None:
    client, _ = served
    client.sendall(_request("PATCH", b"d" * 10))
    request, _ = _next(served)
    request.META["wsgi.input"] = type("Other", (), {"read": lambda self, size=-1: b""})()
    assert take_over(request, 10) is None
