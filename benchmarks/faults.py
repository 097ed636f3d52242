"""Fault recovery and the cost of the lease heartbeat.

``python -m benchmarks.faults [options]`` runs only these (the same as
``python -m benchmarks.run --scenarios faults``); ``python -m benchmarks.run
--faults`` adds them to a normal run. See benchmarks/README.md, "Faults".

Recovery: tus-js-client (``peer/faultclient.mjs``, default retry settings, one
PATCH for the whole body) uploads through a ``tests.relay.ClientRelay`` in
front of the server, and a fault hits the PATCH:

a. the relay resets the client once ``fault_at`` body bytes went to the server
   and leaves the server's side of the connection open and silent (rindle and
   the peer);
b. the gunicorn worker holding the PATCH's lease is SIGKILLed once the client
   has handed ``fault_at`` bytes to its socket; the master starts a new one
   (rindle);
c. as a, but the retry is sent to a second gunicorn master of the same node
   (same settings, database and tail directory): the retry reaches a process
   that does not hold the upload, for certain (rindle).

Every event of the client is on the wall clock (``performance.timeOrigin +
performance.now()`` in Node, ``time.time()`` here), so the relay's moment of
reset or the moment of the kill and the client's timeline compare directly.

Heartbeat cost: N stalled PATCHes (headers and 64 KiB of body sent, then
silence) hold their leases on rindle for a window; PostgreSQL's own counters
(``pg_stat_database``, ``pg_stat_user_tables``, and a statement-level trigger
counting UPDATE statements on the session table) are read before and after,
minus an idle window of the same length.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

from .data import pieces, stream_sha256
from .scenarios import Bench, Sent
from .servers import PEER_DIR, Database, RindleServer
from .tusclient import TusConnection

MiB = 1024 * 1024
KiB = 1024
TABLE = "rindle_tus_tussession"

FAULTS = {
    "a": "client reset, server side left open",
    "b": "SIGKILL of the worker serving the PATCH",
    "c": "as a, retry on a process that does not hold the upload",
}


@dataclass(frozen=True)
class FaultSettings:
    runs: int = 10
    size: int = 64 * MiB
    fault_at: int = 28 * MiB
    heartbeat_counts: tuple[int, ...] = (1, 8, 32)
    heartbeat_window: float = 20.0
    client_timeout: float = 180.0


QUICK_FAULTS = FaultSettings(runs=2, size=24 * MiB, fault_at=10 * MiB, heartbeat_window=5.0)

Log = Callable[[str], None]


# -- rindle's rows ------------------------------------------------------------


class Rows:
    """A read-only look at rindle's session rows, on a connection of its own."""

    def __init__(self, url: str) -> None:
        self.sqlite = url.startswith("sqlite:")
        if self.sqlite:
            import sqlite3

            self.conn: Any = sqlite3.connect(url.split(":///", 1)[1], timeout=5, check_same_thread=False)
            self.mark = "?"
        else:
            import psycopg

            self.conn = psycopg.connect(url, autocommit=True)
            self.mark = "%s"

    def lease(self, session_id: str) -> tuple[str, str, int]:
        """The session's lease token and holder ("" and "" when it is free), and its committed offset."""
        row = self.conn.execute(
            f'SELECT lease_token, lease_holder, "offset" FROM {TABLE} WHERE id = {self.mark}', (session_id,)
        ).fetchone()
        return (str(row[0]), str(row[1]), int(row[2])) if row else ("", "", 0)

    def leased(self) -> list[str]:
        """The holders of every leased row."""
        rows = self.conn.execute(f"SELECT lease_holder FROM {TABLE} WHERE lease_token <> ''").fetchall()
        return [str(r[0]) for r in rows]

    def close(self) -> None:
        self.conn.close()


def holder_pid(holder: str) -> int | None:
    """The process id in a lease holder: "<node> <machine> <pid> <start>"."""
    parts = holder.split(" ")
    return int(parts[2]) if len(parts) == 4 and parts[2].isdigit() else None


def worker_pids(master: int) -> set[int]:
    import psutil

    try:
        return {p.pid for p in psutil.Process(master).children() if p.status() != psutil.STATUS_ZOMBIE}
    except psutil.NoSuchProcess:
        return set()


def session_id_of(url: str) -> str:
    return urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]


# -- one recovery run -----------------------------------------------------------


@dataclass
class Target:
    """A server as the fault runs see it."""

    name: str  # "rindle" or "peer"
    server: Any  # RindleServer or PeerServer
    other: RindleServer | None = None  # fault c: where the retry goes


class _Run:
    """One upload through a relay with one fault; collects the client's timeline."""

    def __init__(
        self, fault: str, target: Target, bench: Bench, settings: FaultSettings, database_url: str | None, run: int
    ) -> None:
        self.fault = fault
        self.target = target
        self.bench = bench
        self.settings = settings
        self.database_url = database_url
        self.run = run
        self.events: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.session_id: str | None = None
        # (wall ms, token, holder) at each change of the row's lease: a new token is a new lease, even when the
        # same process takes it.
        self.leases: list[tuple[float, str, str]] = []
        self.respawned: tuple[float, int] | None = None  # fault b: (wall ms, pid) of the master's new worker
        self.fault_t: float | None = None
        self.fault_note = ""
        self.killed: int | None = None
        self.kill_offset: int | None = None
        self.done = threading.Event()
        self.problems: list[str] = []

    def _event(self, event: dict[str, Any]) -> None:
        with self.lock:
            self.events.append(event)

    # -- the threads beside the client --

    def _read(self, stream: Any) -> None:
        for line in stream:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            self._event(event)
            if event["ev"] == "res" and event["method"] == "POST" and event.get("location"):
                self.session_id = session_id_of(event["location"])

    def _kill(self) -> None:
        """SIGKILL the worker that holds the PATCH's lease (from its row, checked against the master's children)."""
        server = self.target.server
        deadline = time.monotonic() + 5
        pid = None
        while time.monotonic() < deadline:
            with self.lock:
                holder = self.leases[-1][2] if self.leases else ""
            pid = holder_pid(holder)
            if pid is not None:
                break
            time.sleep(0.005)
        if pid is None or pid not in worker_pids(server.pid):
            self.problems.append(f"no worker of the master holds the lease (holder {pid})")
            return
        before = worker_pids(server.pid)
        os.kill(pid, signal.SIGKILL)
        self.fault_t = time.time() * 1000
        self.killed = pid
        self.fault_note = f"SIGKILL {pid}"
        self._event({"ev": "fault", "t": self.fault_t, "how": self.fault_note})
        threading.Thread(target=self._watch_respawn, args=(before,), daemon=True, name="fault-respawn").start()

    def _watch_respawn(self, before: set[int]) -> None:
        """When the master starts the killed worker's replacement."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            new = worker_pids(self.target.server.pid) - before
            if new:
                self.respawned = (time.time() * 1000, min(new))
                return
            time.sleep(0.01)

    def _watch_rows(self) -> None:
        rows = Rows(self.database_url) if self.database_url else None
        if rows is None:
            return
        try:
            last = None
            part = self.bench.part_size
            # Fault b: the kill comes once the row has committed the parts below the fault offset (24 MiB of
            # 28): the worker is then well into the upload, with bytes read and parts sent that are not committed.
            kill_at = max(part, self.settings.fault_at // part * part)
            while not self.done.is_set():
                if self.session_id:
                    token, holder, offset = rows.lease(self.session_id)
                    if (token, holder) != last:
                        with self.lock:
                            self.leases.append((time.time() * 1000, token, holder))
                        last = (token, holder)
                    # Not once it is complete (its answer on its way): that is no fault of the upload.
                    if self.fault == "b" and self.killed is None and token and kill_at <= offset < self.settings.size:
                        self._kill()
                        self.kill_offset = offset
                time.sleep(0.01)
        finally:
            rows.close()

    def _watch_drop(self, relay: Any) -> None:
        try:
            relay.wait_dropped(1, timeout=self.settings.client_timeout)
        except AssertionError:
            return
        woke = time.time()
        # The relay's own moment of the reset, if it recorded one (see _timed_relay); else this thread's, a little
        # later (it competes for the GIL with the relay's pumps).
        self.fault_t = min(getattr(relay, "reset_at", []) or [woke]) * 1000
        self.fault_note = f"relay reset after {self.settings.fault_at} body bytes"
        self._event({"ev": "fault", "t": self.fault_t, "how": self.fault_note})

    def _retarget(self, relay: Any, port: int) -> None:
        """Fault c: once the PATCH's head went through (its connection is to the first server), every new
        connection (the retry's) goes to the other master."""
        deadline = time.monotonic() + self.settings.client_timeout
        while not self.done.is_set() and time.monotonic() < deadline:
            if any(method == "PATCH" for method, _ in relay.requests):
                relay.upstream_port = port
                return
            time.sleep(0.001)

    # -- the run --

    def execute(self) -> dict[str, Any]:
        settings = self.settings
        server = self.target.server
        seed = self.bench.seeds(1)[0]
        expected = stream_sha256(seed, settings.size)
        relay = _timed_relay(server.port)
        if self.fault in ("a", "c"):
            relay.drop("PATCH", after=settings.fault_at)
        endpoint = relay.url + urlsplit(server.url).path
        command = [
            "node", "faultclient.mjs", endpoint,
            f"--size={settings.size}", f"--seed={seed}", f"--mark={settings.fault_at}",
        ]  # fmt: skip
        threads = [threading.Thread(target=self._watch_rows, daemon=True, name="fault-rows")]
        if self.fault in ("a", "c"):
            threads.append(threading.Thread(target=self._watch_drop, args=(relay,), daemon=True, name="fault-drop"))
        if self.fault == "c":
            assert self.target.other is not None
            threads.append(
                threading.Thread(
                    target=self._retarget, args=(relay, self.target.other.port), daemon=True, name="fault-retarget"
                )
            )
        for thread in threads:
            thread.start()
        stderr = ""
        returncode = None
        try:
            process = subprocess.Popen(
                command, cwd=PEER_DIR, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1
            )
            assert process.stdout is not None and process.stderr is not None
            reader = threading.Thread(target=self._read, args=(process.stdout,), daemon=True, name="fault-client")
            reader.start()
            try:
                returncode = process.wait(timeout=settings.client_timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                returncode = process.wait()
                self.problems.append(f"the client did not finish within {settings.client_timeout:.0f} s")
            reader.join(timeout=10)
            stderr = process.stderr.read().strip()
            process.stdout.close()
            process.stderr.close()
        finally:
            self.done.set()
            relay.close()
            for thread in threads:
                thread.join(timeout=10)
        result = self._result(returncode, stderr)
        url = next((e["url"] for e in self.events if e["ev"] == "success"), None)
        if url is not None:
            key_url = urljoin(server.url, urlsplit(url).path)
            self.bench.verify(
                [Sent(server.key_for(key_url), server.extra_keys(key_url), expected, seed, settings.size)]
            )
            result["verified"] = True
        else:
            self._clean_up(server)
        return result

    def _clean_up(self, server: Any) -> None:
        """A failed upload: terminate it on the server directly, and remove what it left in S3."""
        if not self.session_id:
            return
        url = urljoin(server.url.rstrip("/") + "/", self.session_id)
        connection = TusConnection(server.url, timeout=30)
        try:
            connection.delete(url)
        except Exception as exc:  # noqa: BLE001 - best effort; reported
            self.problems.append(f"could not terminate {url}: {exc!r}")
        finally:
            connection.close()
        self.bench.s3.delete(server.key_for(url), *server.extra_keys(url))

    def _result(self, returncode: int | None, stderr: str) -> dict[str, Any]:
        events = sorted(self.events, key=lambda e: e["t"])
        fault_t = self.fault_t
        requests = [e for e in events if e["ev"] == "req"]
        patches = [i for i, e in enumerate(requests) if e["method"] == "PATCH"]
        success = next((e for e in events if e["ev"] == "success"), None)
        error = next((e["message"] for e in events if e["ev"] == "error"), None)
        result: dict[str, Any] = {
            "fault": self.fault,
            "server": self.target.name,
            "run": self.run,
            "fault_at": self.settings.fault_at,
            "size": self.settings.size,
            "ok": success is not None and fault_t is not None,
            "error": error or (None if returncode == 0 else f"client exit {returncode}: {stderr[-500:]}"),
            "problems": list(self.problems),
            "fault_note": self.fault_note,
            "kill_offset": self.kill_offset,
            "verified": False,
        }
        if fault_t is None:
            result["problems"].append("the fault did not happen")
            result["events"] = events
            return result

        def ms(event: dict[str, Any] | None) -> float | None:
            return None if event is None else round(event["t"] - fault_t, 1)

        # The client's first request after the fault: the retry (HEAD, with tus-js-client).
        first_patch_t = requests[patches[0]]["t"] if patches else None
        after = [e for e in requests if first_patch_t is not None and e["t"] > first_patch_t]
        retry = after[0] if after else None
        retry_response = None
        if retry is not None:
            retry_response = next(
                (e for e in events if e["ev"] == "res" and e["t"] >= retry["t"] and e["method"] == retry["method"]),
                None,
            )
        kept = None
        head = next(
            (e for e in events if e["ev"] == "res" and e["method"] == "HEAD" and retry and e["t"] >= retry["t"]), None
        )
        if head is not None and head.get("offset") is not None:
            kept = int(head["offset"])
        # Resumed: the PATCH that completed the upload (the retry's, unless it failed too) starts sending its
        # body, from the offset the server reported; back where it was: that PATCH hands the first bytes past
        # the fault offset to its socket.
        slices = [e for e in events if e["ev"] == "slice" and e["index"] >= 1]
        last = slices[-1]["index"] if slices and success is not None else None
        resume = next((e for e in slices if e["index"] == last), None)
        past = next((e for e in events if e["ev"] == "cross" and e["index"] == last), None)
        progress = next(
            (
                e
                for e in events
                if e["ev"] == "progress" and e["bytes"] > self.settings.fault_at and retry and e["t"] >= retry["t"]
            ),
            None,
        )
        # Every request after the fault, with its status ("-" if it failed without a response).
        attempts = []
        responses = [e for e in events if e["ev"] == "res"]
        for i, request in enumerate(after):
            following = after[i + 1]["t"] if i + 1 < len(after) else float("inf")
            answer = next(
                (r for r in responses if request["t"] <= r["t"] < following and r["method"] == request["method"]),
                None,
            )
            attempts.append(f"{request['method']} {answer['status'] if answer else '-'}")
        first_pid = retry_pid = None
        leases = [(t, token, h) for t, token, h in self.leases if token]
        if leases:
            first_pid = holder_pid(leases[0][2])
            later = [holder_pid(h) for t, token, h in leases if t > fault_t and token != leases[0][1]]
            retry_pid = later[0] if later else None
        if self.killed is not None:
            first_pid = self.killed
        respawn_s = new_pid = None
        if self.respawned is not None:
            respawn_s = round((self.respawned[0] - fault_t) / 1000, 3)
            new_pid = self.respawned[1]
        result.update(
            {
                "kept": kept,
                "retry_s": _s(ms(retry)),
                "retry_answer_s": _s(ms(retry_response)),
                "resume_s": _s(ms(resume)),
                "past_s": _s(ms(past)),
                "progress_resume_s": _s(ms(progress)),
                "success_s": _s(ms(success)),
                "initial_mib_s": (
                    self.settings.fault_at / MiB / ((fault_t - first_patch_t) / 1000)
                    if first_patch_t and fault_t > first_patch_t
                    else None
                ),
                "attempts": attempts,
                "holder_pid": first_pid,
                "retry_pid": retry_pid,
                "respawn_s": respawn_s,
                "new_pid": new_pid,
                # The row's leases as they changed: (ms from the fault, holder's pid, token's first 8 characters).
                "leases": [(round(t - fault_t, 1), holder_pid(h), token[:8]) for t, token, h in self.leases],
                "events": events,
            }
        )
        if past is None and success is not None:
            result["problems"].append("no body bytes past the fault offset after the fault")
        return result


def _timed_relay(port: int) -> Any:
    """A ``tests.relay.ClientRelay`` that also notes the wall-clock time of each drop, right after it reset the
    client's socket (its ``dropped`` hook runs then, in the pump thread that reset it)."""
    from tests.relay import ClientRelay

    class TimedRelay(ClientRelay):
        def __init__(self, upstream_port: int) -> None:
            self.reset_at: list[float] = []
            super().__init__(upstream_port)

        def dropped(self) -> None:
            self.reset_at.append(time.time())

    return TimedRelay(port)


def _s(value_ms: float | None) -> float | None:
    return None if value_ms is None else round(value_ms / 1000, 4)


# -- recovery: all runs -------------------------------------------------------------


def recovery(
    bench: Bench,
    rindle: RindleServer,
    peer: Any,
    database: Database,
    settings: FaultSettings,
    log: Log,
    results: list[dict[str, Any]],
) -> None:
    """Faults a (rindle, peer) and c (rindle) interleaved run by run, then b (rindle); each run's result is
    appended to ``results`` as it is measured."""
    database_url = database.url
    # Fault c's second master: the same environment (node name, database, tail directory), another port.
    other = RindleServer(rindle.workdir, bench.s3, database, bench.part_size, rindle.settings)

    def one(fault: str, target: Target, run: int) -> None:
        url = database_url if target.name == "rindle" else None
        result = _Run(fault, target, bench, settings, url, run).execute()
        missed = 0
        # Fault b waits for a commit below the fault offset; when the commits skip from below it to the end,
        # the upload finishes unharmed: that run is done again (at most twice), and the misses are counted.
        while fault == "b" and result.get("fault_note") == "" and missed < 2:
            missed += 1
            log(f"fault b run {run}: the upload completed before the kill; again")
            result = _Run(fault, target, bench, settings, url, run).execute()
        result["missed"] = missed
        pid = result.get("retry_pid")
        if pid is not None:
            if fault == "c":
                result["retry_on"] = "second master" if pid in worker_pids(other.pid or 0) else "first master"
            elif pid == result["holder_pid"]:
                result["retry_on"] = "holder's process"
            elif pid == result.get("new_pid"):
                result["retry_on"] = "new worker"
            else:
                result["retry_on"] = "other worker"
        results.append(result)
        log(describe(result))

    try:
        other.start()
        _, sent = bench.python_uploads(other, 1, bench.part_size + MiB, None)  # its warm-up
        bench.verify(sent)
        for run in range(1, settings.runs + 1):
            one("a", Target("rindle", rindle), run)
            one("a", Target("peer", peer), run)
            one("c", Target("rindle", rindle, other), run)
    finally:
        other.stop()
    workers = len(worker_pids(rindle.pid or 0))
    for run in range(1, settings.runs + 1):
        one("b", Target("rindle", rindle), run)
        _wait_for_workers(rindle, workers, results[-1].get("holder_pid"))


def _wait_for_workers(rindle: RindleServer, count: int, killed: int | None, timeout: float = 60) -> None:
    """Until the master runs ``count`` workers again, none of them the killed one (and a moment for the new one
    to be ready), so that every run starts from the same state."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = worker_pids(rindle.pid or 0)
        if len(now) >= count and killed not in now:
            time.sleep(1)
            return
        time.sleep(0.05)
    raise RuntimeError(f"gunicorn did not replace worker {killed} within {timeout:.0f} s")


def describe(r: dict[str, Any]) -> str:
    if not r.get("ok"):
        return f"fault {r['fault']} {r['server']:<6} run {r['run']}: FAILED {r.get('error')} {r.get('problems')}"
    kept = "?" if r.get("kept") is None else f"{r['kept'] / MiB:.1f} MiB"
    where = f", retry on {r['retry_on']}" if r.get("retry_on") else ""
    return (
        f"fault {r['fault']} {r['server']:<6} run {r['run']}: retry +{r['retry_s']:.3f} s, kept {kept}, "
        f"resume +{_fmt(r.get('resume_s'))} s, success +{_fmt(r.get('success_s'))} s "
        f"[{', '.join(r.get('attempts', []))}]{where}{' ' + str(r['problems']) if r.get('problems') else ''}"
    )


def _fmt(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


# -- heartbeat cost -------------------------------------------------------------------

_COUNTER = "bench_tussession_update_statements"
_INSTALL = f"""
CREATE SEQUENCE IF NOT EXISTS {_COUNTER};
CREATE OR REPLACE FUNCTION {_COUNTER}_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM nextval('{_COUNTER}'); RETURN NULL; END $$;
DROP TRIGGER IF EXISTS {_COUNTER}_trigger ON {TABLE};
CREATE TRIGGER {_COUNTER}_trigger AFTER UPDATE ON {TABLE} FOR EACH STATEMENT EXECUTE FUNCTION {_COUNTER}_count();
"""
_UNINSTALL = f"""
DROP TRIGGER IF EXISTS {_COUNTER}_trigger ON {TABLE};
DROP FUNCTION IF EXISTS {_COUNTER}_count();
DROP SEQUENCE IF EXISTS {_COUNTER};
"""
_SAMPLE = f"""
SELECT (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM {_COUNTER}) AS update_statements,
       d.xact_commit + d.xact_rollback AS transactions,
       d.tup_returned, d.tup_fetched,
       t.n_tup_upd, t.seq_scan, COALESCE(t.idx_scan, 0) AS idx_scan
FROM pg_stat_database d, pg_stat_user_tables t
WHERE d.datname = current_database() AND t.relname = '{TABLE}'
"""
_KEYS = ["update_statements", "transactions", "tup_returned", "tup_fetched", "n_tup_upd", "seq_scan", "idx_scan"]
# PostgreSQL flushes the statistics of a backend that went idle within 10 s (PGSTAT_IDLE_INTERVAL), those of one
# that keeps working about every second: a window starts this long after the setup's last statement, so that none
# of the setup (the POSTs, the PATCHes taking their leases, the requests before) is counted in it.
SETTLE = 11.0


class _Slow:
    """One PATCH on a raw socket: its headers and 64 KiB of body, then ``TRICKLE`` bytes a second from
    ``trickle()`` (faster than RINDLE_TUS_BODY_MIN_RATE, 1024 bytes/s, so the stalled-body rule leaves it be
    for as long as it is held, and far too slow to fill a part: no database work of its own)."""

    FIRST = 64 * KiB
    TRICKLE = 4 * KiB

    def __init__(self, url: str, seed: int, length: int) -> None:
        self.url = url
        parts = urlsplit(url)
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=30)
        head = (
            f"PATCH {parts.path} HTTP/1.1\r\nHost: {parts.hostname}:{parts.port}\r\nTus-Resumable: 1.0.0\r\n"
            f"Upload-Offset: 0\r\nContent-Type: application/offset+octet-stream\r\nContent-Length: {length}\r\n\r\n"
        )
        self.sock.sendall(head.encode("ascii") + b"".join(bytes(p) for p in pieces(seed, 0, self.FIRST)))

    def trickle(self) -> None:
        self.sock.sendall(bytes(self.TRICKLE))

    def close(self) -> None:
        self.sock.close()


class _Trickler:
    """A thread that keeps every held PATCH alive with a few bytes a second."""

    def __init__(self) -> None:
        self.held: list[_Slow] = []
        self.lock = threading.Lock()
        self.failed: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name="heartbeat-trickle")
        self.thread.start()

    def add(self, slow: _Slow) -> None:
        with self.lock:
            self.held.append(slow)

    def _run(self) -> None:
        while not self.stop.wait(1.0):
            with self.lock:
                held = list(self.held)
            for slow in held:
                try:
                    slow.trickle()
                except OSError as exc:
                    self.failed.append(f"{slow.url}: {exc!r}")

    def close(self) -> list[_Slow]:
        self.stop.set()
        self.thread.join(timeout=10)
        with self.lock:
            held, self.held = self.held, []
        for slow in held:
            slow.close()
        return held


def _leased(rows: Rows, session_id: str) -> bool:
    return rows.lease(session_id)[0] != ""


def _open_connections(rindle: RindleServer) -> int:
    """TCP connections the rindle workers hold on their port (clients that are still connected)."""
    import psutil

    count = 0
    for pid in worker_pids(rindle.pid or 0):
        try:
            connections = psutil.Process(pid).net_connections(kind="tcp")
        except psutil.Error:
            continue
        count += sum(1 for c in connections if c.status == psutil.CONN_ESTABLISHED and c.laddr.port == rindle.port)
    return count


def heartbeat_cost(
    bench: Bench, rindle: RindleServer, database: Database, settings: FaultSettings, log: Log
) -> dict[str, Any]:
    """Database statements per second of N held, slowly streaming PATCHes, minus an idle window of the same
    length."""
    if database.admin_url is None:
        return {"skipped": "needs PostgreSQL (its statistics views)"}
    import psycopg

    window = settings.heartbeat_window
    conn = psycopg.connect(database.url, autocommit=True)
    rows = Rows(database.url)
    result: dict[str, Any] = {
        "window_s": window,
        "settle_s": SETTLE,
        "settings": rindle.settings.describe(),
        "phases": [],
    }
    trickler: _Trickler | None = None
    try:
        conn.execute(_INSTALL)
        _wait_until(lambda: not rows.leased(), 30, "no lease to be held before the idle window")

        def sample() -> dict[str, int]:
            row = conn.execute(_SAMPLE).fetchone()
            assert row is not None, "the statistics of the session table are missing"
            return dict(zip(_KEYS, (int(v) for v in row), strict=True))

        def measure() -> tuple[dict[str, float], float]:
            time.sleep(SETTLE)
            before, started = sample(), time.monotonic()
            time.sleep(window)
            after, seconds = sample(), time.monotonic() - started
            return {k: (after[k] - before[k]) / seconds for k in _KEYS}, seconds

        idle, seconds = measure()
        result["idle"] = {"rates": idle, "seconds": round(seconds, 2)}
        log(f"heartbeat: idle window {seconds:.1f} s: {idle['transactions']:.2f} statements/s")
        for count in settings.heartbeat_counts:
            # Every upload is created first: a POST that lands on a worker whose threads all serve held
            # PATCHes would wait for one.
            attempts = 3 * count
            seeds = bench.seeds(attempts)
            creator = TusConnection(rindle.url, timeout=30)
            try:
                urls = [creator.create(64 * MiB) for _ in seeds]
            finally:
                creator.close()
            # One PATCH at a time, each until it holds its lease. gunicorn's workers race for each connection, so
            # one whose threads are all busy may take it and queue it: that PATCH does not start (no lease), and
            # another upload is tried (its socket is closed; the queued request ends at once when it is served).
            trickler = _Trickler()
            queued = 0
            started = time.monotonic()
            for url, seed in zip(urls, seeds, strict=True):
                if len(trickler.held) == count:
                    break
                slow = _Slow(url, seed, 64 * MiB)
                if _wait_until(functools.partial(_leased, rows, session_id_of(url)), 0.5, "a lease", fail=False):
                    trickler.add(slow)
                else:
                    slow.close()
                    queued += 1
            setup_s = time.monotonic() - started
            held_before = rows.leased()
            rates, seconds = measure()
            held_after = rows.leased()
            pids = sorted({p for p in (holder_pid(h) for h in held_after) if p is not None})
            net = {k: rates[k] - idle[k] for k in _KEYS}
            phase: dict[str, Any] = {
                "uploads": count,
                "leases_held": len(held_after),
                "leases_held_before": len(held_before),
                "processes": len(pids),
                "per_process": sorted((sum(1 for h in held_after if holder_pid(h) == p) for p in pids), reverse=True),
                "queued_attempts": queued,
                "setup_s": round(setup_s, 1),
                "seconds": round(seconds, 2),
                "trickle_failures": list(trickler.failed),
                "rates": rates,
                "net": net,
            }
            result["phases"].append(phase)
            log(
                f"heartbeat: {count} held ({len(held_after)} leases, processes {phase['per_process']}, "
                f"{queued} queued attempts): {net['update_statements']:.2f} UPDATE/s, "
                f"{net['n_tup_upd']:.2f} rows updated/s, "
                f"{net['transactions'] - net['update_statements']:.2f} other statements/s"
            )
            # Closed: each PATCH reads the end of its body, keeps what arrived and lets go; then every upload of
            # the phase is terminated.
            trickler.close()
            trickler = None
            _wait_until(lambda: not rows.leased(), 30, "the held requests to let go")
            time.sleep(1)  # the queued requests, served now that threads are free, end as fast
            terminator = TusConnection(rindle.url, timeout=30)
            try:
                for url in urls:
                    terminator.delete(url)
                    bench.s3.delete(rindle.key_for(url))
            finally:
                terminator.close()
    finally:
        if trickler is not None:
            trickler.close()
        try:
            _wait_until(lambda: not rows.leased(), 30, "every lease to be released", fail=False)
            _wait_until(lambda: _open_connections(rindle) == 0, 30, "no client connection left", fail=False)
            result["leases_left"] = len(rows.leased())
            result["connections_left"] = _open_connections(rindle)
            conn.execute(_UNINSTALL)
        finally:
            rows.close()
            conn.close()
    if result["leases_left"] or result["connections_left"]:
        log(f"heartbeat: left behind: {result['leases_left']} leases, {result['connections_left']} connections")
    return result


def _wait_until(check: Callable[[], bool], timeout: float, what: str, *, fail: bool = True) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    if fail:
        raise RuntimeError(f"waited {timeout:.0f} s for {what}")
    return False


# -- both, for run.py ---------------------------------------------------------------------


def measure(
    bench: Bench,
    rindle: RindleServer,
    peer: Any,
    database: Database,
    settings: FaultSettings,
    log: Log,
    data: dict[str, Any],
) -> None:
    """Recovery, then the heartbeat cost, into ``data`` (which holds what was measured if one of them fails)."""
    started = time.monotonic()
    data["settings"] = asdict(settings)
    data["recovery"] = []
    try:
        recovery(bench, rindle, peer, database, settings, log, data["recovery"])
        data["heartbeat"] = heartbeat_cost(bench, rindle, database, settings, log)
    finally:
        data["minutes"] = round((time.monotonic() - started) / 60, 1)


# -- the report -----------------------------------------------------------------------------


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def recovery_rows(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per fault and server: medians and maxima over the runs that succeeded and were verified."""
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in results:
        grouped.setdefault((r["fault"], r["server"]), []).append(r)
    table = []
    for (fault, server), rs in sorted(grouped.items(), key=lambda kv: (kv[0][0], kv[0][1] != "rindle")):
        ok = [r for r in rs if r.get("ok") and r.get("verified")]

        def values(key: str, rs_: list[dict[str, Any]] = ok) -> list[float]:
            return [r[key] for r in rs_ if r.get(key) is not None]

        where: dict[str, int] = {}
        for r in ok:
            if r.get("retry_on"):
                where[r["retry_on"]] = where.get(r["retry_on"], 0) + 1
        row: dict[str, Any] = {
            "fault": fault,
            "server": server,
            "runs": len(rs),
            "ok": len(ok),
            "failures": [f"run {r['run']}: {r.get('error') or r.get('problems')}" for r in rs if r not in ok],
            "kept_mib": _median([v / MiB for v in values("kept")]),
            "kept_range_mib": _span([round(v / MiB, 1) for v in values("kept")]),
            "requests": _span([len(r.get("attempts", [])) for r in ok]),
            "retry_on": where,
            "respawn_s": _median(values("respawn_s")),
            "missed": sum(r.get("missed", 0) for r in rs),
            "patterns": sorted({", ".join(r.get("attempts", [])) for r in ok}),
        }
        for key in ("retry_s", "retry_answer_s", "resume_s", "past_s", "success_s"):
            row[key] = _median(values(key))
            row[key[:-2] + "_max_s"] = max(values(key), default=None)
        table.append(row)
    return table


def _span(values: list[Any]) -> str:
    if not values:
        return "—"
    return str(values[0]) if min(values) == max(values) else f"{min(values)} to {max(values)}"


def markdown(faults: dict[str, Any]) -> list[str]:
    settings = faults.get("settings", {})
    size, at = settings.get("size", 0), settings.get("fault_at", 0)
    rows_ = recovery_rows(faults.get("recovery", []))
    lines = [
        "",
        "## Recovery",
        "",
        f"One {size / MiB:g} MiB upload in a single PATCH by tus-js-client with its default retries (delays 0, 1, "
        f"3, 5 s), through a TCP relay (`tests/relay.py`); the fault hits at {at / MiB:g} MiB of body. Seconds from "
        "the fault (the relay's reset; the SIGKILL) to: the retry's first request; its answer (for a and c the "
        "handover); **resume**: the PATCH that completes the upload starts sending its body; **past**: that PATCH "
        "hands the first byte past the fault offset to its socket; **success**. Median / max of "
        f"{settings.get('runs', '?')} runs; every stored object's SHA-256 verified. *kept*: the offset the server "
        "answered to the retry.",
        "",
        "| Fault | Server | runs ok | kept (MiB) | → retry request | → retry answered | → resume | → past "
        "| → success | requests after the fault | retry served by |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]

    def pair(row: dict[str, Any], key: str) -> str:
        return f"{_fmt(row[key + '_s'], 2)} / {_fmt(row[key + '_max_s'], 2)}"

    for row in rows_:
        where = ", ".join(f"{k} {v}" for k, v in sorted(row["retry_on"].items())) or "—"
        if row["fault"] == "b" and row["respawn_s"] is not None:
            where += f"; new worker {row['respawn_s']:.2f} s after the kill"
        kept = row["kept_range_mib"] if row["kept_range_mib"] != "—" else _fmt(row["kept_mib"], 1)
        lines.append(
            f"| {row['fault']}. {FAULTS[row['fault']]} | {row['server']} | {row['ok']}/{row['runs']} | {kept} | "
            f"{pair(row, 'retry')} | {pair(row, 'retry_answer')} | {pair(row, 'resume')} | {pair(row, 'past')} | "
            f"{pair(row, 'success')} | {row['requests']} | {where} |"
        )
    lines.append("")
    for row in rows_:
        if row["failures"]:
            lines.append(f"- fault {row['fault']}, {row['server']}: failed: " + "; ".join(row["failures"]))
        if row["missed"]:
            lines.append(
                f"- fault {row['fault']}, {row['server']}: {row['missed']} run(s) done again: the row's commits went "
                "from below the fault offset to the end, so the upload completed before the kill."
            )
        if len(row["patterns"]) > 1:
            lines.append(f"- fault {row['fault']}, {row['server']}: requests after the fault: "
                         + " | ".join(row["patterns"]))  # fmt: skip
    return lines + heartbeat_markdown(faults)


def heartbeat_markdown(faults: dict[str, Any]) -> list[str]:
    heartbeat = faults.get("heartbeat") or {}
    lines = ["", "## Heartbeat cost", ""]
    if faults.get("error") and not heartbeat:
        return [*lines, "Not measured (the fault measurements failed before).", ""]
    if heartbeat.get("skipped"):
        return [*lines, f"Skipped: {heartbeat['skipped']}.", ""]
    idle = heartbeat["idle"]["rates"]
    lines += [
        f"N PATCHes held open on rindle (`{heartbeat['settings']}`): headers and 64 KiB sent, then 4 KiB a second "
        "(slower than a part could ever fill, faster than the stalled-body rule's minimum), each holding its lease. "
        f"PostgreSQL's counters are read {heartbeat['settle_s']:.0f} s after the last lease was taken and again "
        f"{heartbeat['window_s']:.0f} s later, minus an idle window of the same length "
        f"({idle['transactions']:.2f} statements/s). UPDATE statements on `rindle_tus_tussession` are counted by a "
        "statement-level trigger (a sequence's nextval), rows updated by `pg_stat_user_tables.n_tup_upd`, all "
        "statements by `pg_stat_database` transactions (Django autocommit: one per statement); the other "
        "statements are the reads (SELECT).",
        "",
        "| uploads N | leases held (per process) | UPDATE statements/s | per upload | rows updated/s | per upload "
        "| SELECT statements/s | per upload |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for phase in heartbeat["phases"]:
        net, held = phase["net"], phase["leases_held"] or 1
        selects = net["transactions"] - net["update_statements"]
        lines.append(
            f"| {phase['uploads']} | {phase['leases_held']} ({' + '.join(map(str, phase['per_process']))}) | "
            f"{net['update_statements']:.2f} | {net['update_statements'] / held:.3f} | {net['n_tup_upd']:.2f} | "
            f"{net['n_tup_upd'] / held:.3f} | {selects:.2f} | {selects / held:.3f} |"
        )
    notes = [
        f"N={p['uploads']}: {p['queued_attempts']} PATCH(es) queued behind busy threads and replaced"
        for p in heartbeat["phases"]
        if p.get("queued_attempts")
    ]
    if notes:
        lines += ["", "- " + "; ".join(notes) + " (gunicorn's workers race for each connection)."]
    if heartbeat.get("leases_left") or heartbeat.get("connections_left"):
        lines.append(
            f"- Left behind after the release: {heartbeat['leases_left']} leases, "
            f"{heartbeat['connections_left']} connections."
        )
    lines.append("")
    return lines


def main(argv: list[str] | None = None) -> int:
    from . import run

    return run.main(["--scenarios", "faults", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
