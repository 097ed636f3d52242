"""Behaviour that only a real front server shows: gunicorn in the cluster."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import pytest

from .cluster import HTTP_TIMEOUT, OFFSET_TYPE, PART, TUS, Cluster, RawRequest, create, session_id_of
from .conftest import payload

pytestmark = pytest.mark.slow


def _expect_continue(request: RawRequest) -> None:
    interim = b""
    while b"\r\n\r\n" not in interim:
        piece = request.sock.recv(1)
        assert piece, "connection closed before 100 Continue"
        interim += piece
    assert interim.startswith(b"HTTP/1.1 100 Continue")


def test_patch_with_expect_100_continue(nodes: Cluster) -> None:
    node = nodes["node-a"]
    data = payload(PART + 123, seed=41)
    url = create(node.files_url, len(data))
    request = RawRequest(
        url,
        "PATCH",
        {**TUS, "Upload-Offset": "0", "Content-Type": OFFSET_TYPE, "Content-Length": str(len(data)),
         "Expect": "100-continue"},
    )
    _expect_continue(request)
    request.send(data)
    response = request.response()
    assert response.status_code == 204
    assert response.headers["upload-offset"] == str(len(data))
    nodes.assert_complete(session_id_of(url), data)


def test_creation_with_upload_with_expect_100_continue(nodes: Cluster) -> None:
    node = nodes["node-a"]
    data = payload(2 * PART + 5, seed=42)
    request = RawRequest(
        node.files_url,
        "POST",
        {**TUS, "Upload-Length": str(len(data)), "Content-Type": OFFSET_TYPE, "Content-Length": str(len(data)),
         "Expect": "100-continue"},
    )
    _expect_continue(request)
    request.send(data)
    response = request.response()
    assert response.status_code == 201
    assert response.headers["upload-offset"] == str(len(data))
    nodes.assert_complete(session_id_of(response.headers["location"]), data)


def test_chunked_patch_is_stored_under_gunicorn(nodes: Cluster) -> None:
    node = nodes["node-a"]
    data = payload(PART + 77, seed=43)
    url = create(node.files_url, len(data))
    request = RawRequest(
        url, "PATCH", {**TUS, "Upload-Offset": "0", "Content-Type": OFFSET_TYPE, "Transfer-Encoding": "chunked"}
    )
    step = 1_000_000
    for start in range(0, len(data), step):
        piece = data[start : start + step]
        request.send(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
    request.send(b"0\r\n\r\n")
    response = request.response()
    assert response.status_code == 204
    assert response.headers["upload-offset"] == str(len(data))
    nodes.assert_complete(session_id_of(url), data)


# -- bodies read straight from the socket (rindle_tus.socket_body) ---------------


class KeepAlive:
    """One keep-alive connection on which a test writes requests as raw bytes
    (several at once: pipelined) and reads the responses in order."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host = parts.netloc
        self.sock = socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=HTTP_TIMEOUT)
        self.file = self.sock.makefile("rb")

    def request(self, method: str, url: str, headers: dict[str, str], body: bytes = b"") -> bytes:
        lines = [f"{method} {urlsplit(url).path} HTTP/1.1", f"Host: {self.host}"]
        lines += [f"{name}: {value}" for name, value in {**headers, "Content-Length": str(len(body))}.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body

    def send(self, *requests: bytes) -> None:
        self.sock.sendall(b"".join(requests))

    def response(self) -> tuple[int, dict[str, str]]:
        status = int(self.file.readline().split(b" ")[1])
        headers: dict[str, str] = {}
        while (line := self.file.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        self.file.read(int(headers.get("content-length", "0")))
        return status, headers

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def _patch(connection: KeepAlive, url: str, data: bytes, offset: int) -> bytes:
    headers = {**TUS, "Upload-Offset": str(offset), "Content-Type": OFFSET_TYPE}
    return connection.request("PATCH", url, headers, data)


def test_pipelined_requests_behind_a_body_are_answered_in_turn(nodes: Cluster) -> None:
    """A body gunicorn had read whole with the headers (a small PATCH), and one
    arriving behind it, both on one connection with a HEAD behind each: every
    byte lands in its upload and the requests behind them are answered."""
    node = nodes["node-a"]
    data = payload(PART + 300_000, seed=44)
    small = 100
    url = create(node.files_url, len(data))
    connection = KeepAlive(url)
    try:
        head = connection.request("HEAD", url, TUS)
        first, second = _patch(connection, url, data[:small], 0), _patch(connection, url, data[small:], small)
        connection.send(first, head, second, head)
        answers = [connection.response() for _ in range(4)]
    finally:
        connection.close()
    assert [status for status, _ in answers] == [204, 200, 204, 200]
    offsets = [str(small), str(small), str(len(data)), str(len(data))]
    assert [headers["upload-offset"] for _, headers in answers] == offsets
    nodes.assert_complete(session_id_of(url), data)


def test_a_refused_body_leaves_the_connection_to_the_next_request(nodes: Cluster) -> None:
    """A PATCH refused before its body is read (409: wrong offset) is read off
    after the answer; the connection then serves the right PATCH and a HEAD
    sent behind it in the same write."""
    node = nodes["node-a"]
    data = payload(3 * 1024 * 1024, seed=45)
    url = create(node.files_url, len(data))
    connection = KeepAlive(url)
    try:
        connection.send(_patch(connection, url, data[:65536], 7))
        refused = connection.response()
        connection.send(_patch(connection, url, data, 0), connection.request("HEAD", url, TUS))
        stored, head = connection.response(), connection.response()
    finally:
        connection.close()
    assert refused[0] == 409
    assert stored[0] == 204
    assert stored[1]["upload-offset"] == str(len(data))
    assert head[0] == 200
    assert head[1]["upload-offset"] == str(len(data))
    nodes.assert_complete(session_id_of(url), data)
