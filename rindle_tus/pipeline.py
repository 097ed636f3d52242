"""Overlaps receiving and sending: full parts are uploaded on worker threads
while the request thread reads the next one.

At most ``concurrency`` parts are in flight and one more is being filled, so
a request holds at most ``concurrency + 1`` part buffers whatever the upload
size. Results come back strictly in part order, so commits stay in order.
Worker threads only talk to S3 (boto3 clients are thread-safe); every
database write stays on the request thread.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any


class BufferPool:
    """Part buffers kept between requests of a process.

    Allocating and freeing a part-sized buffer per request churns memory:
    glibc raises its mmap threshold after the first large free, after which
    such buffers come from per-thread arenas and are rarely given back. A few
    idle buffers, reused, keep a worker's memory flat.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: dict[int, list[bytearray]] = {}

    def take(self, size: int) -> bytearray:
        with self._lock:
            idle = self._idle.get(size)
            if idle:
                return idle.pop()
        return bytearray(size)

    def give(self, buffers: list[bytearray], keep: int) -> None:
        with self._lock:
            for buffer in buffers:
                idle = self._idle.setdefault(len(buffer), [])
                if len(idle) < keep:
                    idle.append(buffer)


buffers = BufferPool()


class PartPipeline:
    """``wait`` is how the request thread waits for a part's upload (the
    receiver passes ``Lease.wait_for``, which renews the lease meanwhile, so a
    slow S3 does not let the lease lapse under a live request)."""

    def __init__(
        self,
        upload: Callable[[int, bytearray], str],
        part_size: int,
        concurrency: int,
        wait: Callable[[Future[str]], str] = Future.result,
    ) -> None:
        self._upload = upload
        self._part_size = part_size
        self._concurrency = concurrency
        self._wait = wait
        self._executor: ThreadPoolExecutor | None = None
        self._in_flight: deque[tuple[int, bytearray, Future[str]]] = deque()
        self._free: list[bytearray] = []
        self._taken: list[bytearray] = []

    def buffer(self) -> bytearray:
        if self._free:
            return self._free.pop()
        buffer = buffers.take(self._part_size)
        self._taken.append(buffer)
        return buffer

    def submit(self, number: int, buffer: bytearray) -> Iterator[dict[str, Any]]:
        """Start uploading ``buffer`` as part ``number``; yield the parts that
        must finish first to keep within the concurrency bound, in order."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self._concurrency, thread_name_prefix="rindle-tus-part")
        self._in_flight.append((number, buffer, self._executor.submit(self._upload, number, buffer)))
        while len(self._in_flight) > self._concurrency or (self._in_flight and self._in_flight[0][2].done()):
            yield self._pop()

    def finished(self) -> Iterator[dict[str, Any]]:
        """The parts that finished uploading, in order, without waiting."""
        while self._in_flight and self._in_flight[0][2].done():
            yield self._pop()

    def drain(self) -> Iterator[dict[str, Any]]:
        """Every part still in flight, in order, as each finishes."""
        while self._in_flight:
            yield self._pop()

    def _pop(self) -> dict[str, Any]:
        number, buffer, future = self._in_flight.popleft()
        etag = self._wait(future)
        self._free.append(buffer)
        return {"number": number, "etag": etag, "size": len(buffer)}

    def close(self) -> None:
        """Stop: queued uploads are cancelled, running ones are waited for, so
        no buffer is still being read once the request is answered."""
        for _, _, future in self._in_flight:
            future.cancel()
        self._in_flight.clear()
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        # As many idle buffers as one request at full speed uses.
        buffers.give(self._taken, keep=self._concurrency + 1)
        self._taken = []
        self._free = []
