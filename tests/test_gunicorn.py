"""Behaviour that only a real front server shows: gunicorn in the cluster."""

from __future__ import annotations

import pytest

from .cluster import OFFSET_TYPE, PART, TUS, Cluster, RawRequest, create, session_id_of
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
