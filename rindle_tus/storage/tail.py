"""The node-local tail: bytes of an upload not yet in a committed part.

Invariant: the tail holds the upload's bytes ``[committed, offset)``. With
write-behind, whole parts of it may still be on their way to S3 after the
request that received them answered: each waits in a part file of its own
(``tus_part_path``), and the first ``session.tail_remainder`` bytes of the
tail file are the bytes after them. Anything after those is debris from an
interrupted request and is cut off before use.
"""

from __future__ import annotations

import functools
import glob
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, TypeVar, cast

from .base import TailMissing
from .buffers import COPY, Part
from .folder import PART_SUFFIX, on_disk, tail_dir, tus_part_path, tus_tail_path

_F = TypeVar("_F", bound=Callable[..., Any])


def _on_disk(method: _F) -> _F:
    """``on_disk`` around each of a tail's uses of the folder."""

    @functools.wraps(method)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        with on_disk():
            return method(*args, **kwargs)

    return cast(_F, wrapped)


class Tail:
    """Reads, checks and replaces one upload's tail file on this node."""

    # A write is local and immediate: done long before a lease could run out.
    remote = False

    def __init__(self, session_id: str) -> None:
        self.path = tus_tail_path(session_id)

    @_on_disk
    def size(self) -> int | None:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return None

    @_on_disk
    def check(self, expected: int, implied: bool) -> None:
        """The cross-node guard: fail loudly rather than continue from nothing.

        ``expected``: the bytes the row says the tail holds; ``implied``:
        whether the row implies a tail file at all (even an empty one).
        """
        size = self.size()
        if size is None:
            if implied:
                raise TailMissing("the tail file is absent")
            return
        if size < expected:
            raise TailMissing(f"the tail file holds {size} bytes but the upload implies {expected}")
        if size > expected:
            # Debris of a request interrupted before its offset commit.
            with open(self.path, "r+b") as fh:
                fh.truncate(expected)
                os.fsync(fh.fileno())

    @_on_disk
    def read_into(self, part: Part, length: int) -> None:
        """Write the tail's first ``length`` (committed) bytes into ``part``."""
        done = 0
        with open(self.path, "rb") as fh:
            while done < length:
                chunk = fh.read(min(COPY, length - done))
                if not chunk:
                    raise TailMissing(f"the tail file ended after {done} of {length} bytes")
                part.write(done, chunk)
                done += len(chunk)

    def store(self, part: Part, length: int, unchanged: int) -> None:
        """Make the first ``length`` bytes of ``part`` the tail, knowing its
        first ``unchanged`` bytes are already the file's: only what follows
        them is written."""
        if unchanged:
            self.append(part, length, at=unchanged)
        else:
            self.replace(part, length)

    @_on_disk
    def ensure(self) -> None:
        """Create an empty tail file if there is none (before the row implies one)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            self.replace(None, 0)

    @_on_disk
    def replace(self, part: Part | None, length: int) -> None:
        """Atomically make ``part``'s first ``length`` bytes the whole tail:
        temp file, fsync, rename."""
        self._replace(part, length)
        _fsync_dir(self.path.parent)

    def _replace(self, part: Part | None, length: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            if part is not None:
                _write(fd, part, 0, length)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)

    @_on_disk
    def append(self, part: Part, length: int, at: int) -> None:
        """Write ``part``'s bytes ``[at, length)`` after the first ``at`` bytes.

        Safe without a rename: until the offset commit the new bytes lie past
        what the row implies, so a crash leaves only debris.
        """
        fd = os.open(self.path, os.O_WRONLY)
        try:
            os.lseek(fd, at, os.SEEK_SET)
            _write(fd, part, at, length)
            os.ftruncate(fd, length)
            os.fsync(fd)
        finally:
            os.close(fd)

    @_on_disk
    def into_part(self, part: Part, length: int, at: int, path: Path) -> None:
        """Write-behind, for the part whose first ``at`` bytes the tail file
        holds: append ``part``'s bytes ``[at, length)``, fsync, and rename the
        file to the part file ``path``, instead of writing those ``at`` bytes
        a second time. A crash between the two renames leaves no tail file:
        ``PartFiles.give_back`` restores it from the part file."""
        self.append(part, length, at)
        os.replace(self.path, path)
        # A tail file again at once, empty: the row may count the part
        # before the remainder is written, and a tail it implies is never absent.
        # The caller's ``PartFiles.sync`` makes both renames durable.
        self._replace(None, 0)

    @_on_disk
    def delete(self) -> None:
        self.path.unlink(missing_ok=True)


class PartFiles:
    """The parts of one upload's tail that wait on this node's disk for S3
    (write-behind), one file each, kept whole: written to a temp file,
    fsynced and renamed, so a part file that exists holds the whole part."""

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id

    def path(self, number: int) -> Path:
        return tus_part_path(self.session_id, number)

    @_on_disk
    def store(self, number: int, part: Part, length: int) -> None:
        path = self.path(number)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            _write(fd, part, 0, length)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)

    @staticmethod
    @_on_disk
    def sync() -> None:
        """Make the renames of ``store`` durable: one directory fsync for a
        request's parts, before the row names them."""
        _fsync_dir(tail_dir())

    @_on_disk
    def check(self, numbers: range, size: int) -> None:
        """The guard for the parts the row says wait here: each whole."""
        for number in numbers:
            try:
                held = self.path(number).stat().st_size
            except FileNotFoundError:
                detail = f"the file of part {number}, waiting for S3 on the node that received it, is absent"
                raise TailMissing(detail) from None
            if held != size:
                raise TailMissing(f"the file of part {number} holds {held} bytes, not {size}")

    @_on_disk
    def open(self, number: int) -> BinaryIO:
        # The caller closes it once S3 has the part.
        return open(self.path(number), "rb")

    @_on_disk
    def drop(self, number: int) -> None:
        self.path(number).unlink(missing_ok=True)

    @_on_disk
    def give_back(self, number: int) -> bool:
        """Part ``number``'s file, which the row does not count, back as the
        tail file (renamed: see ``Tail.into_part``); False if there is none.
        Any part file holds the upload's bytes from the same place the tail
        starts, so its first bytes are the tail's."""
        tail = tus_tail_path(self.session_id)
        try:
            os.replace(self.path(number), tail)
        except FileNotFoundError:
            return False
        _fsync_dir(tail.parent)
        return True

    def paths(self) -> list[Path]:
        """Every part file of the upload on this node, whatever its number."""
        tail = tus_tail_path(self.session_id)
        return sorted(tail.parent.glob(f"{glob.escape(tail.name)}.*{PART_SUFFIX}"))


def _write(fd: int, part: Part, start: int, end: int) -> None:
    for chunk in part.chunks(start, end):
        view = chunk
        while view:
            written = os.write(fd, view)
            view = view[written:]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
