"""The scenarios, each run the same way against every server.

A measurement times only the scenario's requests; the servers' memory is
sampled over that same span; every uploaded object is then read back from S3
and its SHA-256 compared with the hash the client computed while sending
(before the next measurement, and outside the timed span), and deleted.
"""

from __future__ import annotations

import hashlib
import json
import statistics
import subprocess
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from boto3.s3.transfer import TransferConfig

from .data import GeneratedReader, pieces, stream_sha256
from .rss import RssPeak, RssSampler
from .servers import PEER_DIR, S3
from .tusclient import TusConnection, Uploaded, upload

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB


class Server(Protocol):
    name: str

    @property
    def url(self) -> str: ...
    @property
    def pid(self) -> int | None: ...
    def key_for(self, upload_url: str) -> str: ...
    def extra_keys(self, upload_url: str) -> list[str]: ...


@dataclass(frozen=True)
class Sizes:
    single: int  # scenarios 1 and 2
    patch: int  # scenario 2's PATCH size
    concurrent_count: int  # scenario 3
    concurrent_size: int
    heads: int  # scenario 4
    head_sessions: int
    head_concurrency: int
    big: int  # --big
    # The everyday traffic (defaults, so that the sizes of an older result's JSON still load):
    chunked: int = 256 * MiB  # scenario 5: one upload ...
    chunked_patch: int = 512 * KiB  # ... in PATCHes of this size
    small_count: int = 800  # scenario 6: files in all ...
    small_size: int = 256 * KiB  # ... of this size, each a POST with its body and a HEAD ...
    small_clients: int = 16  # ... by this many clients, each on one keep-alive connection


FULL = Sizes(
    single=1 * GiB,
    patch=3_000_000,
    concurrent_count=32,
    concurrent_size=64 * MiB,
    heads=1000,
    head_sessions=32,
    head_concurrency=4,
    big=4 * GiB,
)
QUICK = Sizes(
    single=24 * MiB,
    patch=3_000_000,
    concurrent_count=4,
    concurrent_size=12 * MiB,
    heads=100,
    head_sessions=4,
    head_concurrency=2,
    big=64 * MiB,
    chunked=24 * MiB,
    small_count=160,
)


def size_label(size: int) -> str:
    if size % GiB == 0:
        return f"{size // GiB} GiB"
    return f"{size // MiB} MiB" if size % MiB == 0 else f"{size // KiB} KiB" if size % KiB == 0 else f"{size:,} B"


def titles(sizes: Sizes) -> dict[str, str]:
    return {
        "1": f"1. one {size_label(sizes.single)} upload, single PATCH",
        "2": f"2. one {size_label(sizes.single)} upload, {sizes.patch:,}-byte PATCHes",
        "3": f"3. {sizes.concurrent_count} concurrent uploads of {size_label(sizes.concurrent_size)}",
        "4": f"4. {sizes.heads:,} HEADs on {sizes.head_sessions} live sessions",
        "5": f"5. one {size_label(sizes.chunked)} upload, {sizes.chunked_patch:,}-byte PATCHes",
        "6": f"6. {sizes.small_count:,} files of {size_label(sizes.small_size)} (POST with the body + HEAD), "
        f"{sizes.small_clients} clients",
    }


@dataclass
class Measurement:
    scenario: str
    client: str  # "python" (client 1), "python-draft" (client 1 speaking the IETF draft), "tus-js-client" or "boto3"
    server: str  # "limit", "rindle" or "peer"
    run: int
    seconds: float
    amount: float  # bytes, requests for scenario 4, files for scenario 6
    unit: str  # "MiB/s", "req/s" or "uploads/s"
    rss_total: int | None = None
    rss_single: int | None = None
    cpu_seconds: float | None = None  # the server's CPU time (its process tree) during the measurement
    latencies_ms: dict[str, float] = field(default_factory=dict)

    @property
    def value(self) -> float:
        scale = MiB if self.unit == "MiB/s" else 1
        return self.amount / scale / self.seconds

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "value": self.value}


@dataclass
class Sent:
    key: str
    extra: list[str]
    sha256: str
    seed: int
    size: int


class Bench:
    def __init__(self, s3: S3, sizes: Sizes, part_size: int, *, cross_check: bool = False) -> None:
        self.s3 = s3
        self.sizes = sizes
        self.part_size = part_size
        self.cross_check = cross_check
        self._seed = 1000
        self._lock = threading.Lock()
        self.verified = 0
        self.verify_seconds = 0.0

    def seeds(self, count: int) -> list[int]:
        with self._lock:
            first = self._seed
            self._seed += count
        return list(range(first, first + count))

    # -- checking what arrived -------------------------------------------

    def verify(self, sent: list[Sent]) -> None:
        started = time.perf_counter()
        for item in sent:
            if self.cross_check:
                expected = stream_sha256(item.seed, item.size)
                if item.sha256 != expected:
                    raise AssertionError(f"the client sent other bytes than seed {item.seed} defines")
            stored = self.s3.sha256(item.key)
            if stored != item.sha256:
                raise AssertionError(f"{item.key}: stored SHA-256 {stored} != sent {item.sha256}")
            self.verified += 1
        for item in sent:
            self.s3.delete(item.key, *item.extra)
        self.verify_seconds += time.perf_counter() - started

    def _sent(self, server: Server, uploads: list[Uploaded]) -> list[Sent]:
        return [Sent(server.key_for(u.url), server.extra_keys(u.url), u.sha256, u.seed, u.size) for u in uploads]

    # -- the three kinds of uploader --------------------------------------

    def python_uploads(
        self, server: Server, count: int, size: int, patch: int | None, *, draft: bool = False
    ) -> tuple[float, list[Sent]]:
        seeds = self.seeds(count)
        started = time.perf_counter()
        if count == 1:
            done = [upload(server.url, seeds[0], size, patch, draft=draft)]
        else:
            with ThreadPoolExecutor(max_workers=count) as pool:
                done = list(pool.map(lambda seed: upload(server.url, seed, size, patch, draft=draft), seeds))
        return time.perf_counter() - started, self._sent(server, done)

    def js_uploads(self, server: Server, count: int, size: int, patch: int | None) -> tuple[float, list[Sent]]:
        seed = self.seeds(count)[0]
        command = ["node", "client.mjs", server.url, f"--size={size}", f"--seed={seed}", f"--count={count}"]
        if patch:
            command.append(f"--chunk-size={patch}")
        finished = subprocess.run(command, cwd=PEER_DIR, capture_output=True, text=True, timeout=1800)
        if finished.returncode != 0:
            raise RuntimeError(f"tus-js-client failed: {finished.stderr.strip()[-2000:]}")
        report = json.loads(finished.stdout.strip().splitlines()[-1])
        done = [Uploaded(u["url"], int(u["seed"]), size, u["sha256"]) for u in report["uploads"]]
        return float(report["seconds"]), self._sent(server, done)

    def limit_uploads(self, count: int, size: int) -> tuple[float, list[Sent]]:
        """boto3's managed transfer, at the part size and its default concurrency."""
        config = TransferConfig(multipart_threshold=self.part_size, multipart_chunksize=self.part_size)
        client = self.s3.transfer_client(count * config.max_concurrency)
        seeds = self.seeds(count)

        def one(seed: int) -> Sent:
            reader = GeneratedReader(seed, size)
            key = f"limit/{seed}"
            client.upload_fileobj(reader, self.s3.bucket, key, Config=config)
            if reader.position != size:
                raise AssertionError(f"boto3 read {reader.position} of {size} bytes")
            return Sent(key, [], reader.hexdigest(), seed, size)

        started = time.perf_counter()
        if count == 1:
            sent = [one(seeds[0])]
        else:
            with ThreadPoolExecutor(max_workers=count) as pool:
                sent = list(pool.map(one, seeds))
        return time.perf_counter() - started, sent

    # -- scenarios ----------------------------------------------------------

    def _measure(
        self,
        scenario: str,
        client: str,
        server: Server | None,
        run: int,
        body: Callable[[], tuple[float, list[Sent]]],
        amount: int,
    ) -> Measurement:
        with RssSampler(server.pid if server else None) as sampler:
            seconds, sent = body()
        self.verify(sent)
        return _with_rss(
            Measurement(scenario, client, server.name if server else "limit", run, seconds, amount, "MiB/s"),
            sampler.peak if server else None,
        )

    def upload_scenario(self, scenario: str, client: str, server: Server | None, run: int) -> Measurement:
        sizes = self.sizes
        count, size, patch = {
            "1": (1, sizes.single, None),
            "2": (1, sizes.single, sizes.patch),
            "3": (sizes.concurrent_count, sizes.concurrent_size, None),
            "5": (1, sizes.chunked, sizes.chunked_patch),
        }[scenario]

        def body() -> tuple[float, list[Sent]]:
            if server is None:
                return self.limit_uploads(count, size)
            if client == "tus-js-client":
                return self.js_uploads(server, count, size, patch)
            return self.python_uploads(server, count, size, patch, draft=client == "python-draft")

        return self._measure(scenario, client, server, run, body, count * size)

    def head_scenario(self, server: Server | None, run: int) -> Measurement:
        sizes = self.sizes
        if server is None:
            return self._limit_heads(run)
        # Live sessions: created, with 1 MiB received, so each has a tail (or an incomplete part).
        setup = TusConnection(server.url)
        urls = []
        for seed in self.seeds(sizes.head_sessions):
            url = setup.create(16 * MiB)
            setup.patch(url, seed, 0, MiB, _NullHash())
            urls.append(url)
        try:

            def head(url: str, connection: TusConnection) -> None:
                if connection.head(url) != MiB:
                    raise AssertionError(f"HEAD {url} answered another offset than {MiB}")

            with RssSampler(server.pid) as sampler:
                seconds, latencies = _run_requests(
                    sizes.heads,
                    sizes.head_concurrency,
                    lambda: TusConnection(server.url),
                    lambda i, conn: head(urls[i % len(urls)], conn),
                )
        finally:
            for url in urls:
                setup.delete(url)
                self.s3.delete(server.key_for(url), *server.extra_keys(url))
            setup.close()
        measurement = Measurement("4", "python", server.name, run, seconds, sizes.heads, "req/s")
        measurement.latencies_ms = _percentiles(latencies, HEAD_PERCENTILES)
        return _with_rss(measurement, sampler.peak)

    def _limit_heads(self, run: int) -> Measurement:
        """S3 HeadObject through boto3: one round trip to the store per request."""
        sizes = self.sizes
        keys = [f"limit-head/{seed}" for seed in self.seeds(sizes.head_sessions)]
        for key in keys:
            self.s3.client.put_object(Bucket=self.s3.bucket, Key=key, Body=b"x" * 1024)
        try:
            seconds, latencies = _run_requests(
                sizes.heads,
                sizes.head_concurrency,
                lambda: None,
                lambda i, _: self.s3.client.head_object(Bucket=self.s3.bucket, Key=keys[i % len(keys)]),
            )
        finally:
            self.s3.delete(*keys)
        measurement = Measurement("4", "boto3", "limit", run, seconds, sizes.heads, "req/s")
        measurement.latencies_ms = _percentiles(latencies, HEAD_PERCENTILES)
        return measurement

    def small_files(self, server: Server, count: int) -> tuple[float, list[float], list[Sent]]:
        """``count`` whole files, each one POST carrying its body (tus
        creation-with-upload) and then a HEAD that must answer the whole length,
        over the scenario's clients, each on one keep-alive connection.
        Returns the seconds, each file's latency (ms) and what was sent."""
        size = self.sizes.small_size
        seeds = self.seeds(count)
        done: list[Uploaded | None] = [None] * count

        def one(i: int, connection: TusConnection) -> None:
            digest = hashlib.sha256()
            url = connection.create_with_body(seeds[i], size, digest)
            offset = connection.head(url)
            if offset != size:
                raise AssertionError(f"HEAD {url} after a POST of the whole file answered offset {offset}, not {size}")
            done[i] = Uploaded(url, seeds[i], size, digest.hexdigest())

        seconds, latencies = _run_requests(
            count, min(self.sizes.small_clients, count), lambda: TusConnection(server.url), one
        )
        return seconds, latencies, self._sent(server, [u for u in done if u is not None])

    def small_files_scenario(self, server: Server | None, run: int) -> Measurement:
        """Scenario 6; its limit PUTs the same objects with PutObject."""
        if server is None:
            return self._limit_small_files(run)
        count = self.sizes.small_count
        with RssSampler(server.pid) as sampler:
            seconds, latencies, sent = self.small_files(server, count)
        self.verify(sent)
        measurement = Measurement("6", "python", server.name, run, seconds, count, "uploads/s")
        measurement.latencies_ms = _percentiles(latencies, FILE_PERCENTILES)
        return _with_rss(measurement, sampler.peak)

    def _limit_small_files(self, run: int) -> Measurement:
        """S3 PutObject of each whole file by as many boto3 threads as scenario 6 has
        clients, sharing one client whose pool holds a connection for each."""
        sizes = self.sizes
        client = self.s3.transfer_client(2 * sizes.small_clients)
        seeds = self.seeds(sizes.small_count)
        sent: list[Sent | None] = [None] * len(seeds)

        def put(i: int, _connection: None) -> None:
            body = b"".join(pieces(seeds[i], 0, sizes.small_size))
            key = f"limit-small/{seeds[i]}"
            client.put_object(Bucket=self.s3.bucket, Key=key, Body=body)
            sent[i] = Sent(key, [], hashlib.sha256(body).hexdigest(), seeds[i], sizes.small_size)

        seconds, latencies = _run_requests(len(seeds), min(sizes.small_clients, len(seeds)), lambda: None, put)
        self.verify([item for item in sent if item is not None])
        measurement = Measurement("6", "boto3", "limit", run, seconds, len(seeds), "uploads/s")
        measurement.latencies_ms = _percentiles(latencies, FILE_PERCENTILES)
        return measurement


class _NullHash:
    def update(self, data: Any) -> None:
        pass


HEAD_PERCENTILES = (50, 99)
FILE_PERCENTILES = (50, 95)


def _percentiles(latencies: list[float], which: tuple[int, ...]) -> dict[str, float]:
    """``{"p50": ..., ...}`` of sorted latencies (p50 the median)."""
    found = {}
    for p in which:
        at = min(len(latencies) - 1, int(len(latencies) * p / 100))
        found[f"p{p}"] = statistics.median(latencies) if p == 50 else latencies[at]
    return found


def _run_requests(
    total: int, concurrency: int, connect: Callable[[], Any], request: Callable[[int, Any], None]
) -> tuple[float, list[float]]:
    """``total`` requests over ``concurrency`` threads, each with one connection;
    the seconds of all, and each request's milliseconds, sorted."""
    latencies: list[float] = []
    lock = threading.Lock()
    counter = iter(range(total))

    def worker() -> None:
        conn = connect()
        mine = []
        try:
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    break
                started = time.perf_counter()
                request(i, conn)
                mine.append((time.perf_counter() - started) * 1000)
        finally:
            if conn is not None:
                conn.close()
        with lock:
            latencies.extend(mine)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for future in [pool.submit(worker) for _ in range(concurrency)]:
            future.result()
    seconds = time.perf_counter() - started
    latencies.sort()
    return seconds, latencies


def _with_rss(measurement: Measurement, peak: RssPeak | None) -> Measurement:
    if peak is not None:
        measurement.rss_total = peak.total
        measurement.rss_single = peak.single
        measurement.cpu_seconds = peak.cpu
    return measurement
