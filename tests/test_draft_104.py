"""104 (Upload Resumption Supported) to clients of the resumable upload
draft: sent under gunicorn with ``RINDLE_TUS_SEND_104`` (node-a), before the
body is read, so that an optimistic client that loses its connection can
resume; never without the setting (node-b), and never to tus."""

from __future__ import annotations

import time

import pytest

from .cluster import PART, TUS, Cluster, RawRequest, session_id_of
from .conftest import payload

pytestmark = pytest.mark.slow


def _interim(request: RawRequest) -> tuple[int, dict[str, str]]:
    """The next response head on the socket, read a byte at a time so that
    nothing after it is consumed."""
    head = b""
    while b"\r\n\r\n" not in head:
        piece = request.sock.recv(1)
        assert piece, f"connection closed before a response: {head!r}"
        head += piece
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return int(lines[0].split(" ")[1]), headers


def _creation(url: str, version: int, length: int) -> RawRequest:
    return RawRequest(
        url,
        "POST",
        {
            "Upload-Draft-Interop-Version": str(version),
            "Upload-Complete": "?1",
            "Content-Length": str(length),
            "Content-Type": "application/octet-stream",
        },
    )


@pytest.mark.parametrize("version", [6, 8])
def test_104_names_the_upload_before_the_body_is_sent(nodes: Cluster, version: int) -> None:
    data = payload(2 * PART + 11, seed=version)
    request = _creation(nodes["node-a"].files_url, version, len(data))
    # Nothing of the body has been sent: the 104 comes first.
    status, headers = _interim(request)
    assert status == 104
    assert headers["upload-draft-interop-version"] == str(version)
    assert "max-size=" in headers["upload-limit"]
    location = headers["location"]
    request.send(data)
    response = request.response()
    request.close()
    assert response.status_code == 201
    assert response.headers["location"] == location
    assert response.headers["upload-complete"] == "?1"
    nodes.assert_complete(session_id_of(location), data)


def test_a_creation_cut_after_its_104_resumes_from_what_arrived(nodes: Cluster) -> None:
    data = payload(2 * PART + 999, seed=7)
    node = nodes["node-a"]
    request = _creation(node.files_url, 8, len(data))
    status, headers = _interim(request)
    assert status == 104
    location = headers["location"]
    sent = PART + 12345
    request.send(data[:sent])
    time.sleep(0.5)
    request.close()
    session_id = session_id_of(location)
    # The server keeps what arrived; the upload stays (its client knows the URL).
    deadline = time.monotonic() + 30
    while True:
        head = RawRequest(location, "HEAD", {"Upload-Draft-Interop-Version": "8"}).response()
        assert head.status_code == 204, head
        if int(head.headers["upload-offset"]) == sent or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert head.headers["upload-offset"] == str(sent)
    assert head.headers["upload-complete"] == "?0"
    assert head.headers["upload-length"] == str(len(data))
    append = RawRequest(
        location,
        "PATCH",
        {
            "Upload-Draft-Interop-Version": "8",
            "Upload-Complete": "?1",
            "Upload-Offset": str(sent),
            "Content-Type": "application/partial-upload",
            "Content-Length": str(len(data) - sent),
        },
    )
    append.send(data[sent:])
    response = append.response()
    append.close()
    assert response.status_code == 204, response
    assert response.headers["upload-complete"] == "?1"
    nodes.assert_complete(session_id, data)


def test_no_104_without_the_setting(nodes: Cluster) -> None:
    data = payload(1000, seed=8)
    request = _creation(nodes["node-b"].files_url, 8, len(data))
    request.send(data)
    status, headers = _interim(request)
    request.close()
    assert status == 201
    nodes.assert_complete(session_id_of(headers["location"]), data)


def test_no_104_to_tus(nodes: Cluster) -> None:
    data = payload(1000, seed=9)
    request = RawRequest(
        nodes["node-a"].files_url,
        "POST",
        {**TUS, "Upload-Length": str(len(data)), "Content-Type": "application/offset+octet-stream",
         "Content-Length": str(len(data))},
    )
    request.send(data)
    status, headers = _interim(request)
    request.close()
    assert status == 201
    nodes.assert_complete(session_id_of(headers["location"]), data)
