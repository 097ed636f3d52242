"""Deterministic pseudo-random upload bodies, generated in chunks, never read
from disk.

The stream of a seed is defined so that ``peer/gen.mjs`` produces the very
same bytes (the two are checked against each other by ``--quick``):

- a 4 MiB pool: SHA-256(b"rindle-bench-pool" || k as 8 bytes big-endian) for
  k = 0, 1, ... concatenated; the same for every seed, built once per process;
- chunk i (1 MiB, the last one cut short) is the pool, read circularly from
  ``SHA-256(seed as 8 bytes BE || i as 8 bytes BE)[:4]`` (big-endian) mod 4 MiB.

Each chunk is a zero-copy view of the (doubled) pool, so generating costs
almost nothing next to sending; what the clients pay for is hashing what they
send, which they must do anyway to verify the stored object.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from functools import lru_cache

MiB = 1024 * 1024
POOL_SIZE = 4 * MiB
CHUNK_SIZE = 1 * MiB


@lru_cache(maxsize=1)
def _pool() -> memoryview:
    blocks = [hashlib.sha256(b"rindle-bench-pool" + k.to_bytes(8, "big")).digest() for k in range(POOL_SIZE // 32)]
    pool = b"".join(blocks)
    # Doubled, so that a chunk starting anywhere in the pool is one slice.
    return memoryview(pool + pool)


def _chunk_start(seed: int, index: int) -> int:
    digest = hashlib.sha256(seed.to_bytes(8, "big") + index.to_bytes(8, "big")).digest()
    return int.from_bytes(digest[:4], "big") % POOL_SIZE


def pieces(seed: int, start: int, end: int) -> Iterator[memoryview]:
    """The bytes ``[start, end)`` of the seed's stream, as views of at most one chunk each."""
    pool = _pool()
    position = start
    while position < end:
        index, within = divmod(position, CHUNK_SIZE)
        take = min(CHUNK_SIZE - within, end - position)
        begin = _chunk_start(seed, index) + within
        yield pool[begin : begin + take]
        position += take


def stream_sha256(seed: int, size: int) -> str:
    """The SHA-256 of the first ``size`` bytes of the seed's stream."""
    digest = hashlib.sha256()
    for piece in pieces(seed, 0, size):
        digest.update(piece)
    return digest.hexdigest()


class GeneratedReader:
    """A non-seekable file object over the stream that hashes what is read.

    boto3's managed transfer reads it as it would a pipe: sequentially, one
    part at a time.
    """

    def __init__(self, seed: int, size: int) -> None:
        self.seed = seed
        self.size = size
        self.position = 0
        self.digest = hashlib.sha256()

    def read(self, amount: int = -1) -> bytes:
        end = self.size if amount is None or amount < 0 else min(self.size, self.position + amount)
        data = b"".join(pieces(self.seed, self.position, end))
        self.digest.update(data)
        self.position = end
        return data

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def hexdigest(self) -> str:
        return self.digest.hexdigest()
