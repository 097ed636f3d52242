"""What a user gets when the network or a server fails under a real tus client.

Real clients run on their default settings: tus-js-client 4.3.1 under Node
(``tests/clients/upload.mjs`` without ``retryDelays``, so it retries after 0,
1, 3 and 5 s, starting over after progress, each time with HEAD then PATCH
from HEAD's offset) and tuspy (``retries=0``: the application resumes once,
immediately, with a new uploader given the stored URL). The cluster runs the
server's default settings (lease 6 s, handover wait 8 s); nothing here
shortens them, and nothing retries on a client's behalf.

The network faults go through ``ClientRelay``, which fails the way a phone
changing networks does: the client's socket is reset mid-body while the
server's side is left open and silent, so the server's request still holds
the upload's lease when the client's retry arrives and must hand it over.
The server faults SIGKILL the worker serving the upload, every worker of the
node (the master starts new ones), or the whole node (started again at once).

Every test ends with the upload complete and its S3 object's SHA-256 equal to
the file's, and checks that the fault really happened.
"""

from __future__ import annotations

import itertools
import json
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest
from tusclient.client import TusClient
from tusclient.exceptions import TusCommunicationError

from .cluster import BUCKET, PART, Cluster, MiB, Node, session_id_of, wait_until
from .conftest import payload, service_unavailable
from .relay import ClientRelay

pytestmark = pytest.mark.slow

CLIENTS = Path(__file__).parent / "clients"
SCRIPT = CLIENTS / "upload.mjs"
SIZE = 4 * PART + 12345
# Does not divide the 5 MiB part size, so parts and requests never line up.
ODD_CHUNK = 3_000_000
CLIENT_TIMEOUT = 300


def write_file(tmp_path: Path, seed: int, size: int = SIZE) -> tuple[Path, bytes]:
    data = payload(size, seed)
    path = tmp_path / f"upload-{seed}.bin"
    path.write_bytes(data)
    return path, data


# -- tus-js-client in the background --------------------------------------------


class TusJs:
    """``upload.mjs`` run in the background, its JSON-line events collected as
    they come, so a test can act mid-upload. A context manager: leaving it
    kills the client if it still runs."""

    def __init__(self, **options: Any) -> None:
        node = shutil.which("node")
        if node is None:
            service_unavailable("Node.js is not installed")
        if not (CLIENTS / "node_modules" / "tus-js-client").is_dir():
            service_unavailable("tus-js-client is not installed: run `npm ci` in tests/clients")
        self._events: list[dict[str, Any]] = []
        self._stderr: list[str] = []
        self._changed = threading.Condition()
        self.process = subprocess.Popen(
            [str(node), str(SCRIPT), json.dumps({"progressStep": MiB, **options})],
            cwd=CLIENTS,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        self._readers = [
            threading.Thread(target=self._read_events, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read_events(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith("{"):
                with self._changed:
                    self._events.append(json.loads(line))
                    self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self._stderr.append(line)

    @property
    def events(self) -> list[dict[str, Any]]:
        with self._changed:
            return list(self._events)

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 60) -> dict[str, Any]:
        """The first event matching ``predicate``, waiting for it if need be."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for event in self._events:
                    if predicate(event):
                        return event
                left = deadline - time.monotonic()
                if left <= 0 or (self.process.poll() is not None and not self._readers[0].is_alive()):
                    raise AssertionError(f"no such event; events so far: {self._events}; stderr: {self.stderr}")
                self._changed.wait(min(left, 0.5))

    @property
    def stderr(self) -> str:
        return "".join(self._stderr)

    def finish(self, timeout: float = CLIENT_TIMEOUT) -> list[dict[str, Any]]:
        """Wait for the client to end; its events."""
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"tus-js-client still running after {timeout} s: {self.events}") from None
        for reader in self._readers:
            reader.join(timeout=10)
        events = self.events
        assert events, f"no events; exit {self.process.returncode}; stderr:\n{self.stderr}"
        return events

    def __enter__(self) -> TusJs:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for reader in self._readers:
            reader.join(timeout=10)


def success(events: list[dict[str, Any]]) -> str:
    """The upload's session id, after checking the client ended in success."""
    last = events[-1]
    assert last["event"] == "success", events
    return session_id_of(last["url"])


def responses(events: list[dict[str, Any]], method: str) -> list[dict[str, Any]]:
    return [e for e in events if e["event"] == "response" and e["method"] == method]


def retries(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e["event"] == "retry"]


def network_retries(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Retries of a request that failed without a response: a reset or refused connection."""
    return [e for e in retries(events) if e["status"] is None and e["retry"]]


def timeline(name: str, events: list[dict[str, Any]]) -> dict[str, int | None]:
    """How long the client took from the first fault it saw to the HEAD's answer
    and to sending bytes past HEAD's offset again (ms); printed for the record."""
    faults = retries(events)
    assert faults, events
    fault = faults[0]["t"]
    head = next((e for e in responses(events, "HEAD") if e["t"] >= fault and e["status"] == 200), None)
    resumed = None
    if head is not None:
        sent = (e for e in events if e["event"] == "progress" and e["t"] >= head["t"] and e["bytes"] > head["offset"])
        resumed = next((e["t"] for e in sent), None)
    result = {
        "fault_at": fault,
        "retries": len(faults),
        "head_after": None if head is None else head["t"] - fault,
        "head_offset": None if head is None else head["offset"],
        "sending_again_after": None if resumed is None else resumed - fault,
        "total": events[-1]["t"],
    }
    print(f"[timeline] {name}: {result}; retries: {[(e['attempt'], e['status']) for e in faults]}")
    return result


def assert_resumed_from(events: list[dict[str, Any]], before: int, sent: int) -> int:
    """After the fault the client asked HEAD and went on from its answer: at
    least ``before`` (the offset before the cut request), at most ``before +
    sent`` (what the relay let through). Returns the last such answer.

    Usually HEAD answers every byte sent: the cut request held the lease,
    was asked to hand over, took in what its socket still held and kept it.
    It can be less: the retry's HEAD can overtake the cut request inside the
    server (its bytes are in the server's socket, its view has not taken the
    lease yet). HEAD then answers ``before`` and marks the upload answered,
    and the cut request, arriving at the lease afterwards, gives way instead
    of taking it; its bytes are sent again."""
    fault = retries(events)[0]["t"]
    heads = [int(e["offset"]) for e in responses(events, "HEAD") if e["t"] >= fault and e["status"] == 200]
    assert heads and all(before <= offset <= before + sent for offset in heads), events
    conflicts = [p for p in responses(events, "PATCH") if p["status"] == 409]
    if len(heads) > 1 or conflicts:
        print(f"[race] HEAD answered {heads}; PATCH answered 409 {len(conflicts)} time(s)")
    if heads[-1] != before + sent:
        print(f"[kept] {heads[-1] - before} of the {sent} bytes the relay let through")
    return heads[-1]


# -- relays and a load balancer --------------------------------------------------


class NthRequestRelay(ClientRelay):
    """A ``ClientRelay`` that cuts the ``nth`` request of ``method`` (1-based)
    after ``after`` body bytes: the drop is armed as that request's head is
    seen, so the requests before it pass whole, however quickly they follow."""

    def __init__(self, upstream_port: int, *, method: str, nth: int, after: int) -> None:
        self._nth = (method, nth, after)
        self._seen = 0
        self._count_lock = threading.Lock()
        super().__init__(upstream_port)

    def request_seen(self, method: str, target: str) -> None:
        wanted, nth, after = self._nth
        if method == wanted:
            with self._count_lock:
                self._seen += 1
                arm = self._seen == nth
            if arm:
                self.drop(wanted, after)


def _reset(sock: socket.socket) -> None:
    """Close with an RST (only the thread owning ``sock`` calls this)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


class RoundRobin:
    """A layer-4 load balancer: each new TCP connection goes to the next
    upstream port in turn, and a reset on one side resets the other.

    In front of two ``ClientRelay``s (one per node) it gives the case of a
    phone changing networks behind a load balancer: the client's keep-alive
    connection carries its POST and PATCH to the first node, the relay cuts
    the PATCH (the node's side left open, the request holding the lease), and
    the client's retry, on a new connection, lands on the second node, which
    must have the holder hand over. The client needs nothing but its
    defaults: the upload URL it holds is the balancer's (the server builds
    ``Location`` from ``Host``)."""

    def __init__(self, ports: list[int]) -> None:
        self.ports = ports
        self.routed: list[int] = []
        self._turn = itertools.count()
        self._closed = False
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self._acceptor = threading.Thread(target=self._accept, daemon=True)
        self._acceptor.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            port = self.ports[next(self._turn) % len(self.ports)]
            with self._lock:
                self.routed.append(port)
            threading.Thread(target=self._pump, args=(client, port), daemon=True).start()

    def _pump(self, client: socket.socket, port: int) -> None:
        client.settimeout(None)
        try:
            upstream = socket.create_connection(("127.0.0.1", port), timeout=10)
        except OSError:
            _reset(client)
            return
        upstream.settimeout(None)
        with self._lock:
            self._sockets.update({client, upstream})
        peer = {client: upstream, upstream: client}
        reading = {client, upstream}
        failed = False
        try:
            while reading:
                ready, _, _ = select.select(list(reading), [], [])
                for sock in ready:
                    data = sock.recv(64 * 1024)
                    if data:
                        peer[sock].sendall(data)
                    else:
                        reading.discard(sock)
                        peer[sock].shutdown(socket.SHUT_WR)
        except OSError:
            failed = True
        finally:
            with self._lock:
                self._sockets.difference_update({client, upstream})
            for sock in (client, upstream):
                if failed:
                    _reset(sock)
                else:
                    sock.close()

    def close(self) -> None:
        self._closed = True
        self._acceptor.join(timeout=5)
        self._listener.close()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            # Wakes the pump's select with an end of stream; the pump closes it.
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


# -- waiting on the cluster ---------------------------------------------------------


def _holding_with_a_part(nodes: Cluster, session_id: str) -> dict[str, Any] | None:
    """The row, once a request holds its lease and at least one part is in the row or in S3."""
    row = nodes.database.row(session_id)
    if row is None or not row["lease_token"]:
        return None
    if row["parts"]:
        return row
    if row["upload_id"]:
        listed = nodes.s3.list_parts(Bucket=BUCKET, Key=row["key"], UploadId=row["upload_id"])
        if listed.get("Parts"):
            return row
    return None


def session_ids(nodes: Cluster) -> set[str]:
    return {row[0] for row in nodes.database._query("SELECT id FROM rindle_tus_tussession", ())}


# -- tus-js-client, network faults ---------------------------------------------------


@pytest.mark.parametrize(
    "after",
    [MiB, PART, 3 * PART + MiB],
    ids=["inside-the-first-part", "at-a-part-boundary", "after-three-parts"],
)
@pytest.mark.parametrize("name", ["node-a", "node-u"], ids=["gunicorn", "uvicorn"])
def test_tus_js_client_one_request_dropped_completes(nodes: Cluster, tmp_path: Path, after: int, name: str) -> None:
    node = nodes[name]
    path, data = write_file(tmp_path, seed=after)
    with ClientRelay(node.port) as relay:
        relay.drop("PATCH", after=after)
        with TusJs(endpoint=f"{relay.url}/files/", file=str(path)) as client:
            events = client.finish()
        relay.wait_dropped(1, timeout=10)
        assert relay.drops == 1

    session_id = success(events)
    timeline(f"one request, dropped after {after} bytes", events)
    # The client saw its PATCH reset, retried at once, and HEAD answered what the interrupted request kept.
    assert "PATCH" in network_retries(events)[0]["message"], events
    assert_resumed_from(events, before=0, sent=after)
    assert next(e["method"] for e in events if e["event"] == "response") == "POST"
    nodes.assert_complete(session_id, data)
    assert nodes.row(session_id)["lease_token"] == ""


def test_tus_js_client_creation_with_upload_dropped_creates_a_new_upload(nodes: Cluster, tmp_path: Path) -> None:
    """The POST's body is cut: the client never learns the URL, so its retry
    creates a new upload. The abandoned one, still held by the request the
    relay left open, gets in nobody's way; when its connection ends the
    server discards it (nobody could resume it) and frees what it stored."""
    node = nodes["node-a"]
    path, data = write_file(tmp_path, seed=31)
    before = session_ids(nodes)
    with ClientRelay(node.port) as relay:
        relay.drop("POST", after=ODD_CHUNK // 2)
        with TusJs(
            endpoint=f"{relay.url}/files/", file=str(path), chunkSize=ODD_CHUNK, uploadDataDuringCreation=True
        ) as client:
            events = client.finish()
        relay.wait_dropped(1, timeout=10)
        assert relay.drops == 1
        assert [m for m, _ in relay.requests].count("POST") == 2

        session_id = success(events)
        (abandoned,) = session_ids(nodes) - before - {session_id}
        nodes.assert_complete(session_id, data)
        # Only the second POST was answered, with the whole first chunk.
        assert [(p["status"], p["offset"]) for p in responses(events, "POST")] == [(201, ODD_CHUNK)]
        assert "POST" in network_retries(events)[0]["message"], events
        # Still held by the request the relay left open, while the new upload completed.
        left = nodes.row(abandoned)
        assert left["state"] == "receiving" and left["lease_token"], left

    # The relay is closed: the abandoned request reads the end of its body,
    # and the server discards the upload: its storage freed, its row removed.
    wait_until(lambda: nodes.database.row(abandoned) is None, 60, "the abandoned upload to be discarded")
    assert nodes.s3.list_multipart_uploads(Bucket=BUCKET, Prefix=left["key"]).get("Uploads", []) == []
    assert nodes.s3.list_objects_v2(Bucket=BUCKET, Prefix=left["key"]).get("KeyCount") == 0
    assert not node.tail_path(abandoned).exists()


def test_tus_js_client_chunked_upload_dropped_in_a_later_patch_completes(nodes: Cluster, tmp_path: Path) -> None:
    node = nodes["node-a"]
    path, data = write_file(tmp_path, seed=32)
    with NthRequestRelay(node.port, method="PATCH", nth=2, after=MiB) as relay:
        with TusJs(endpoint=f"{relay.url}/files/", file=str(path), chunkSize=ODD_CHUNK) as client:
            events = client.finish()
        relay.wait_dropped(1, timeout=10)
        assert relay.drops == 1

    session_id = success(events)
    timeline("3000000-byte chunks, second PATCH dropped", events)
    # The first PATCH was answered in full; the second was cut a MiB in.
    assert next((p["status"], p["offset"]) for p in responses(events, "PATCH")) == (204, ODD_CHUNK)
    assert_resumed_from(events, before=ODD_CHUNK, sent=MiB)
    nodes.assert_complete(session_id, data)


def test_tus_js_client_retry_on_another_node_takes_over(nodes: Cluster, tmp_path: Path) -> None:
    """Behind a round-robin balancer (see ``RoundRobin``): the PATCH is cut on
    node-s1, the retry lands on node-s2 (shared tail store) and continues."""
    s1, s2 = nodes["node-s1"], nodes["node-s2"]
    path, data = write_file(tmp_path, seed=33)
    with ClientRelay(s1.port) as relay1, ClientRelay(s2.port) as relay2:
        balancer = RoundRobin([relay1.port, relay2.port])
        try:
            relay1.drop("PATCH", after=PART + MiB)
            with TusJs(endpoint=f"{balancer.url}/files/", file=str(path)) as client:
                events = client.finish()
        finally:
            balancer.close()
        relay1.wait_dropped(1, timeout=10)
        assert relay1.drops == 1
        first, second = relay1.requests, relay2.requests

    session_id = success(events)
    timeline("retry on another node", events)
    assert [m for m, _ in first] == ["POST", "PATCH"], first
    assert [m for m, _ in second][:2] == ["HEAD", "PATCH"], second
    assert balancer.routed[:2] == [relay1.port, relay2.port]
    assert_resumed_from(events, before=0, sent=PART + MiB)
    nodes.assert_complete(session_id, data)
    assert f"upload {session_id}: asked node-s1" in s2.log_text()


# -- tuspy, network faults ---------------------------------------------------------


@pytest.mark.parametrize(
    ("chunk_size", "nth", "after"),
    [(SIZE, 1, 2 * PART + MiB), (ODD_CHUNK, 2, MiB)],
    ids=["one-chunk", "3000000-byte-chunks"],
)
def test_tuspy_dropped_upload_resumed_once_by_the_application_completes(
    nodes: Cluster, tmp_path: Path, chunk_size: int, nth: int, after: int
) -> None:
    """tuspy does not retry (``retries=0``); the application resumes once, at
    once, from the URL it stored: a new uploader asks HEAD and carries on.

    With a short cut (a MiB into the second chunk) the resume's HEAD often
    overtakes the cut request inside the server (see ``assert_resumed_from``):
    a resume that then met a 409 would fail, since tuspy does not retry."""
    node = nodes["node-b"]
    path, data = write_file(tmp_path, seed=34 + nth)
    with NthRequestRelay(node.port, method="PATCH", nth=nth, after=after) as relay:
        client = TusClient(f"{relay.url}/files/")
        uploader = client.uploader(str(path), chunk_size=chunk_size)
        with pytest.raises(TusCommunicationError) as raised:
            uploader.upload()
        failed = time.monotonic()
        # The relay counts a drop once its connection is wound up, just after the client saw it.
        relay.wait_dropped(1, timeout=10)
        assert "Connection" in str(raised.value), raised.value
        url = uploader.url
        assert url is not None and relay.drops == 1
        dropped_at = (nth - 1) * chunk_size
        assert uploader.offset == dropped_at

        resumed = client.uploader(str(path), url=url, chunk_size=chunk_size)
        head_after = time.monotonic() - failed
        kept = resumed.offset
        try:
            resumed.upload()
        except TusCommunicationError as error:
            session_id = session_id_of(url)
            lines = [line for line in node.log_text().splitlines() if session_id in line]
            raise AssertionError(
                f"the resume failed: HEAD answered {kept} after {head_after:.3f} s, then {error!r}: "
                f"{error.response_content!r}; row now {nodes.row(session_id)}; log: {lines}"
            ) from error
        assert resumed.offset == len(data)

    print(f"[timeline] tuspy chunk {chunk_size}, PATCH {nth} dropped: HEAD answered {kept} after {head_after:.3f} s")
    assert dropped_at <= kept <= dropped_at + after
    session_id = session_id_of(url)
    nodes.assert_complete(session_id, data)


# -- tus-js-client, server faults ----------------------------------------------------


def _upload_then(
    nodes: Cluster, tmp_path: Path, seed: int, fault: Callable[[dict[str, Any]], None], name: str = "node-f"
) -> tuple[str, list[dict[str, Any]], dict[str, Any]]:
    """Upload a file to a node (node-f) with tus-js-client in one request;
    once a request holds the lease with a part uploaded, run ``fault(row)``.
    The upload must complete: its session id, the client's events and the
    row the fault was aimed at."""
    node = nodes[name]
    path, data = write_file(tmp_path, seed=seed)
    with TusJs(endpoint=node.files_url, file=str(path)) as client:
        session_id = session_id_of(client.wait_for(lambda e: e["event"] == "url")["url"])
        row = wait_until(lambda: _holding_with_a_part(nodes, session_id), 60, "a part under the lease", step=0.005)
        fault(row)
        events = client.finish()
    assert success(events) == session_id
    nodes.assert_complete(session_id, data)
    # The client saw its connection fail (no response) and retried.
    assert network_retries(events), events
    return session_id, events, row


def _holder_pid(row: dict[str, Any]) -> int:
    return int(row["lease_holder"].split(" ")[2])


def _took_over(node: Node, session_id: str, pid: int) -> bool:
    return f"upload {session_id}: took over the lease of {node.name}, process {pid}, which is gone" in node.log_text()


@pytest.mark.parametrize("name", ["node-f", "node-u"], ids=["gunicorn", "uvicorn"])
def test_sigkill_of_the_worker_serving_a_tus_js_client_upload(nodes: Cluster, tmp_path: Path, name: str) -> None:
    node = nodes[name]
    killed: list[int] = []

    def kill_holder(row: dict[str, Any]) -> None:
        pid = node.holder_pid(row)
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    session_id, events, _ = _upload_then(nodes, tmp_path, 41, kill_holder, name)
    timeline("the holder worker SIGKILLed", events)
    (pid,) = killed
    assert node.running and pid not in node.worker_pids()
    # The other worker took the upload over at once: the holder was gone, its lease had not lapsed.
    assert _took_over(node, session_id, pid)


def test_sigkill_of_every_worker_during_a_tus_js_client_upload(nodes: Cluster, tmp_path: Path) -> None:
    node = nodes["node-f"]
    killed: list[int] = []

    def kill_workers(row: dict[str, Any]) -> None:
        killed.extend(node.kill_workers())

    session_id, events, row = _upload_then(nodes, tmp_path, 42, kill_workers)
    timeline("every worker SIGKILLed", events)
    assert _holder_pid(row) in killed and node.running
    assert set(node.worker_pids()).isdisjoint(killed)
    assert _took_over(node, session_id, _holder_pid(row))


def test_node_killed_and_started_again_during_a_tus_js_client_upload(nodes: Cluster, tmp_path: Path) -> None:
    """The whole node dies (master and workers) and is started again at once,
    without waiting for it: the client's retries, on its default delays
    (0, 1, 3, 5 s), reach it while it boots."""
    node = nodes["node-f"]
    masters: list[int] = []
    boot: dict[str, float] = {}
    watcher: list[threading.Thread] = []

    def kill_and_start(row: dict[str, Any]) -> None:
        assert node.process is not None
        masters.append(node.process.pid)
        node.kill()
        started = time.monotonic()
        node.start()

        def ready() -> None:
            node.wait_ready()
            boot["ready_after"] = time.monotonic() - started

        watcher.append(threading.Thread(target=ready, daemon=True))
        watcher[0].start()

    session_id, events, row = _upload_then(nodes, tmp_path, 43, kill_and_start)
    watcher[0].join(timeout=90)
    times = timeline("the node killed and started again", events)
    print(f"[boot] {node.name} answered OPTIONS {boot.get('ready_after')} s after start()")
    assert node.running and node.process is not None and node.process.pid not in masters
    assert node.starts >= 2
    assert times["head_after"] is not None
    # For the record: how the restarted node found the dead holder's lease.
    pid = _holder_pid(row)
    print("[lease]", [line for line in node.log_text().splitlines() if session_id in line and f"process {pid}" in line])
