"""Part buffers: in memory up to the limit, in an unnamed file past it, and
a pool whose idle buffers never add up to more than its bound."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import pytest

from rindle_tus.conf import MiB
from rindle_tus.storage import buffers
from rindle_tus.storage.buffers import BufferPool, FilePart, MemoryPart, memory_part_limit, new_part
from rindle_tus.storage.folder import tail_dir


@pytest.fixture
def small_parts(settings: Any, tmp_path: Path) -> int:
    """Parts of up to 1 KiB in memory, tails (and spooled parts) under tmp_path."""
    settings.RINDLE_TUS_TMP_DIR = str(tmp_path)
    settings.RINDLE_TUS_PART_SIZE = 1
    settings.RINDLE_TUS_MAX_MEMORY_PART = 1024
    settings.RINDLE_TUS_UPLOAD_CONCURRENCY = 2
    return 1024


@pytest.mark.parametrize(("memory", "part", "limit"), [(16 * MiB, 8 * MiB, 16 * MiB), (8 * MiB, 64 * MiB, 64 * MiB)])
def test_the_memory_limit_is_never_below_the_part_size(settings: Any, memory: int, part: int, limit: int) -> None:
    settings.RINDLE_TUS_MAX_MEMORY_PART = memory
    settings.RINDLE_TUS_PART_SIZE = part
    assert memory_part_limit() == limit


def test_parts_up_to_the_limit_are_in_memory_and_larger_ones_in_a_file(small_parts: int) -> None:
    memory = new_part(small_parts)
    spooled = new_part(small_parts + 1)
    try:
        assert isinstance(memory, MemoryPart) and memory.capacity == small_parts and memory.pooled
        assert isinstance(spooled, FilePart) and spooled.capacity == small_parts + 1
        # Unnamed: nothing in the tails' folder to leak if the process dies.
        assert os.listdir(tail_dir()) == []
    finally:
        memory.close()
        spooled.close()


def test_memory_part_writes_at_positions_and_reads_back() -> None:
    part = MemoryPart(bytearray(10), pooled=False)
    part.write(5, b"world")
    part.write(0, memoryview(b"hello"))
    assert part.body(10) is part.data  # the whole part: no copy
    assert part.body(4) == b"hell" and isinstance(part.body(4), bytes)
    assert [bytes(c) for c in part.chunks(2, 8)] == [b"llowor"]
    assert list(part.chunks(3, 3)) == []


def test_unpooled_memory_part_does_not_go_back_to_the_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    given: list[bytearray] = []
    monkeypatch.setattr(buffers.pool, "give", given.append)
    MemoryPart(bytearray(8), pooled=False).close()
    pooled = MemoryPart(bytearray(8))
    pooled.close()
    assert given == [pooled.data]
    part = new_part(16, pooled=False)
    assert isinstance(part, MemoryPart) and not part.pooled


def test_file_part_writes_at_positions_and_reads_back_in_chunks(
    small_parts: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(buffers, "COPY", 7)
    data = bytes(range(256)) * 8
    part = new_part(len(data))
    assert isinstance(part, FilePart)
    try:
        part.write(1000, data[1000:])
        part.write(0, memoryview(data)[:1000])
        chunks = [bytes(c) for c in part.chunks(3, 40)]
        assert b"".join(chunks) == data[3:40]
        assert max(len(c) for c in chunks) <= 7
        assert list(part.chunks(10, 10)) == []
    finally:
        part.close()


def test_file_part_body_is_the_first_bytes_seekable_as_boto3_reads_it(small_parts: int) -> None:
    data = os.urandom(3000)
    part = new_part(len(data))
    try:
        part.write(0, data)
        body = part.body(2500)
        assert isinstance(body, io.BufferedReader)
        assert body.read() == data[:2500]
        assert body.read() == b""
        body.seek(0)
        assert body.read(10) == data[:10]
        assert body.seek(-5, io.SEEK_END) == 2495
        assert body.read() == data[2495:2500]
        raw = body.raw
        assert len(raw) == 2500 and raw.seekable() and raw.readable()
        assert raw.seek(-10_000, io.SEEK_CUR) == 0
    finally:
        part.close()


def test_reading_a_file_part_past_what_was_written_fails(small_parts: int) -> None:
    part = new_part(2000)
    try:
        part.write(0, b"x" * 100)
        with pytest.raises(OSError, match="ended at 100 of 200 bytes"):
            list(part.chunks(0, 200))
    finally:
        part.close()


def test_the_pool_hands_back_a_buffer_of_the_same_size(small_parts: int) -> None:
    pool = BufferPool()
    buffer = bytearray(512)
    pool.give(buffer)
    assert pool.idle_bytes() == 512
    assert pool.take(256) is not buffer
    assert pool.take(512) is buffer
    assert pool.idle_bytes() == 0
    assert len(pool.take(512)) == 512


def test_idle_buffers_never_add_up_to_more_than_the_bound_the_oldest_go(small_parts: int) -> None:
    pool = BufferPool()
    assert pool.limit() == 3 * small_parts  # (concurrency + 1) part buffers
    first, second, third, fourth = (bytearray(small_parts) for _ in range(4))
    for buffer in (first, second, third):
        pool.give(buffer)
    assert pool.idle_bytes() == 3 * small_parts
    pool.give(fourth)
    assert pool.idle_bytes() == 3 * small_parts
    assert [b is first for b in pool._idle] == [False, False, False]
    pool.give(bytearray(3 * small_parts + 1))  # larger than the whole bound: not kept
    assert pool.idle_bytes() == 3 * small_parts
    assert pool.take(small_parts) is second


def test_a_part_that_cannot_be_spooled_is_a_500_naming_the_folder(small_parts: int, settings: Any,
                                                                  tmp_path: Path) -> None:
    from rindle_tus.exceptions import DiskUnavailable

    (tmp_path / "file").write_bytes(b"")
    settings.RINDLE_TUS_TMP_DIR = str(tmp_path / "file" / "uploads")
    with pytest.raises(DiskUnavailable) as raised:
        new_part(small_parts + 1)
    assert (raised.value.status, raised.value.code) == (500, "tmp_dir_unwritable")
    assert str(tmp_path / "file" / "uploads") in raised.value.message


def test_a_full_disk_while_spooling_is_507(small_parts: int, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    from rindle_tus.exceptions import NodeFull

    part = new_part(small_parts + 1)
    try:
        def full(*args: Any) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(os, "pwrite", full)
        with pytest.raises(NodeFull) as raised:
            part.write(0, b"x" * 10)
        assert raised.value.status == 507
    finally:
        part.close()
