"""A hostile client against rindle's memory: the peak RSS of each gunicorn worker.

``python -m benchmarks.hostile [options]`` runs only this (the same as
``python -m benchmarks.run --scenarios hostile``). See benchmarks/README.md,
"Hostile memory".

The run's gunicorn is restarted with ``RINDLE_TUS_MAX_SIZE=none`` (when the
example project's settings take it; otherwise unset), every worker takes one
small upload, and then:

1. huge declared lengths: uploads of 5 TiB minus n x 10,000 MiB (n = 0..3, so
   each has its own part size), each sent an empty PATCH and then a 1 MiB
   PATCH, every request on a new connection (gunicorn's workers race for it);
2. stalled bodies: N PATCHes, each on a new 5 TiB upload, declare a
   Content-Length of the whole 5 TiB, send 1 MiB and go silent. Each either
   holds its upload's lease (the row's ``lease_token``) or is answered (503
   ``busy``: the server's cap on bodies per process). After a window, each
   upload gets a HEAD (the server ends the stalled request: a handover), the
   sockets are closed, and the run checks that no lease and no client
   connection is left.

The RSS of every worker is sampled every 100 ms throughout; the machine's
available memory is watched too, and the stalled requests are cut short if
it falls below ``guard_mib`` (the code before the memory bounds takes a
525 MiB buffer per stalled request).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

import psutil

from .data import pieces, stream_sha256
from .faults import Rows, _open_connections, _wait_until, holder_pid, session_id_of, worker_pids
from .scenarios import Bench, Sent
from .servers import REPO, Database, RindleServer
from .tusclient import TUS, TusConnection, TusFailure

MiB = 1024 * 1024
TiB = 1024 * 1024 * MiB
Log = Callable[[str], None]
PHASES = ("1", "2")


@dataclass(frozen=True)
class HostileSettings:
    stalled: int = 16  # phase 2's PATCHes
    lengths: int = 4  # phase 1's distinct declared lengths
    huge: int = 5 * TiB  # S3's largest object
    step: int = 10_000 * MiB  # between phase 1's lengths: one MiB of part size each
    body: int = 1 * MiB  # what each non-empty PATCH sends
    hold_s: float = 4.0  # the window with every stalled request settled
    settle_s: float = 30.0  # at most this long for each stalled request to be held or answered
    guard_mib: int = 3072  # cut the stalled requests short below this much available memory


# -- memory ---------------------------------------------------------------------------------


def _rss(pid: int) -> int | None:
    try:
        return int(psutil.Process(pid).memory_info().rss)
    except psutil.Error:
        return None


def reset_peaks(pids: Iterable[int]) -> bool:
    """Reset the kernel's RSS high-water mark (VmHWM) of each process; False where that is not allowed."""
    ok = True
    for pid in pids:
        try:
            with open(f"/proc/{pid}/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            ok = False
    return ok


def kernel_peaks(pids: Iterable[int]) -> dict[int, int]:
    """Each process's VmHWM: its largest RSS since the last reset, short peaks between samples included."""
    peaks = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        peaks[pid] = int(line.split()[1]) * 1024
                        break
        except OSError:
            continue
    return peaks


def workers_rss(master: int) -> dict[int, int]:
    """RSS in bytes of each of the master's live workers."""
    sizes = {}
    for pid in worker_pids(master):
        rss = _rss(pid)
        if rss is not None:
            sizes[pid] = rss
    return sizes


class WorkerSampler:
    """Every ``interval`` seconds, each worker's RSS, labelled with the current ``phase``; also watches the
    machine's available memory and calls ``on_low_memory`` (once) when it falls below ``guard`` bytes."""

    def __init__(self, master: int, guard: int, interval: float = 0.1) -> None:
        self.master = master
        self.guard = guard
        self.interval = interval
        self.phase = ""
        self.samples: list[tuple[float, str, dict[int, int]]] = []
        self.lowest_available: int | None = None
        self.low_memory = threading.Event()
        self.on_low_memory: Callable[[], None] | None = None
        self._stop = threading.Event()
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="hostile-rss", daemon=True)

    def _sample(self) -> None:
        sizes = workers_rss(self.master)
        self.samples.append((time.monotonic() - self._started, self.phase, sizes))
        available = psutil.virtual_memory().available
        if self.lowest_available is None or available < self.lowest_available:
            self.lowest_available = available
        if available < self.guard and not self.low_memory.is_set():
            self.low_memory.set()
            if self.on_low_memory is not None:
                self.on_low_memory()

    def _run(self) -> None:
        while True:
            self._sample()
            if self._stop.wait(self.interval):
                break
        self._sample()

    def __enter__(self) -> WorkerSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def peaks(self, phase: str) -> dict[int, int]:
        """Each worker's largest RSS in the phase's samples."""
        peak: dict[int, int] = {}
        for _, label, sizes in self.samples:
            if label == phase:
                for pid, rss in sizes.items():
                    peak[pid] = max(peak.get(pid, 0), rss)
        return peak

    def peak_sum(self, phase: str) -> int:
        """The largest sum over the workers in one of the phase's samples."""
        return max((sum(s.values()) for _, label, s in self.samples if label == phase), default=0)


def _settled_rss(master: int, seconds: float = 2.0) -> dict[int, int]:
    """Each worker's RSS after a moment of rest."""
    time.sleep(seconds)
    return workers_rss(master)


# -- raw requests ---------------------------------------------------------------------------


class RawPatch:
    """A PATCH on a plain socket: its headers, then whatever body the caller sends, when it sends it."""

    def __init__(self, url: str, offset: int, length: int, timeout: float = 30.0) -> None:
        self.url = url
        parts = urlsplit(url)
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=timeout)
        head = (
            f"PATCH {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nTus-Resumable: 1.0.0\r\n"
            f"Upload-Offset: {offset}\r\nContent-Type: application/offset+octet-stream\r\n"
            f"Content-Length: {length}\r\n\r\n"
        )
        self.sock.sendall(head.encode("ascii"))
        self.answer: tuple[int, str] | None = None  # (status, the body's first line) once answered
        self.closed_unanswered = False

    def send(self, chunks: Iterable[memoryview | bytes]) -> None:
        for chunk in chunks:
            self.sock.sendall(chunk)

    def readable(self) -> bool:
        with suppress(OSError, ValueError):
            return bool(select.select([self.sock], [], [], 0)[0])
        return False

    def read_answer(self, timeout: float) -> tuple[int, str] | None:
        """The server's answer, if one comes within ``timeout`` (None if the connection ended without one)."""
        if self.answer is not None or self.closed_unanswered:
            return self.answer
        try:
            self.sock.settimeout(timeout)
            response = http.client.HTTPResponse(self.sock, method="PATCH")
            response.begin()
            self.sock.settimeout(2.0)
            text = b""
            with suppress(OSError, http.client.HTTPException):
                text = response.read(4096)
            self.answer = (response.status, text.decode("utf-8", "replace").strip().split("\n", 1)[0][:200])
        except TimeoutError:
            return None
        except (OSError, http.client.HTTPException):
            self.closed_unanswered = True
        return self.answer

    def shutdown(self) -> None:
        with suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        with suppress(OSError):
            self.sock.close()


def _code(answer: tuple[int, str] | None) -> str:
    """``503 busy`` from a rindle error answer ("busy: This server reads ..."), or the status alone."""
    if answer is None:
        return "none"
    status, line = answer
    code = line.split(":", 1)[0] if ":" in line and " " not in line.split(":", 1)[0] else ""
    return f"{status} {code}".strip()


# -- the scenario ---------------------------------------------------------------------------


def max_size_env() -> str | None:
    """``none`` if the example project's settings take ``RINDLE_TUS_MAX_SIZE=none`` (no limit but S3's); None
    (leave it unset: the older settings had no limit by default and read the value as an integer) otherwise."""
    probe = subprocess.run(
        [sys.executable, "-c", "import example_project.settings"],
        cwd=REPO,
        env={**_env_without_max_size(), "RINDLE_TUS_MAX_SIZE": "none"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    return "none" if probe.returncode == 0 else None


def _env_without_max_size() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "RINDLE_TUS_MAX_SIZE"}


def _options(rindle: RindleServer) -> dict[str, str]:
    connection = http.client.HTTPConnection("127.0.0.1", rindle.port, timeout=30)
    try:
        connection.request("OPTIONS", urlsplit(rindle.url).path, headers=TUS)
        response = connection.getresponse()
        response.read()
        return {k: v for k, v in response.getheaders() if k.lower().startswith("tus-")}
    finally:
        connection.close()


def warm_every_worker(bench: Bench, rindle: RindleServer, rows: Rows, log: Log) -> dict[str, Any]:
    """One small upload (a part and a tail) on each worker: uploads on new connections until every worker has
    served one, each PATCH paused after its first MiB until its lease names the worker."""
    assert rindle.pid is not None
    workers = worker_pids(rindle.pid)
    size = bench.part_size + MiB
    served: dict[int, int] = {}
    sent: list[Sent] = []
    attempts = 0
    while not workers <= set(served) and attempts < 12 * len(workers):
        attempts += 1
        seed = bench.seeds(1)[0]
        creator = TusConnection(rindle.url, timeout=30)
        try:
            url = creator.create(size)
        finally:
            creator.close()
        patch = RawPatch(url, 0, size)
        try:
            patch.send(pieces(seed, 0, MiB))
            holder = ""
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and not holder:
                token, holder, _ = rows.lease(session_id_of(url))
                holder = holder if token else ""
                time.sleep(0.01)
            patch.send(pieces(seed, MiB, size))
            answer = patch.read_answer(60)
        finally:
            patch.close()
        if answer is None or answer[0] != 204:
            raise TusFailure(f"warm-up PATCH answered {answer}")
        sent.append(Sent(rindle.key_for(url), [], stream_sha256(seed, size), seed, size))
        pid = holder_pid(holder)
        if pid is not None:
            served[pid] = served.get(pid, 0) + 1
    bench.verify(sent)
    log(f"hostile: warm-up: {attempts} uploads of {size / MiB:.0f} MiB, per worker {served}")
    return {"uploads": attempts, "size": size, "per_worker": {str(k): v for k, v in served.items()},
            "all_warmed": workers <= set(served)}  # fmt: skip


def huge_lengths(rindle: RindleServer, settings: HostileSettings, bench: Bench, urls: list[str]) -> list[dict]:
    """Phase 1: each distinct huge length with an empty PATCH, then a small one; each request on a new
    connection."""
    results = []
    for n in range(settings.lengths):
        length = settings.huge - n * settings.step
        seed = bench.seeds(1)[0]
        result: dict[str, Any] = {"length": length}
        connection = TusConnection(rindle.url, timeout=120)
        try:
            url = connection.create(length)
        finally:
            connection.close()
        urls.append(url)
        for name, end in (("empty", 0), ("small", settings.body)):
            connection = TusConnection(rindle.url, timeout=120)
            started = time.perf_counter()
            try:
                connection.patch(url, seed, 0, end, hashlib.sha256())
                result[name] = "204"
            except (TusFailure, OSError) as exc:
                result[name] = str(exc)[:200]
            finally:
                connection.close()
            result[name + "_s"] = round(time.perf_counter() - started, 3)
        results.append(result)
    return results


def stalled_bodies(
    rindle: RindleServer,
    settings: HostileSettings,
    bench: Bench,
    rows: Rows,
    sampler: WorkerSampler,
    urls: list[str],
    log: Log,
) -> dict[str, Any]:
    """Phase 2: N stalled PATCHes, held or refused; a window; the release."""
    creator = TusConnection(rindle.url, timeout=30)
    try:
        mine = [creator.create(settings.huge) for _ in range(settings.stalled)]
    finally:
        creator.close()
    urls += mine
    patches: list[RawPatch] = []

    def cut_short() -> None:
        for p in list(patches):
            p.shutdown()

    sampler.on_low_memory = cut_short
    result: dict[str, Any] = {"opened": settings.stalled}
    started = time.monotonic()
    try:
        for url in mine:
            patch = RawPatch(url, 0, settings.huge)
            patches.append(patch)
            patch.send(pieces(bench.seeds(1)[0], 0, settings.body))
        result["open_s"] = round(time.monotonic() - started, 2)
        deadline = time.monotonic() + settings.settle_s
        while time.monotonic() < deadline and not sampler.low_memory.is_set():
            held, answered, pending = _patch_states(patches, rows)
            if not pending:
                break
            time.sleep(0.05)
        result["settle_s"] = round(time.monotonic() - started, 2)
        if not sampler.low_memory.is_set():
            time.sleep(settings.hold_s)
        held, answered, pending = _patch_states(patches, rows)
        result["window_end_s"] = round(time.monotonic() - started, 2)
        holders = [holder_pid(rows.lease(session_id_of(p.url))[1]) for p in held]
        result.update(
            held=len(held),
            refused=sum(1 for p in answered if _code(p.answer) == "503 busy"),
            answered=_count(_code(p.answer) if p.answer else "closed, no answer" for p in answered),
            pending=len(pending),
            held_per_worker={str(pid): holders.count(pid) for pid in sorted({h for h in holders if h is not None})},
        )
        log(
            f"hostile: {settings.stalled} stalled PATCHes: {len(held)} held {result['held_per_worker']}, "
            f"{result['refused']} refused (503 busy), answered {result['answered']}, {len(pending)} pending"
        )

        _release(rindle, held, result)
    finally:
        for p in patches:
            p.close()
        sampler.on_low_memory = None
    lapse = _wait_until(lambda: not rows.leased(), 60, "every lease to be released", fail=False)
    result["leases_left"] = 0 if lapse else len(rows.leased())
    connections_gone = _wait_until(lambda: _open_connections(rindle) == 0, 30, "no client connection", fail=False)
    result["connections_left"] = 0 if connections_gone else _open_connections(rindle)
    result["release_s"] = round(time.monotonic() - started, 2)
    return result


def _patch_states(patches: list[RawPatch], rows: Rows) -> tuple[list[RawPatch], list[RawPatch], list[RawPatch]]:
    """The stalled PATCHes as (held: their upload's lease taken, answered or closed, pending)."""
    held: list[RawPatch] = []
    answered: list[RawPatch] = []
    pending: list[RawPatch] = []
    for p in patches:
        if p.answer is None and not p.closed_unanswered and p.readable():
            p.read_answer(2.0)
        if p.answer is not None or p.closed_unanswered:
            answered.append(p)
        elif rows.lease(session_id_of(p.url))[0]:
            held.append(p)
        else:
            pending.append(p)
    return held, answered, pending


def _release(rindle: RindleServer, held: list[RawPatch], result: dict[str, Any]) -> None:
    """The release: a HEAD on each upload (the server ends the stalled request and answers it); the
    caller closes the sockets."""
    release_started = time.monotonic()

    def head(url: str) -> str:
        connection = TusConnection(rindle.url, timeout=60)
        try:
            connection.head(url)
            return "200"
        except (TusFailure, OSError) as exc:
            return str(exc)[:80]
        finally:
            connection.close()

    with ThreadPoolExecutor(4) as pool:
        statuses = list(pool.map(head, [p.url for p in held]))
    result["head_s"] = round(time.monotonic() - release_started, 2)
    for p in held:
        p.read_answer(5.0)
    result["released_answers"] = _count(_code(p.answer) if p.answer else "closed, no answer" for p in held)
    result["heads"] = _count(statuses)


def _count(values: Iterable[str]) -> dict[str, int]:
    counted: dict[str, int] = {}
    for v in values:
        counted[v] = counted.get(v, 0) + 1
    return counted


def measure(
    bench: Bench, rindle: RindleServer, database: Database, settings: HostileSettings, log: Log, data: dict[str, Any]
) -> None:
    """The whole scenario, into ``data`` (which keeps what was measured if a step fails). rindle is restarted
    with the scenario's environment first, and again with the run's own after."""
    started = time.monotonic()
    data["settings"] = asdict(settings)
    max_size = max_size_env()
    saved = rindle.env.get("RINDLE_TUS_MAX_SIZE")
    # The hostile client meets the example project's own cap on bodies per
    # process, not the one the throughput scenarios lift.
    saved_bodies = rindle.env.pop("RINDLE_TUS_MAX_BODIES", None)
    data["env"] = {"RINDLE_TUS_MAX_SIZE": max_size}
    data["gunicorn"] = rindle.settings.describe()
    rows = Rows(database.url)
    urls: list[str] = []
    try:
        rindle.stop()
        if max_size is None:
            rindle.env.pop("RINDLE_TUS_MAX_SIZE", None)
            log("hostile: the example project's settings take no RINDLE_TUS_MAX_SIZE=none: left unset")
        else:
            rindle.env["RINDLE_TUS_MAX_SIZE"] = max_size
        rindle.start()
        time.sleep(1)
        assert rindle.pid is not None
        master = rindle.pid
        data["options"] = _options(rindle)
        fresh = workers_rss(master)
        data["warmup"] = warm_every_worker(bench, rindle, rows, log)
        before = _settled_rss(master)
        rss: dict[str, dict[str, int | None]] = {
            str(pid): {"fresh": fresh.get(pid), "before": size} for pid, size in before.items()
        }
        data["rss"] = rss
        hwm: dict[str, dict[int, int]] = {}
        data["kernel_peaks"] = reset_peaks(worker_pids(master))

        def end_of(phase: str) -> None:
            """The phase's VmHWM of every worker, and a fresh mark for the next phase."""
            pids = worker_pids(master)
            hwm[phase] = kernel_peaks(pids)
            reset_peaks(pids)

        with WorkerSampler(master, settings.guard_mib * MiB) as sampler:
            try:
                sampler.phase = "1"
                phase1_started = time.monotonic()
                data["phase1"] = huge_lengths(rindle, settings, bench, urls)
                data["phase1_s"] = round(time.monotonic() - phase1_started, 2)
                time.sleep(1)
                end_of("1")
                log(f"hostile: phase 1: {data['phase1']}")
                sampler.phase = "2"
                data["phase2"] = stalled_bodies(rindle, settings, bench, rows, sampler, urls, log)
                end_of("2")
                sampler.phase = "after"
                time.sleep(0.5)
            finally:
                data["low_memory"] = sampler.low_memory.is_set()
                data["lowest_available_mib"] = round((sampler.lowest_available or 0) / MiB)
                data["samples"] = [
                    (round(t, 2), phase, {str(pid): size for pid, size in sizes.items()})
                    for t, phase, sizes in sampler.samples
                ]
                for phase in PHASES:
                    # The kernel's high-water mark where it could be read (it also sees peaks between samples),
                    # never below the largest sample.
                    sampled = sampler.peaks(phase)
                    for pid in set(sampled) | set(hwm.get(phase, {})):
                        worker = rss.setdefault(str(pid), {})
                        worker[f"sampled{phase}"] = sampled.get(pid)
                        worker[f"peak{phase}"] = max(sampled.get(pid) or 0, hwm.get(phase, {}).get(pid) or 0)
                data["peak_sum"] = {phase: sampler.peak_sum(phase) for phase in PHASES}
        after = _settled_rss(master)
        for pid, size in after.items():
            rss.setdefault(str(pid), {})["after"] = size
        largest = {k: max((w.get(k) or 0 for w in rss.values()), default=0) for k in _COLUMNS}
        log(
            "hostile: largest worker RSS (MiB): "
            + ", ".join(f"{name} {largest[k] / MiB:.0f}" for k, name in _COLUMNS.items())
        )
        if data["low_memory"]:
            log(f"hostile: the machine's available memory fell below {settings.guard_mib} MiB: cut short")
    finally:
        try:
            terminator = TusConnection(rindle.url, timeout=60)
            try:
                for url in urls:
                    with suppress(TusFailure, OSError):
                        terminator.delete(url)
                    bench.s3.delete(rindle.key_for(url))
            finally:
                terminator.close()
        finally:
            rows.close()
            rindle.stop()
            if saved is None:
                rindle.env.pop("RINDLE_TUS_MAX_SIZE", None)
            else:
                rindle.env["RINDLE_TUS_MAX_SIZE"] = saved
            if saved_bodies is not None:
                rindle.env["RINDLE_TUS_MAX_BODIES"] = saved_bodies
            rindle.start()
            data["minutes"] = round((time.monotonic() - started) / 60, 1)


_COLUMNS = {
    "fresh": "fresh",
    "before": "before",
    "peak1": "peak during 1",
    "peak2": "peak during 2",
    "after": "after",
}


# -- the report -----------------------------------------------------------------------------


def _mib(value: int | None) -> str:
    return "—" if value is None else f"{value / MiB:,.0f}"


def markdown(hostile: dict[str, Any]) -> list[str]:
    settings = hostile.get("settings", {})
    lines = ["", "## Hostile memory (rindle)", ""]
    if hostile.get("error"):
        lines += [f"> The hostile measurement failed: {hostile['error']}", ""]
    if not hostile.get("rss"):
        return [*lines, "Not measured.", ""]
    env = hostile.get("env", {}).get("RINDLE_TUS_MAX_SIZE")
    max_size = hostile.get("options", {}).get("Tus-Max-Size") or "none sent: no limit but S3's"
    n, step = settings.get("lengths", 4), settings.get("step", 0)
    warm = hostile.get("warmup", {})
    lines += [
        f"`{hostile.get('gunicorn', '?')}`, "
        + (f"`RINDLE_TUS_MAX_SIZE={env}`" if env else "`RINDLE_TUS_MAX_SIZE` unset")
        + f" (Tus-Max-Size answered: {max_size}); workers restarted, then one small upload on each "
        f"({warm.get('uploads', '?')} uploads of {warm.get('size', 0) / MiB:.0f} MiB to reach every worker). "
        f"**1**: {n} uploads of 5 TiB minus n x {step / MiB:,.0f} MiB (n = 0..{n - 1}), each an empty PATCH and "
        f"a {settings.get('body', 0) / MiB:g} MiB PATCH, every request on a new connection. **2**: "
        f"{settings.get('stalled', '?')} PATCHes on new 5 TiB uploads declaring Content-Length 5 TiB, sending "
        f"{settings.get('body', 0) / MiB:g} MiB and going silent, held {settings.get('hold_s', 0):g} s once each "
        "holds its lease or is answered; then a HEAD on each (the server ends the stalled request) and the "
        "sockets closed. RSS of each worker (MiB); the peaks are the kernel's high-water mark (VmHWM, reset at the "
        "start of each phase: short peaks count too) and at least the largest of the samples taken every 100 ms; "
        "*all workers* sums the samples; *after*: 2 s after the release.",
        "",
        "| worker | fresh | before (warmed) | peak during 1 | peak during 2 | after | leases held in 2 |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    rss = hostile["rss"]
    phase2 = hostile.get("phase2", {})
    per_worker = phase2.get("held_per_worker", {})
    for pid, values in sorted(rss.items(), key=lambda kv: int(kv[0])):
        lines.append(
            f"| {pid} | " + " | ".join(_mib(values.get(k)) for k in _COLUMNS) + f" | {per_worker.get(pid, 0)} |"
        )
    largest = {k: max((w.get(k) or 0 for w in rss.values()), default=0) for k in _COLUMNS}
    lines.append("| **largest** | " + " | ".join(f"**{_mib(largest[k])}**" for k in _COLUMNS) + " | |")
    sums = {k: sum(w.get(k) or 0 for w in rss.values()) for k in ("fresh", "before", "after")}
    peak_sum = hostile.get("peak_sum", {})
    lines.append(
        f"| all workers | {_mib(sums['fresh'])} | {_mib(sums['before'])} | {_mib(peak_sum.get('1'))} | "
        f"{_mib(peak_sum.get('2'))} | {_mib(sums['after'])} | {phase2.get('held', '—')} |"
    )
    lines.append("")
    if phase2:
        lines.append(
            f"- Stalled PATCHes: {phase2.get('opened')} opened; **{phase2.get('held')} held, "
            f"{phase2.get('refused')} refused (503 busy)**, {phase2.get('pending')} neither (queued behind busy "
            f"threads); all answers in the window: {phase2.get('answered') or 'none'}. Settled "
            f"{phase2.get('settle_s')} s after the first was opened."
        )
        lines.append(
            f"- Release: HEADs {phase2.get('heads')} in {phase2.get('head_s')} s; the stalled requests answered "
            f"{phase2.get('released_answers')}; left: {phase2.get('leases_left')} leases, "
            f"{phase2.get('connections_left')} client connections."
        )
    phase1 = hostile.get("phase1", [])
    if phase1:
        answers = "; ".join(f"{r['length'] / MiB:,.0f} MiB: empty {r.get('empty')} ({r.get('empty_s')} s), "
                            f"small {r.get('small')} ({r.get('small_s')} s)" for r in phase1)  # fmt: skip
        lines.append(f"- Phase 1 answers: {answers}.")
    if hostile.get("kernel_peaks") is False:
        lines.append("- The kernel's high-water marks could not be reset: the peaks are the samples' only.")
    if hostile.get("low_memory"):
        lines.append(
            f"- **Cut short**: the machine's available memory fell below {settings.get('guard_mib')} MiB "
            f"(lowest {hostile.get('lowest_available_mib')} MiB)."
        )
    else:
        lines.append(
            f"- Lowest available memory of the machine during 1 and 2: {hostile.get('lowest_available_mib')} MiB."
        )
    lines.append("")
    return lines


def main(argv: list[str] | None = None) -> int:
    from . import run

    return run.main(["--scenarios", "hostile", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
