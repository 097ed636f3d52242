"""Overlaps receiving and sending: full parts are uploaded on worker threads
while the request thread reads the next one.

At most ``concurrency`` parts are in flight and one more is being filled, so
a request holds at most ``concurrency + 1`` part buffers whatever the upload
size (``buffers`` bounds each). Results come back strictly in part order, so
commits stay in order. Worker threads only talk to S3 (boto3 clients are
thread-safe); every database write stays on the request thread.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from .buffers import Part, memory_part_limit, new_part


class PartPipeline:
    """``wait`` is how the request thread waits for a part's upload (the
    receiver passes ``Lease.wait_for``, which keeps the lease beating
    meanwhile, so a slow S3 never lets the lease go under a live request)."""

    def __init__(
        self,
        upload: Callable[[int, Part], str],
        part_size: int,
        concurrency: int,
        wait: Callable[[Future[str]], str] = Future.result,
    ) -> None:
        self._upload = upload
        self._part_size = part_size
        self._concurrency = concurrency
        self._wait = wait
        self._executor: ThreadPoolExecutor | None = None
        self._in_flight: deque[tuple[int, Part, Future[str]]] = deque()
        self._free: list[Part] = []
        self._taken: list[Part] = []

    def buffer(self, needed: int | None = None) -> Part:
        """A buffer for the next part. ``needed``: the most bytes the request
        can bring into it, when that is less than a part; it only matters
        for parts too large for memory (a pooled part buffer is cheaper than
        an odd-sized one, which would churn the allocator)."""
        if needed is not None and needed < self._part_size and self._part_size > memory_part_limit():
            part = new_part(needed, pooled=False)
        elif self._free:
            return self._free.pop()
        else:
            part = new_part(self._part_size)
        self._taken.append(part)
        return part

    def submit(self, number: int, part: Part) -> Iterator[dict[str, Any]]:
        """Start uploading ``part`` as part ``number``; yield the parts that
        must finish first to keep within the concurrency bound, in order."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self._concurrency, thread_name_prefix="rindle-tus-part")
        self._in_flight.append((number, part, self._executor.submit(self._upload, number, part)))
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
        number, part, future = self._in_flight.popleft()
        etag = self._wait(future)
        self._free.append(part)
        return {"number": number, "etag": etag, "size": part.capacity}

    def close(self) -> None:
        """Stop: queued uploads are cancelled, running ones are waited for, so
        no buffer is still being read once the request is answered."""
        for _, _, future in self._in_flight:
            future.cancel()
        self._in_flight.clear()
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        for part in self._taken:
            part.close()
        self._taken = []
        self._free = []
