"""A PATCH refused before its body is read (409, 413, 415...) must reach the
client as an answer it can read, not as a broken pipe.

Measured before the fix: with a 20 MiB body, tus-js-client (Node's HTTP
stack) lost the status to EPIPE in about one run in five under gunicorn's
sync worker (one in thirty under gthread), because closing the connection
with the body unread sends a reset that can arrive before Node reads the
answer. curl and tuspy read it every time. Now the rest of the body is
discarded once the answer is out (bounded), and the connection ends without
a reset. Each client is run several times, on both worker classes.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from tusclient.client import TusClient
from tusclient.exceptions import TusUploadFailed

from .cluster import OFFSET_TYPE, Cluster, MiB, create, offset_of
from .conftest import payload, service_unavailable
from .test_client_tus_js import run_client

BODY = 20 * MiB
RUNS = 8

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("refusals") / "body.bin"
    path.write_bytes(payload(BODY, seed=91))
    return path


@pytest.mark.parametrize("node_name", ["node-a", "node-y"], ids=["gthread", "sync"])
def test_tus_js_client_reads_a_413_sent_before_its_body(nodes: Cluster, big_file: Path, node_name: str) -> None:
    node = nodes[node_name]
    for _ in range(RUNS):
        # The upload is smaller than the file: the PATCH goes past Upload-Length.
        url = create(node.files_url, 1000)
        events = run_client(endpoint=node.files_url, uploadUrl=url, file=str(big_file), retryDelays=None)
        statuses = [(e["method"], e["status"]) for e in events if e["event"] == "response"]
        assert statuses == [("HEAD", 200), ("PATCH", 413)], events
        assert events[-1]["event"] == "error" and "response code: 413" in events[-1]["message"], events[-1]
        assert offset_of(url) == 0


@pytest.mark.parametrize("node_name", ["node-a", "node-y"], ids=["gthread", "sync"])
def test_tuspy_reads_a_409_sent_before_its_body(nodes: Cluster, big_file: Path, node_name: str) -> None:
    node = nodes[node_name]
    for _ in range(RUNS):
        url = create(node.files_url, BODY)
        uploader = TusClient(node.files_url).uploader(str(big_file), url=url, chunk_size=BODY)
        uploader.offset = 5  # what a client with a stale offset sends
        with pytest.raises(TusUploadFailed) as refused:
            uploader.upload_chunk()
        assert refused.value.status_code == 409
        assert offset_of(url) == 0


@pytest.mark.parametrize("node_name", ["node-a", "node-y"], ids=["gthread", "sync"])
@pytest.mark.parametrize(
    ("content_type", "offset", "status"),
    [(OFFSET_TYPE, "5", 409), ("application/octet-stream", "0", 415)],
    ids=["409", "415"],
)
def test_curl_reads_a_refusal_sent_before_its_body(
    nodes: Cluster, big_file: Path, node_name: str, content_type: str, offset: str, status: int
) -> None:
    curl = shutil.which("curl")
    if curl is None:
        service_unavailable("curl is not installed")
    node = nodes[node_name]
    for _ in range(RUNS):
        url = create(node.files_url, BODY)
        done = subprocess.run(
            [curl, "-sS", "-X", "PATCH", "--data-binary", f"@{big_file}", "-o", "/dev/null",
             "-w", "%{json}", "-H", "Tus-Resumable: 1.0.0", "-H", f"Upload-Offset: {offset}",
             "-H", f"Content-Type: {content_type}", url],
            capture_output=True, text=True, timeout=120, check=False,
        )
        assert json.loads(done.stdout)["http_code"] == status, done.stderr
        assert offset_of(url) == 0



def test_a_refused_body_that_fits_the_discard_leaves_the_connection_usable(nodes: Cluster) -> None:
    """Read off whole, a refused 256 KiB body leaves the keep-alive connection
    in step: the next request on it is answered (gunicorn alone drains 64 KiB
    and then closes)."""
    node = nodes["node-a"]
    url = create(node.files_url, 10 * MiB)
    path = urlsplit(url).path
    body = payload(256 * 1024, seed=92)
    with socket.create_connection(("127.0.0.1", node.port), timeout=60) as sock:
        stream = sock.makefile("rb")
        sock.sendall(
            f"PATCH {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 7\r\n"
            f"Content-Type: {OFFSET_TYPE}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
        )
        assert _status_and_headers(stream)[0] == 409
        sock.sendall(f"HEAD {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nTus-Resumable: 1.0.0\r\n\r\n".encode())
        status, headers = _status_and_headers(stream)
    assert status == 200 and headers["upload-offset"] == "0"


def _status_and_headers(stream: Any) -> tuple[int, dict[str, str]]:
    status = int(stream.readline().split()[1])
    headers = {}
    while (line := stream.readline().decode("latin-1").strip()):
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    stream.read(int(headers.get("content-length", "0")))
    return status, headers
