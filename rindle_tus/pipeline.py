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
from dataclasses import dataclass
from typing import Any

from .storage.buffers import Part, memory_part_limit, new_part


@dataclass(frozen=True)
class Flight:
    """A part on its way to S3: ``part`` is its buffer, None for a part
    uploaded from elsewhere (a file, or a buffer another request owns)."""

    number: int
    size: int
    future: Future[str]
    part: Part | None = None
    # How to send the part again when ``future`` (an earlier request's) fails.
    again: Callable[[], str] | None = None


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
        self._in_flight: deque[Flight] = deque()
        self._free: list[Part] = []
        self._taken: list[Part] = []
        self._handed_off = False

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

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self._concurrency, thread_name_prefix="rindle-tus-part")
        return self._executor

    def submit(self, number: int, part: Part) -> Iterator[dict[str, Any]]:
        """Start uploading ``part`` as part ``number``; yield the parts that
        must finish first to keep within the concurrency bound, in order."""
        future = self._pool().submit(self._upload, number, part)
        self._in_flight.append(Flight(number, part.capacity, future, part))
        while len(self._in_flight) > self._concurrency or (self._in_flight and self._in_flight[0].future.done()):
            yield self._pop()

    def adopt(self, number: int, future: Future[str] | None, start: Callable[[], str]) -> None:
        """Put part ``number``, already on its way (``future``, which an
        earlier request left running), or else sent by ``start``, in line
        before the parts this request cuts: results stay in part order."""
        if future is None or (future.done() and future.exception() is not None):
            self._in_flight.append(Flight(number, self._part_size, self._pool().submit(start)))
        else:
            self._in_flight.append(Flight(number, self._part_size, future, again=start))

    def finished(self) -> Iterator[dict[str, Any]]:
        """The parts that finished uploading, in order, without waiting."""
        while self._in_flight and self._in_flight[0].future.done():
            yield self._pop()

    def drain(self, keep: int = 0) -> Iterator[dict[str, Any]]:
        """Parts still in flight, in order, as each finishes, until ``keep`` are left."""
        while len(self._in_flight) > keep:
            yield self._pop()

    @property
    def in_flight(self) -> list[Flight]:
        return list(self._in_flight)

    def hand_off(self, *, adopted_only: bool = False) -> list[Flight]:
        """The parts still in flight (``adopted_only``: those ``adopt`` put in
        line), left to run past this request (write-behind): each buffer is
        freed once its upload ends, not by ``close``."""
        flights = [f for f in self._in_flight if f.part is None or not adopted_only]
        self._in_flight = deque(f for f in self._in_flight if f not in flights)
        for flight in flights:
            part = flight.part
            if part is not None:
                self._taken.remove(part)
                flight.future.add_done_callback(lambda _, part=part: part.close())  # type: ignore[misc]
        self._handed_off = bool(flights) or self._handed_off
        return flights

    def _pop(self) -> dict[str, Any]:
        flight = self._in_flight.popleft()
        try:
            etag = self._wait(flight.future)
        except Exception:
            if flight.again is None:
                raise
            # An earlier request's upload failed after it answered: this
            # request sends the part once more rather than fail for it.
            etag = self._wait(self._pool().submit(flight.again))
        if flight.part is not None:
            self._free.append(flight.part)
        return {"number": flight.number, "etag": etag, "size": flight.size}

    def close(self) -> None:
        """Stop: queued uploads are cancelled, running ones are waited for, so
        no buffer is still being read once the request is answered (those
        handed off run on, each holding only its own buffer)."""
        for flight in self._in_flight:
            flight.future.cancel()
        waiting = [flight.future for flight in self._in_flight]
        self._in_flight.clear()
        if self._executor is not None:
            if self._handed_off:
                for future in waiting:
                    if not future.cancelled():
                        future.exception()  # waits for it to end
                self._executor.shutdown(wait=False)
            else:
                self._executor.shutdown(wait=True)
            self._executor = None
        for part in self._taken:
            part.close()
        self._taken = []
        self._free = []
