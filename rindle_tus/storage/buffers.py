"""Where a part's bytes wait before they go to S3: in memory, or in a file.

What a request holds is bounded by the server's settings, never by the
length a client declares. A part of up to ``memory_part_limit()`` bytes
(``RINDLE_TUS_MAX_MEMORY_PART``, never below ``RINDLE_TUS_PART_SIZE``) waits
in memory. A larger one, which only an upload so long that its parts had to
grow to fit S3's 10,000 gets, waits in an unnamed temporary file in the
tails' folder (tusd keeps every part on disk so): it costs disk writes, not
memory, and leaves nothing behind if the process dies. A request that
cannot fill a part takes a buffer only as large as its tail and its body
when its parts are too large for memory.

So a request holds at most ``RINDLE_TUS_UPLOAD_CONCURRENCY + 1`` buffers of
at most ``memory_part_limit()`` bytes each, and the pool keeps at most that
much again idle per process, whatever sizes come and go.
"""

from __future__ import annotations

import io
import os
import tempfile
import threading
from collections import deque
from collections.abc import Iterator
from typing import Any

from ..conf import MiB, tus_settings
from .folder import on_disk, tail_dir

# The size of the copies between a file and a part, or a part and a file.
COPY = MiB


def memory_part_limit() -> int:
    """The largest part kept in memory."""
    return max(tus_settings.MAX_MEMORY_PART, tus_settings.PART_SIZE)


class Part:
    """``capacity`` bytes, written at positions, read back as a body for S3
    or in chunks. Only bytes written are ever read back."""

    capacity: int

    def write(self, at: int, data: bytes | bytearray | memoryview) -> None:
        raise NotImplementedError

    def body(self, length: int) -> Any:
        """The first ``length`` bytes as boto3 takes a Body: bytes, or a file."""
        raise NotImplementedError

    def chunks(self, start: int, end: int) -> Iterator[memoryview]:
        raise NotImplementedError

    def close(self) -> None:
        """Done with it (a memory part goes back to the pool)."""


class MemoryPart(Part):
    def __init__(self, data: bytearray, pooled: bool = True) -> None:
        self.data = data
        self.capacity = len(data)
        self.view = memoryview(data)
        self.pooled = pooled

    def write(self, at: int, data: bytes | bytearray | memoryview) -> None:
        self.view[at : at + len(data)] = data

    def body(self, length: int) -> bytes | bytearray:
        # boto3 takes neither a memoryview nor a slice of a bytearray without a copy.
        return self.data if length == self.capacity else bytes(self.view[:length])

    def chunks(self, start: int, end: int) -> Iterator[memoryview]:
        if end > start:
            yield self.view[start:end]

    def close(self) -> None:
        if self.pooled:
            pool.give(self.data)


class FilePart(Part):
    """A part in an unnamed temporary file (``O_TMPFILE`` where the system
    has it): written and read at explicit positions, so the request thread
    and an upload thread never share a file position."""

    def __init__(self, capacity: int) -> None:
        # The spool shares the tails' folder.
        directory = tail_dir()
        with on_disk():
            directory.mkdir(parents=True, exist_ok=True)
            self.file = tempfile.TemporaryFile(dir=directory)
        self.capacity = capacity
        self.fd = self.file.fileno()

    def write(self, at: int, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data)
        with on_disk():  # a full disk is a 507, not a traceback
            while view:
                written = os.pwrite(self.fd, view, at)
                view, at = view[written:], at + written

    def body(self, length: int) -> io.BufferedReader:
        return io.BufferedReader(_Slice(self.fd, length), buffer_size=COPY)

    def chunks(self, start: int, end: int) -> Iterator[memoryview]:
        scratch = bytearray(min(COPY, max(end - start, 0)))
        view = memoryview(scratch)
        while start < end:
            got = os.preadv(self.fd, [view[: min(len(view), end - start)]], start)
            if not got:
                raise OSError(f"the spooled part ended at {start} of {end} bytes")
            yield view[:got]
            start += got

    def close(self) -> None:
        self.file.close()


class _Slice(io.RawIOBase):
    """The first ``length`` bytes of a file, read by position: what boto3
    reads (and rewinds, to sign and to retry) as a part's body."""

    def __init__(self, fd: int, length: int) -> None:
        self.fd = fd
        self.length = length
        self.position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        want = min(len(view), self.length - self.position)
        if want <= 0:
            return 0
        got = os.preadv(self.fd, [view[:want]], self.position)
        self.position += got
        return got

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.length}[whence]
        self.position = max(0, base + offset)
        return self.position

    def tell(self) -> int:
        return self.position

    def __len__(self) -> int:
        return self.length


def new_part(capacity: int, pooled: bool = True) -> Part:
    """A part buffer of ``capacity`` bytes; a memory one returns to the pool
    when closed if ``pooled`` (odd sizes are not worth keeping)."""
    if capacity > memory_part_limit():
        return FilePart(capacity)
    return MemoryPart(pool.take(capacity) if pooled else bytearray(capacity), pooled)


class BufferPool:
    """Memory part buffers kept between requests of a process.

    Allocating and freeing a part-sized buffer per request churns memory:
    glibc raises its mmap threshold after the first large free, after which
    such buffers come from per-thread arenas and are rarely given back. A few
    idle buffers, reused, keep a worker's memory flat. Whatever their sizes,
    the idle ones never add up to more than ``limit()`` bytes: the oldest go.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: deque[bytearray] = deque()
        self._bytes = 0

    @staticmethod
    def limit() -> int:
        return (tus_settings.UPLOAD_CONCURRENCY + 1) * memory_part_limit()

    def take(self, size: int) -> bytearray:
        with self._lock:
            for buffer in self._idle:
                if len(buffer) == size:
                    self._idle.remove(buffer)
                    self._bytes -= size
                    return buffer
        return bytearray(size)

    def give(self, buffer: bytearray) -> None:
        limit = self.limit()
        if len(buffer) > limit:
            return
        with self._lock:
            self._idle.append(buffer)
            self._bytes += len(buffer)
            while self._bytes > limit:
                self._bytes -= len(self._idle.popleft())

    def idle_bytes(self) -> int:
        with self._lock:
            return self._bytes


pool = BufferPool()
