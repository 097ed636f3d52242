"""The scenarios, each run the same way against every server.

A measurement times only the scenario's requests; the servers' memory is
sampled over that same span; every uploaded object is then read back from S3
and its SHA-256 compared with the hash the client computed while sending
(before the next measurement, and outside the timed span), and deleted.
"""

from __future__ import annotations

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

from .data import GeneratedReader, stream_sha256
from .rss import RssPeak, RssSampler
from .servers import PEER_DIR, S3
from .tusclient import TusConnection, Uploaded, upload

MiB = 1024 * 1024
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
)


def size_label(size: int) -> str:
    return f"{size // GiB} GiB" if size % GiB == 0 else f"{size // MiB} MiB"


def titles(sizes: Sizes) -> dict[str, str]:
    return {
        "1": f"1. one {size_label(sizes.single)} upload, single PATCH",
        "2": f"2. one {size_label(sizes.single)} upload, {sizes.patch:,}-byte PATCHes",
        "3": f"3. {sizes.concurrent_count} concurrent uploads of {size_label(sizes.concurrent_size)}",
        "4": f"4. {sizes.heads:,} HEADs on {sizes.head_sessions} live sessions",
    }


@dataclass
class Measurement:
    scenario: str
    client: str  # "python" (client 1), "python-draft" (client 1 speaking the IETF draft), "tus-js-client" or "boto3"
    server: str  # "limit", "rindle" or "peer"
    run: int
    seconds: float
    amount: float  # bytes, or requests for scenario 4
    unit: str  # "MiB/s" or "req/s"
    rss_total: int | None = None
    rss_single: int | None = None
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
        measurement.latencies_ms = latencies
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
        measurement.latencies_ms = latencies
        return measurement


class _NullHash:
    def update(self, data: Any) -> None:
        pass


def _run_requests(
    total: int, concurrency: int, connect: Callable[[], Any], request: Callable[[int, Any], None]
) -> tuple[float, dict[str, float]]:
    """``total`` requests over ``concurrency`` threads, each with one connection."""
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
    return seconds, {
        "p50": statistics.median(latencies),
        "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
    }


def _with_rss(measurement: Measurement, peak: RssPeak | None) -> Measurement:
    if peak is not None:
        measurement.rss_total = peak.total
        measurement.rss_single = peak.single
    return measurement
