"""Several real app servers for the multi-process tests.

Each node is a ``gunicorn example_project.wsgi`` process group on a loopback
port of its own, with its own tail root and node name. All nodes share one
database (created here, migrated in a subprocess, dropped at the end) and one
S3 bucket, reached through ``S3Relay``, a TCP relay the tests can cut or make
hold S3's answers. ``StickyProxy`` pins each upload to one node by its id.
"""

from __future__ import annotations

import hashlib
import http.client
import itertools
import json
import os
import re
import secrets
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import gunicorn.config
import requests

from example_project.s3server import ensure_bucket, s3_client

ROOT = Path(__file__).resolve().parent.parent
MiB = 1024 * 1024
PART = 5 * MiB
BUCKET = "rindle-cluster"
LOCATION = "cluster"
TUS = {"Tus-Resumable": "1.0.0"}
OFFSET_TYPE = "application/offset+octet-stream"
# node-f, which the S3 fault tests black-hole: a read timeout of seconds, not a minute.
FAULT_S3_READ_TIMEOUT = 3
HTTP_TIMEOUT = 120


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(predicate: Any, timeout: float, what: str, step: float = 0.02) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(step)


# -- database ---------------------------------------------------------------


class ClusterDatabase:
    """A database of the cluster's own: the app servers cannot see pytest-django's."""

    COLUMNS = ("id", "state", "offset", "length", "part_size", "upload_id", "parts", "tail_node",
               "lease_token", "lease_holder", "key", "last_error")

    def __init__(self, base_url: str, workdir: Path) -> None:
        self.postgres = base_url.startswith(("postgres://", "postgresql://"))
        if self.postgres:
            parts = urlsplit(base_url)
            self.name = f"rindle_cluster_{secrets.token_hex(6)}"
            self.admin_url = urlunsplit(parts._replace(path="/postgres"))
            self.url = urlunsplit(parts._replace(path=f"/{self.name}"))
        else:
            self.path = workdir / "cluster.sqlite3"
            self.url = f"sqlite:///{self.path}"

    def create(self) -> None:
        if self.postgres:
            import psycopg

            with psycopg.connect(self.admin_url, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{self.name}"')

    def drop(self) -> None:
        if self.postgres:
            import psycopg

            with psycopg.connect(self.admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        else:
            self.path.unlink(missing_ok=True)

    def _query(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        if self.postgres:
            import psycopg

            with psycopg.connect(self.url, autocommit=True) as conn:
                conn.execute("SET default_transaction_read_only = on")
                return list(conn.execute(sql.replace("?", "%s"), params).fetchall())
        # Not mode=ro: a node killed mid-transaction leaves a hot journal that
        # only a writable connection may roll back; query_only keeps it a reader.
        conn = sqlite3.connect(self.path, timeout=30)
        try:
            conn.execute("PRAGMA query_only = ON")
            return list(conn.execute(sql, params).fetchall())
        finally:
            conn.close()

    def leased(self, session_ids: list[str]) -> int:
        """How many of the sessions hold a lease, in one query (one moment)."""
        marks = ", ".join("?" for _ in session_ids)
        sql = f"SELECT COUNT(*) FROM rindle_tus_tussession WHERE id IN ({marks}) AND lease_token <> ''"
        return int(self._query(sql, tuple(session_ids))[0][0])

    def row(self, session_id: str) -> dict[str, Any] | None:
        columns = ", ".join(f'"{c}"' for c in self.COLUMNS)
        rows = self._query(f"SELECT {columns} FROM rindle_tus_tussession WHERE id = ?", (session_id,))
        if not rows:
            return None
        row = dict(zip(self.COLUMNS, rows[0], strict=True))
        if isinstance(row["parts"], str):
            row["parts"] = json.loads(row["parts"])
        return row

    def count(self) -> int:
        return int(self._query("SELECT COUNT(*) FROM rindle_tus_tussession", ())[0][0])


# -- S3 relay -----------------------------------------------------------------


def _reset(sock: socket.socket) -> None:
    """Close with an RST, as a dead or unreachable peer looks; a thread
    blocked reading the socket wakes up."""
    with suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with suppress(OSError):
        sock.close()


class S3Relay:
    """A TCP relay between the app servers and S3 that a test can break.

    ``cut()`` resets every connection and every new one until ``restore()``;
    ``cut_after(n)`` does so once ``n`` more bytes went towards S3;
    ``hold_after(n)`` lets requests through but holds S3's answers once ``n``
    more bytes went towards S3 (the store has the data; the app never hears).
    """

    def __init__(self, upstream: str) -> None:
        target = urlsplit(upstream)
        self.upstream = (target.hostname or "127.0.0.1", target.port or 80)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.lock = threading.Lock()
        self.connections: set[socket.socket] = set()
        self.cut_state = False
        self.cut_at: int | None = None
        self.cut_pattern: re.Pattern[bytes] | None = None
        self.hold_at: int | None = None
        self.sent = 0
        self.held = 0
        self.cuts = 0
        self.closed = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                refused = self.cut_state
            if refused:
                _reset(client)
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=10)
                server.settimeout(None)
            except OSError:
                _reset(client)
                continue
            with self.lock:
                self.connections.update({client, server})
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, towards_s3: bool) -> None:
        try:
            while True:
                data = src.recv(256 * 1024)
                if not data:
                    break
                with self.lock:
                    if self.cut_state:
                        break
                    if towards_s3:
                        self.sent += len(data)
                        if (self.cut_at is not None and self.sent >= self.cut_at) or (
                            self.cut_pattern is not None and self.cut_pattern.match(data)
                        ):
                            self._cut_locked()
                            break
                    elif self.hold_at is not None and self.sent >= self.hold_at:
                        self.held += len(data)
                        continue
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with self.lock:
                self.connections.discard(src)
                self.connections.discard(dst)
            _reset(src)
            _reset(dst)

    def _cut_locked(self) -> None:
        self.cut_state = True
        self.cut_at = None
        self.cut_pattern = None
        self.cuts += 1
        for sock in list(self.connections):
            _reset(sock)
        self.connections.clear()

    def cut(self) -> None:
        with self.lock:
            self._cut_locked()

    def cut_after(self, nbytes: int) -> None:
        with self.lock:
            self.cut_at = self.sent + nbytes

    def cut_on(self, request_line: bytes) -> None:
        """Cut as soon as a request whose first line matches the regex ``request_line`` heads for S3."""
        with self.lock:
            self.cut_pattern = re.compile(request_line)

    def hold_after(self, nbytes: int) -> None:
        with self.lock:
            self.hold_at = self.sent + nbytes
            self.held = 0

    def wait_held(self, timeout: float = 60) -> int:
        return int(wait_until(lambda: self.held, timeout, "S3 to answer a held request"))

    def restore(self) -> None:
        """Pass everything again; connections holding answers are reset."""
        with self.lock:
            if self.hold_at is not None and self.held:
                for sock in list(self.connections):
                    _reset(sock)
                self.connections.clear()
            self.cut_state = False
            self.cut_at = None
            self.cut_pattern = None
            self.hold_at = None
            self.held = 0

    def close(self) -> None:
        self.closed = True
        _reset(self.listener)
        self.cut()


# -- app server nodes -----------------------------------------------------------

# gunicorn 25.1+ opens a control socket at one fixed path per user; several
# nodes on one machine would fight over it.
_NO_CONTROL_SOCKET = ["--no-control-socket"] if hasattr(gunicorn.config, "ControlSocketDisable") else []


@dataclass
class Node:
    name: str
    workdir: Path
    env: dict[str, str]
    shared_tail: bool = False
    workers: int = 2
    worker_class: str = "gthread"
    threads: int = 4
    # "gunicorn" (example_project.wsgi) or "uvicorn" (example_project.asgi).
    server: str = "gunicorn"
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def tail_root(self) -> Path:
        return self.workdir / "tails"

    @property
    def log_path(self) -> Path:
        return self.workdir / "server.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def files_url(self) -> str:
        return f"{self.url}/files/"

    def upload_url(self, session_id: str) -> str:
        return f"{self.files_url}{session_id}"

    def part_path(self, session_id: str, number: int) -> Path:
        """Where this node keeps part ``number`` of a tail while it waits for S3."""
        tail = self.tail_path(session_id)
        return tail.with_name(f"{tail.name}.{number}.part")

    def tail_path(self, session_id: str) -> Path:
        from rindle_tus.storage import tus_tail_path

        return tus_tail_path(session_id, root=self.tail_root)

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = {
            **self.env,
            "RINDLE_TUS_TMP_DIR": str(self.tail_root),
            "RINDLE_TUS_NODE_NAME": self.name,
            "EXAMPLE_VAR_DIR": str(self.workdir / "var"),
        }
        with open(self.log_path, "ab") as log:
            log.write(f"--- start {self.starts + 1} of {self.name} on port {self.port}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                self.command(),
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.starts += 1

    def command(self) -> list[str]:
        if self.server == "uvicorn":
            return [
                sys.executable, "-m", "uvicorn", "example_project.asgi:application",
                "--host", "127.0.0.1", "--port", str(self.port), "--workers", str(self.workers),
                "--timeout-graceful-shutdown", "3",
            ]
        return [
            sys.executable, "-m", "gunicorn", "example_project.wsgi",
            "--bind", f"127.0.0.1:{self.port}",
            "--workers", str(self.workers), "--worker-class", self.worker_class,
            *(["--threads", str(self.threads)] if self.worker_class == "gthread" else []),
            "--timeout", "120", "--graceful-timeout", "3",
            "--access-logfile", "-", "--error-logfile", "-",
            *_NO_CONTROL_SOCKET,
        ]

    def wait_ready(self, timeout: float = 90) -> None:
        def ready() -> bool:
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited while starting:\n{self.log_text()[-3000:]}")
            try:
                response = requests.options(self.files_url, timeout=5)
            except requests.RequestException:
                return False
            return response.status_code == 204

        wait_until(ready, timeout, f"{self.name} to answer", step=0.1)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def freeze(self) -> None:
        """SIGSTOP every process of the node, to look at the disk and the row
        exactly as they are at the moment of a crash."""
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGSTOP)

    def kill(self) -> None:
        """SIGKILL the master and every worker at once: a node dying mid-request."""
        self._signal_group(signal.SIGKILL)

    def worker_pids(self) -> list[int]:
        """The live workers: children of the master, without a killed one
        its master has not reaped yet, nor multiprocessing's resource tracker
        (uvicorn starts its workers through multiprocessing)."""
        if self.process is None:
            return []
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in children.read_text().split() if _is_worker(int(pid))]

    def holder_pid(self, row: dict[str, Any]) -> int:
        """The process of this node that holds the row's lease."""
        name, _machine, pid, _start = row["lease_holder"].split(" ")
        assert name == self.name and int(pid) in self.worker_pids(), row
        return int(pid)

    def kill_workers(self) -> list[int]:
        """SIGKILL every worker but not the master (the OOM killer's way): the
        master keeps the port and starts new workers."""
        pids = self.worker_pids()
        for pid in pids:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return pids

    def stop(self) -> None:
        self._signal_group(signal.SIGTERM, wait=10)

    def _signal_group(self, sig: int, wait: float = 30) -> None:
        if self.process is None:
            return
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)
        try:
            self.process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        # Workers are in the same group; make sure none outlives the master.
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process = None

    def restart(self) -> None:
        if self.running:
            self.stop()
        self.start()
        self.wait_ready()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def _is_worker(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != "Z" and b"resource_tracker" not in command


def shared_tail_key(session_id: str) -> str:
    """The key of a tail kept in S3 (``RINDLE_TUS_TAIL_STORE = "s3"``)."""
    from rindle_tus.storage.shared_tail import tus_tail_key

    # tus_tail_key reads only the backend's key prefix.
    return tus_tail_key(session_id, SimpleNamespace(prefix=f"{LOCATION}/tus/"))  # type: ignore[arg-type]


# -- sticky routing ---------------------------------------------------------------

_HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade",
               "host", "content-length"}


def upload_id_of(url: str) -> str | None:
    path = urlsplit(url).path
    if not path.startswith("/files/") or path == "/files/":
        return None
    return path[len("/files/"):]


class StickyProxy(ThreadingHTTPServer):
    """A load balancer with sticky uploads: every request on ``/files/<id>``
    goes to the node chosen by a hash of the id; creations go round-robin and
    their ``Location`` is rewritten to point back at the proxy. Bodies stream
    through in small pieces; no whole upload is ever buffered."""

    daemon_threads = True

    def __init__(self, nodes: list[Node]) -> None:
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.nodes = nodes
        self.round_robin = itertools.count()
        self.routes: dict[str, str] = {}
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def pick(self, path: str) -> Node:
        upload_id = upload_id_of(path)
        if upload_id is None:
            return self.nodes[next(self.round_robin) % len(self.nodes)]
        node = self.nodes[zlib.crc32(upload_id.encode()) % len(self.nodes)]
        with self.lock:
            self.routes.setdefault(upload_id, node.name)
        return node

    def close(self) -> None:
        self.shutdown()
        self.server_close()


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: StickyProxy

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _forward(self) -> None:
        node = self.server.pick(self.path)
        upstream = http.client.HTTPConnection("127.0.0.1", node.port, timeout=HTTP_TIMEOUT)
        try:
            upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            upstream.putheader("Host", f"127.0.0.1:{node.port}")
            for name, value in self.headers.items():
                if name.lower() not in _HOP_BY_HOP:
                    upstream.putheader(name, value)
            length = int(self.headers.get("Content-Length") or 0)
            upstream.putheader("Content-Length", str(length))
            upstream.endheaders()
            while length:
                piece = self.rfile.read(min(length, 64 * 1024))
                if not piece:
                    break
                upstream.send(piece)
                length -= len(piece)
            response = upstream.getresponse()
            body = response.read()
            self.send_response_only(response.status, response.reason)
            for name, value in response.getheaders():
                if name.lower() in _HOP_BY_HOP:
                    continue
                if name.lower() == "location":
                    value = value.replace(node.url, f"http://127.0.0.1:{self.server.server_address[1]}")
                    created = upload_id_of(value)
                    if created:
                        self.server.pick(value)
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
        finally:
            upstream.close()

    do_GET = do_HEAD = do_POST = do_PATCH = do_DELETE = do_OPTIONS = _forward


# -- raw HTTP -----------------------------------------------------------------------


@dataclass
class RawResponse:
    status_code: int
    headers: dict[str, str]
    body: bytes


class RawRequest:
    """One HTTP/1.1 request on a plain socket, so a test can send part of a
    body, pause, or vanish, as no HTTP library allows."""

    def __init__(self, url: str, method: str, headers: dict[str, str] | list[tuple[str, str]],
                 target: str | None = None) -> None:
        parts = urlsplit(url)
        self.sock = socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=HTTP_TIMEOUT)
        path = target if target is not None else (parts.path or "/")
        pairs = list(headers.items()) if isinstance(headers, dict) else list(headers)
        lines = [f"{method} {path} HTTP/1.1", f"Host: {parts.netloc}", "Connection: close"]
        lines += [f"{name}: {value}" for name, value in pairs]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape"))

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close(self) -> None:
        with suppress(OSError):
            self.sock.close()

    def response(self) -> RawResponse:
        buffer = b""
        while b"\r\n\r\n" not in buffer:
            piece = self.sock.recv(65536)
            if not piece:
                raise ConnectionError(f"connection closed before a response: {buffer!r}")
            buffer += piece
        head, body = buffer.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "-1"))
        while length < 0 or len(body) < length:
            piece = self.sock.recv(65536)
            if not piece:
                break
            body += piece
        self.close()
        return RawResponse(status, headers, body)


def open_patch(url: str, offset: int, content_length: int, **headers: str) -> RawRequest:
    return RawRequest(url, "PATCH", {**TUS, "Upload-Offset": str(offset), "Content-Type": OFFSET_TYPE,
                                     "Content-Length": str(content_length), **headers})


# -- the cluster ---------------------------------------------------------------------


@dataclass
class Cluster:
    workdir: Path
    s3_endpoint: str
    database: ClusterDatabase
    relay: S3Relay
    nodes: dict[str, Node]
    s3: Any

    def __getitem__(self, name: str) -> Node:
        return self.nodes[name]

    def row(self, session_id: str) -> dict[str, Any]:
        row = self.database.row(session_id)
        assert row is not None, f"no row for {session_id}"
        return row

    def ensure_healthy(self) -> None:
        """Undo what a failed test may have left: a cut relay, a dead node."""
        self.relay.restore()
        for node in self.nodes.values():
            if not node.running:
                node.start()
                node.wait_ready()

    def object_sha256(self, key: str) -> str:
        body = self.s3.get_object(Bucket=BUCKET, Key=key)["Body"]
        digest = hashlib.sha256()
        for chunk in iter(lambda: body.read(MiB), b""):
            digest.update(chunk)
        return digest.hexdigest()

    def assert_complete(self, session_id: str, data: bytes) -> None:
        """The upload is complete and its object is exactly ``data``."""
        row = self.row(session_id)
        assert row["state"] == "completed", row
        assert row["offset"] == len(data)
        assert self.object_sha256(row["key"]) == hashlib.sha256(data).hexdigest()

    def tail_size(self, session_id: str, node: Node) -> int:
        """The size of the tail ``node`` would resume from; -1 when there is none."""
        if node.shared_tail:
            try:
                return int(self.s3.head_object(Bucket=BUCKET, Key=shared_tail_key(session_id))["ContentLength"])
            except self.s3.exceptions.ClientError:
                return -1
        tail = node.tail_path(session_id)
        return tail.stat().st_size if tail.exists() else -1

    def assert_consistent(self, session_id: str, node: Node) -> int:
        """The row describes a committed state that ``node`` can resume.

        Every committed part is a whole part, the offset is those parts plus a
        tail: whole parts waiting for S3 in part files on the node holding them
        (write-behind), then the tail file, at least as long as the rest (or
        the part file it was renamed to, see ``Tail.into_part``).
        Returns the offset.
        """
        row = self.row(session_id)
        sizes = [int(p["size"]) for p in row["parts"]]
        assert all(size == row["part_size"] for size in sizes), row
        assert [int(p["number"]) for p in row["parts"]] == list(range(1, len(sizes) + 1)), row
        owed, remainder = divmod(row["offset"] - sum(sizes), row["part_size"])
        assert 0 <= owed, row
        for number in range(len(sizes) + 1, len(sizes) + 1 + owed):
            assert node.part_path(session_id, number).stat().st_size == row["part_size"], row
        if row["upload_id"] and (sizes or owed or remainder):
            # Or the tail is at the start of the part file after the owed ones:
            # the tail file was made that part's file before the row counted it.
            after = node.part_path(session_id, len(sizes) + owed + 1)
            assert self.tail_size(session_id, node) >= remainder or (remainder and after.exists()), row
        head = requests.head(node.upload_url(session_id), headers=TUS, timeout=HTTP_TIMEOUT)
        assert head.status_code == 200, head.text
        assert int(head.headers["Upload-Offset"]) == row["offset"]
        return int(row["offset"])


def _empty_dir(path: Path) -> str:
    """A fresh folder for prometheus_client's multiprocess mode (node-a, node-u)."""
    path.mkdir(parents=True, exist_ok=False)
    return str(path)


def start_nodes(nodes: list[Node]) -> None:
    for node in nodes:
        node.start()
    for node in nodes:
        node.wait_ready()


def migrate(database: ClusterDatabase, env: dict[str, str], workdir: Path) -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env={**env, "EXAMPLE_VAR_DIR": str(workdir / "migrate-var")},
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0:
        raise RuntimeError(f"migrate failed:\n{result.stdout}\n{result.stderr}")


@contextmanager
def running_cluster(s3_endpoint: str, workdir: Path, database_url: str) -> Iterator[Cluster]:
    """``node-a`` and ``node-b`` for routing and concurrency, ``node-f`` for
    the fault tests that kill it, ``node-s1`` and ``node-s2`` keeping their
    tails in S3 (``RINDLE_TUS_TAIL_STORE = "s3"``), ``node-y`` on gunicorn's
    sync worker, ``node-h`` with 8 threads a worker as the README deploys
    it, and ``node-u`` under uvicorn (``rindle_tus.asgi``). Every node runs with the default lease settings."""
    ensure_bucket(s3_endpoint, BUCKET, timeout=30)
    database = ClusterDatabase(database_url, workdir)
    relay = S3Relay(s3_endpoint)
    nodes: dict[str, Node] = {}
    try:
        database.create()
        base_env = {
            key: value for key, value in os.environ.items()
            if not key.startswith(("DJANGO_", "RINDLE_TUS_", "AWS_", "PYTEST_"))
        }
        base_env.update({
            "DJANGO_SETTINGS_MODULE": "example_project.settings",
            "DJANGO_DEBUG": "0",
            "DATABASE_URL": database.url,
            "AWS_S3_ENDPOINT_URL": relay.endpoint,
            "AWS_ACCESS_KEY_ID": "rindle",
            "AWS_SECRET_ACCESS_KEY": "rindle-secret",
            "AWS_STORAGE_BUCKET_NAME": BUCKET,
            "AWS_LOCATION": LOCATION,
            "RINDLE_TUS_PART_SIZE": str(PART),
            # boto3 reads these (the storage sets no retry config of its own):
            # a request to a cut S3 fails after 3 quick tries.
            "AWS_MAX_ATTEMPTS": "3",
            "AWS_RETRY_MODE": "standard",
            # Every test's uploads come from 127.0.0.1 and many are left
            # unfinished on purpose; the bound itself is tested in test_limits.
            "RINDLE_TUS_MAX_UNFINISHED": "none",
            "PYTHONUNBUFFERED": "1",
        })
        migrate(database, base_env, workdir)
        for name in ("node-a", "node-b", "node-f"):
            env = dict(base_env)
            if name == "node-a":
                env["PROMETHEUS_MULTIPROC_DIR"] = _empty_dir(workdir / name / "prometheus")
                # Draft creations get 104 here (tests/test_draft_104.py); node-b is the one without.
                env["RINDLE_TUS_SEND_104"] = "1"
            if name == "node-f":
                env["AWS_S3_READ_TIMEOUT"] = str(FAULT_S3_READ_TIMEOUT)
            nodes[name] = Node(name, workdir / name, env)
        for name in ("node-s1", "node-s2"):
            env = {**base_env, "RINDLE_TUS_TAIL_STORE": "s3"}
            nodes[name] = Node(name, workdir / name, env, shared_tail=True, workers=1)
        # gunicorn's sync worker: one request per process, so a stalled one holds a whole worker.
        nodes["node-y"] = Node("node-y", workdir / "node-y", dict(base_env), worker_class="sync")
        # As the README deploys it (8 threads a worker), for the hostile-client
        # tests, with no Tus-Max-Size but S3's 5 TiB (the worst case for memory).
        nodes["node-h"] = Node("node-h", workdir / "node-h", {**base_env, "RINDLE_TUS_MAX_SIZE": "none"}, threads=8)
        # The example project under uvicorn, through rindle_tus.asgi.
        nodes["node-u"] = Node(
            "node-u", workdir / "node-u",
            {**base_env, "PROMETHEUS_MULTIPROC_DIR": _empty_dir(workdir / "node-u" / "prometheus")},
            server="uvicorn",
        )
        start_nodes(list(nodes.values()))
        yield Cluster(workdir, s3_endpoint, database, relay, nodes, s3_client(s3_endpoint))
    finally:
        for node in nodes.values():
            node.kill()
        relay.close()
        database.drop()


# -- tus over HTTP ------------------------------------------------------------------


def create(files_url: str, length: int | None, **headers: str) -> str:
    extra = {"Upload-Length": str(length)} if length is not None else {"Upload-Defer-Length": "1"}
    response = requests.post(files_url, headers={**TUS, **extra, **headers}, timeout=HTTP_TIMEOUT)
    assert response.status_code == 201, response.text
    return str(response.headers["Location"])


def patch(url: str, data: bytes, offset: int, **headers: str) -> requests.Response:
    return requests.patch(
        url,
        data=data,
        headers={**TUS, "Upload-Offset": str(offset), "Content-Type": OFFSET_TYPE, **headers},
        timeout=HTTP_TIMEOUT,
    )


def head(url: str) -> requests.Response:
    return requests.head(url, headers=TUS, timeout=HTTP_TIMEOUT)


def offset_of(url: str) -> int:
    response = head(url)
    assert response.status_code == 200, response.text
    return int(response.headers["Upload-Offset"])


def resume(url: str, data: bytes) -> requests.Response:
    """What a tus client does after a failure, once: HEAD, then send the rest
    from the offset it answers. No retry: a request the failure left holding
    the upload must hand it over (or be gone) within that HEAD."""
    offset = offset_of(url)
    return patch(url, data[offset:], offset)


def session_id_of(url: str) -> str:
    upload_id = upload_id_of(url)
    assert upload_id, url
    return upload_id
