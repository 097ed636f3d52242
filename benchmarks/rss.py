"""Resident memory of a server: its main process and every descendant
(gunicorn's master and workers, node's one process), sampled every ~100 ms
from a background thread; and the CPU time the tree spent meanwhile, which
a busy 2-core machine disturbs far less than it disturbs wall-clock speed."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import psutil

MiB = 1024 * 1024


@dataclass
class RssPeak:
    total: int = 0  # the largest sum over the process tree in one sample
    single: int = 0  # the largest single process (e.g. one gunicorn worker)
    first_single: int = 0  # the largest single process in the first sample: the baseline
    samples: list[tuple[float, int, int]] = field(default_factory=list)  # (seconds, total, single)
    cpu: float = 0.0  # CPU seconds (user and system) the tree spent between the first and last sample


def tree_cpu(pid: int) -> dict[int, float]:
    """CPU seconds (user + system) so far of ``pid`` and each descendant, by process id."""
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return {}
    spent = {}
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        spent[process.pid] = times.user + times.system
    return spent


def tree_rss(pid: int) -> tuple[int, int]:
    """(sum, largest) RSS in bytes of ``pid`` and all of its descendants."""
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0, 0
    sizes = []
    for process in processes:
        try:
            sizes.append(process.memory_info().rss)
        except psutil.NoSuchProcess:
            continue
    return sum(sizes), max(sizes, default=0)


class RssSampler:
    """``with RssSampler(pid) as sampler: ...`` then ``sampler.peak``."""

    def __init__(self, pid: int | None, interval: float = 0.1) -> None:
        self.pid = pid
        self.interval = interval
        self.peak = RssPeak()
        self._stop = threading.Event()
        self._cpu_start: dict[int, float] = {}
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _sample(self, started: float) -> None:
        assert self.pid is not None
        total, single = tree_rss(self.pid)
        peak = self.peak
        if not peak.samples:
            peak.first_single = single
        peak.samples.append((time.monotonic() - started, total, single))
        peak.total = max(peak.total, total)
        peak.single = max(peak.single, single)

    def _run(self) -> None:
        started = time.monotonic()
        while True:
            self._sample(started)
            if self._stop.wait(self.interval):
                break
        self._sample(started)

    def __enter__(self) -> RssSampler:
        if self.pid is not None:
            self._cpu_start = tree_cpu(self.pid)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pid is not None:
            self._stop.set()
            self._thread.join()
            # A process that started meanwhile counts from zero.
            ended = tree_cpu(self.pid)
            self.peak.cpu = sum(spent - self._cpu_start.get(pid, 0.0) for pid, spent in ended.items())
