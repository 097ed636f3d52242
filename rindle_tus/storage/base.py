"""What the write path asks of a tail store, whichever keeps the bytes.

A tail is the part of an upload past its last committed part: the bytes
``[committed, offset)``. The row says how many there are; a store only keeps
them. Both stores keep the same invariant: the first ``tail_length`` bytes
are the upload's, anything after them is debris of an interrupted request.
"""

from __future__ import annotations

from typing import Protocol

from .buffers import Part


class TailMissing(Exception):
    """The store does not hold the bytes the row implies. The writer turns
    this into the loud ``tus_tail_missing`` answer; a store never decides
    what a missing tail means for the request."""

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(detail)


class TailStore(Protocol):
    # True when a write can outlast a lease (an S3 PUT and its retries):
    # the writer keeps the lease alive while it runs.
    remote: bool

    def size(self) -> int | None:
        """The bytes held, None when there is no tail at all."""

    def check(self, expected: int, implied: bool) -> None:
        """Make sure the first ``expected`` bytes are there (``TailMissing``
        if not; ``implied``: the row implies a tail even when it is empty)
        and drop any debris after them."""

    def read_into(self, part: Part, length: int) -> None:
        """Write the tail's first ``length`` bytes into ``part`` (after ``check``)."""

    def store(self, part: Part, length: int, unchanged: int) -> None:
        """Make ``part``'s first ``length`` bytes the tail; its first
        ``unchanged`` bytes are already the tail's and need not be written."""

    def ensure(self) -> None:
        """Prepare an empty tail, before the row can imply one."""

    def delete(self) -> None:
        """Remove the tail; a missing one counts as removed."""
