"""Hostile clients against a node deployed as the README says (gunicorn
gthread, 8 threads a worker, the example project's settings): the numbers a
client sends never decide how much memory or how many threads it takes.

Measured before the bounds: a declared length of 5 TiB made an empty PATCH
allocate a 525 MiB part buffer, and the pool kept three idle per distinct
size (a worker grew by about 2 GiB in four request pairs and stayed there);
48 PATCHes sending a byte every few seconds made every other page of the site
time out.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest
import requests

from .cluster import (
    TUS,
    Cluster,
    MiB,
    Node,
    RawRequest,
    create,
    head,
    open_patch,
    patch,
    session_id_of,
    wait_until,
)
from .conftest import payload, service_unavailable
from .test_client_tus_js import run_client

pytestmark = pytest.mark.slow

TiB = 1024 * 1024 * MiB


def workers_rss(node: Node) -> int:
    """The resident memory of the node's workers, in bytes."""
    total = 0
    for pid in node.worker_pids():
        status = Path(f"/proc/{pid}/status").read_text()
        line = next(line for line in status.splitlines() if line.startswith("VmRSS:"))
        total += int(line.split()[1]) * 1024
    return total


def test_huge_declared_lengths_do_not_grow_a_workers_memory(nodes: Cluster) -> None:
    node = nodes["node-h"]
    # Warm up: the first requests of a worker load code and connections.
    warm = create(node.files_url, 3 * MiB)
    assert patch(warm, payload(3 * MiB, seed=1), 0).status_code == 204
    before = workers_rss(node)

    # Distinct huge lengths (so distinct part sizes), each with an empty and a small PATCH.
    for n in range(4):
        url = create(node.files_url, 5 * TiB - n * 10_000 * MiB)
        assert patch(url, b"", 0).status_code == 204
        assert patch(url, payload(MiB, seed=n), 0).status_code == 204
    # And PATCHes that declare a whole huge body, send a MiB and stall: as many
    # as one worker reads at once (RINDLE_TUS_MAX_BODIES), so that however
    # gunicorn spreads them over its workers none is refused as busy.
    stalled: list[tuple[str, RawRequest]] = []
    for n in range(6):
        url = create(node.files_url, 5 * TiB)
        request = open_patch(url, 0, 5 * TiB)
        request.send(payload(MiB, seed=10 + n))
        stalled.append((url, request))
    # Each holds its lease once its buffer is taken and its body is being read.
    wait_until(lambda: all(nodes.row(session_id_of(url))["lease_token"] for url, _ in stalled), 30, "the leases")
    during = workers_rss(node)

    for url, request in stalled:
        head(url)  # hands each stalled request over, so it ends
        request.close()
    grown = during - before
    # Before: about 2 GiB for the first loop alone, and 525 MiB per stalled request.
    assert grown < 128 * MiB, f"the workers grew by {grown / MiB:.0f} MiB"


def leased(nodes: Cluster, urls: list[str]) -> int:
    # One query: row by row, the slots changing hands (a new trickle taking
    # the place of a slower one) would be missed between reads.
    return nodes.database.leased([session_id_of(url) for url in urls])


def settled(nodes: Cluster, urls: list[str], trickles: list[Trickle]) -> int:
    """How many trickles hold a body's place, once every trickle still
    sending holds one (0 before: some are still queued in a worker)."""
    sending = sum(trickle.is_alive() and not trickle.answer for trickle in trickles)
    held = leased(nodes, urls)
    return held if held == sending else 0


class Trickle(threading.Thread):
    """A PATCH that sends one byte every ``every`` seconds, as an attacker
    holding threads would; it stops when the server answers or closes."""

    def __init__(self, url: str, every: float) -> None:
        super().__init__(daemon=True)
        self.request = open_patch(url, 0, 10 * MiB)
        self.every = every
        self.answer = b""
        self.stopped = threading.Event()

    def run(self) -> None:
        sock = self.request.sock
        try:
            while not self.stopped.is_set():
                sock.sendall(b"x")
                sock.settimeout(self.every)
                try:
                    data = sock.recv(4096)
                except TimeoutError:
                    continue
                self.answer = data
                return
        except OSError:
            return
        finally:
            self.request.close()


def test_slow_bodies_leave_the_site_and_other_uploads_going(nodes: Cluster, tmp_path: Path) -> None:
    if shutil.which("node") is None:
        service_unavailable("Node.js is not installed")
    node = nodes["node-h"]
    urls = [create(node.files_url, 10 * MiB) for _ in range(48)]
    trickles = [Trickle(url, every=2.0) for url in urls]
    for trickle in trickles:
        trickle.start()
    try:
        # Every trickle has been taken in: it holds a body's place or was
        # answered. gunicorn's two workers split the connections as they
        # accept them, so only one worker's share (6, RINDLE_TUS_MAX_BODIES)
        # is certain to be full; an even split fills both (12).
        wait_until(lambda: settled(nodes, urls, trickles) >= 6, 30, "the trickles to hold the bodies' places")
        # The rest of the site answers, page after page.
        for _ in range(5):
            assert requests.get(f"{node.url}/", timeout=10).status_code == 200
            assert requests.options(node.files_url, headers=TUS, timeout=10).status_code == 204
        # And a real client uploads, on its default settings.
        data = payload(12 * MiB + 5, seed=3)
        path = tmp_path / "upload.bin"
        path.write_bytes(data)
        events = run_client(endpoint=node.files_url, file=str(path))
        assert events[-1]["event"] == "success", events
        nodes.assert_complete(session_id_of(events[-1]["url"]), data)
    finally:
        for trickle in trickles:
            trickle.stopped.set()
        for trickle in trickles:
            trickle.join(timeout=30)
    answers = [t.answer.split(b"\r\n", 1)[0] for t in trickles]
    # The trickles were refused (busy) or ended as too slow, none kept a thread.
    assert all(b" 503 " in a for a in answers if a), answers


def test_a_lost_database_connection_mid_patch_is_a_503_and_the_next_request_works(nodes: Cluster) -> None:
    """PostgreSQL only: the connections of the cluster's database are
    terminated while a PATCH streams."""
    if not nodes.database.postgres:
        pytest.skip("only PostgreSQL lets the test cut a server's database connections")
    import psycopg

    node = nodes["node-h"]
    data = payload(3 * 5 * MiB, seed=4)
    url = create(node.files_url, len(data))
    request = open_patch(url, 0, len(data))
    # Most of the body before the cut: the request fails at its next query
    # (a part's commit, or the last one), and a refusal drains at most 4 MiB
    # of what is left, so more than that still unsent could meet a closed
    # socket before the answer is read.
    request.send(data[: 12 * MiB])
    wait_until(lambda: nodes.row(session_id_of(url))["lease_token"], 30, "the lease")
    with psycopg.connect(nodes.database.admin_url, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            [nodes.database.name],
        )
    request.send(data[12 * MiB :])
    answer = request.response()

    assert answer.status_code == 503 and b"database_unavailable" in answer.body, answer
    # Every thread's next request works (the example project checks its connections).
    for _ in range(16):
        assert head(url).status_code == 200
    offset = int(head(url).headers["Upload-Offset"])
    assert patch(url, data[offset:], offset).status_code == 204
    nodes.assert_complete(session_id_of(url), data)

