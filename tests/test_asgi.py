"""tus under ASGI (``rindle_tus.asgi``): bodies stream as under WSGI.

The live-server suites (conformance, tus-js-client, tuspy, stalled bodies)
run under each ASGI server too (``pytest_generate_tests`` in conftest); these
tests pin what only streaming gives: parts go up while the body arrives, a
cut body keeps what arrived, a blocked read is handed over. Measured before
this entry point, under ``django.core.asgi``: a PATCH cut after 32 MiB of 64
left the offset at 0.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from rindle_tus.models import TusSession

from .asgi_server import ASGI_SERVERS, AsgiLiveServer
from .cluster import (
    OFFSET_TYPE,
    TUS,
    Cluster,
    Node,
    create,
    head,
    offset_of,
    open_patch,
    patch,
    session_id_of,
    wait_until,
)
from .conftest import PART, S3, MiB, payload, sha256

pytestmark = pytest.mark.slow


@pytest.fixture(params=ASGI_SERVERS)
def asgi_tus(
    request: pytest.FixtureRequest, s3: S3, live_server: Any, tail_root: Path, asgi_servers: dict[str, Any]
) -> str:
    """The collection URL of an in-process ASGI server (``live_server``
    gives the test a database the server's threads can see)."""
    kind = request.param
    if kind not in asgi_servers:
        asgi_servers[kind] = AsgiLiveServer(kind)
    return f"{asgi_servers[kind].url}/files/"


def row(url: str) -> TusSession:
    return TusSession.objects.get(pk=session_id_of(url))


def test_parts_go_up_while_the_body_arrives_and_a_cut_keeps_what_arrived(asgi_tus: str, s3: S3) -> None:
    data = payload(64 * MiB, seed=61)
    url = create(asgi_tus, len(data))
    request = open_patch(url, 0, len(data))
    request.send(data[: 24 * MiB])
    sent = 24 * MiB

    def committed_mid_body() -> bool:
        # Keep the body coming, a little at a time: a part is committed
        # between two reads of the body.
        nonlocal sent
        request.send(data[sent : sent + 64 * 1024])
        sent += 64 * 1024
        return len(row(url).parts) >= 4

    # The view reads while the client sends: parts are committed long before
    # the body could have been read whole (Django's own handler would not
    # even have called the view yet).
    wait_until(committed_mid_body, 60, "parts committed mid-body", step=0.05)
    assert sent < len(data)
    request.close()
    # A cut body keeps exactly what arrived: the parts and the tail.
    wait_until(lambda: not row(url).lease_token, 60, "the cut request to end")
    assert offset_of(url) == sent
    assert patch(url, data[sent:], sent).status_code == 204
    assert s3.sha256(row(url).key) == sha256(data)


def test_a_silent_client_is_handed_over_to_its_retry(asgi_tus: str, s3: S3) -> None:
    """The phone that changed networks: its PATCH blocks on a client that
    will never send again; the retry's HEAD has it hand over at once."""
    data = payload(3 * PART + 123, seed=62)
    url = create(asgi_tus, len(data))
    request = open_patch(url, 0, len(data))
    request.send(data[: 2 * PART + 7])
    # Reading: it holds the lease and has started the multipart upload (its
    # parts are committed between reads, so the silent client leaves them
    # uploaded but not yet in the row).
    wait_until(lambda: row(url).upload_id != "" and row(url).lease_token != "", 60, "the PATCH to be reading")
    try:
        response = head(url)
        assert response.status_code == 200
        kept = int(response.headers["Upload-Offset"])
        assert kept == 2 * PART + 7
        assert patch(url, data[kept:], kept).status_code == 204
    finally:
        request.close()
    assert s3.sha256(row(url).key) == sha256(data)


def test_a_chunked_body_streams_under_asgi(asgi_tus: str, s3: S3) -> None:
    """ASGI servers decode chunked bodies themselves, so a PATCH without
    Content-Length is stored, not refused with 411."""
    data = payload(PART + 4321, seed=63)
    url = create(asgi_tus, len(data))

    def chunks() -> Any:
        for start in range(0, len(data), 1_000_000):
            yield data[start : start + 1_000_000]

    response = patch(url, chunks(), 0)  # type: ignore[arg-type]
    assert response.status_code == 204, response.text
    assert s3.sha256(row(url).key) == sha256(data)


def _workers_rss(node: Node) -> int:
    total = 0
    for pid in node.worker_pids():
        with contextlib.suppress(FileNotFoundError, StopIteration):
            status = Path(f"/proc/{pid}/status").read_text()
            total += int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1]) * 1024
    return total


def test_a_1_gib_body_under_uvicorn_keeps_the_workers_memory_flat(nodes: Cluster) -> None:
    """The example project under ``uvicorn --workers 2`` (node-u): one 1 GiB
    PATCH, streamed in bounded reads, never a body held whole."""
    node = nodes["node-u"]
    warm = create(node.files_url, 3 * MiB)
    assert patch(warm, payload(3 * MiB, seed=64), 0).status_code == 204
    size = 1024 * MiB
    block = payload(4 * MiB, seed=65)
    digest = hashlib.sha256()

    class Body:
        """Generated as it is sent; its length known, so sent with Content-Length."""

        def __len__(self) -> int:
            return size

        def __iter__(self) -> Iterator[bytes]:
            for n in range(size // len(block)):
                piece = block[n % 7 :] + block[: n % 7]  # differs block to block
                digest.update(piece)
                yield piece

    before = _workers_rss(node)
    peak = before
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.1):
            peak = max(peak, _workers_rss(node))

    sampler = threading.Thread(target=sample)
    sampler.start()
    url = create(node.files_url, size)
    try:
        response = requests.patch(
            url, data=Body(), headers={**TUS, "Upload-Offset": "0", "Content-Type": OFFSET_TYPE}, timeout=600
        )
    finally:
        done.set()
        sampler.join()
    assert response.status_code == 204, response.text
    row = nodes.row(session_id_of(url))
    assert row["state"] == "completed" and row["offset"] == size
    assert nodes.object_sha256(row["key"]) == digest.hexdigest()
    grown = peak - before
    # Parts of 5 MiB, at most UPLOAD_CONCURRENCY + 1 of them per PATCH; a body held whole would be 1 GiB.
    assert grown < 128 * MiB, f"the workers grew by {grown / MiB:.0f} MiB"
