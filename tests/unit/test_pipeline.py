"""The part pipeline with a fake send function: order, bounds, buffers, failures."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

from rindle_tus.exceptions import StorageError
from rindle_tus.pipeline import PartPipeline
from rindle_tus.storage.buffers import FilePart, MemoryPart, Part, pool

SIZE = 4096


def _until(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def _send(pipeline: PartPipeline, number: int) -> list[int]:
    part = pipeline.buffer()
    part.write(0, bytes([number]) * 10)
    return [result["number"] for result in pipeline.submit(number, part)]


def test_results_come_back_in_part_order_when_later_parts_finish_first() -> None:
    release = {n: threading.Event() for n in (1, 2, 3)}
    finished: list[int] = []

    def upload(number: int, part: Part) -> str:
        assert release[number].wait(5)
        finished.append(number)
        return f"etag-{number}"

    pipeline = PartPipeline(upload, SIZE, concurrency=3)
    try:
        assert [_send(pipeline, n) for n in (1, 2, 3)] == [[], [], []]
        # One at a time: released together, 2 and 3 may finish in either order.
        release[3].set()
        _until(lambda: finished == [3])
        release[2].set()
        _until(lambda: finished == [3, 2])
        assert list(pipeline.finished()) == []  # part 1 is still uploading
        release[1].set()
        results = list(pipeline.drain())
    finally:
        for event in release.values():
            event.set()
        pipeline.close()
    assert results == [{"number": n, "etag": f"etag-{n}", "size": SIZE} for n in (1, 2, 3)]


def test_finished_yields_the_parts_done_without_waiting_for_the_others() -> None:
    release = {n: threading.Event() for n in (1, 2)}

    def upload(number: int, part: Part) -> str:
        assert release[number].wait(5)
        return str(number)

    pipeline = PartPipeline(upload, SIZE, concurrency=2)
    try:
        assert (_send(pipeline, 1), _send(pipeline, 2)) == ([], [])
        release[1].set()
        _until(lambda: pipeline.in_flight[0].future.done())
        assert [r["number"] for r in pipeline.finished()] == [1]
        assert [r["number"] for r in pipeline.finished()] == []
        release[2].set()
        assert [r["number"] for r in pipeline.drain()] == [2]
    finally:
        for event in release.values():
            event.set()
        pipeline.close()


def test_at_most_concurrency_parts_upload_at_once_with_one_more_buffer_being_filled() -> None:
    lock = threading.Lock()
    running = [0, 0]  # now, peak

    def upload(number: int, part: Part) -> str:
        with lock:
            running[0] += 1
            running[1] = max(running)
        time.sleep(0.01)
        with lock:
            running[0] -= 1
        return str(number)

    pipeline = PartPipeline(upload, SIZE, concurrency=2)
    done: list[int] = []
    try:
        for number in range(1, 11):
            done += _send(pipeline, number)
            assert len(pipeline._in_flight) <= 2
        done += [r["number"] for r in pipeline.drain()]
        taken = len(pipeline._taken)
    finally:
        pipeline.close()
    assert done == list(range(1, 11))
    assert running[1] <= 2
    assert taken <= 3


def test_a_buffer_of_a_finished_part_is_reused() -> None:
    pipeline = PartPipeline(lambda number, part: "e", SIZE, concurrency=1)
    try:
        first = pipeline.buffer()
        list(pipeline.submit(1, first))
        list(pipeline.drain())
        assert pipeline.buffer() is first
    finally:
        pipeline.close()


def test_the_wait_function_waits_for_every_part() -> None:
    waited: list[Future[str]] = []

    def wait(future: Future[str]) -> str:
        waited.append(future)
        return future.result()

    pipeline = PartPipeline(lambda number, part: f"e{number}", SIZE, concurrency=1, wait=wait)
    done: list[int] = []
    try:
        for number in (1, 2, 3):
            done += _send(pipeline, number)
        done += [r["number"] for r in pipeline.drain()]
    finally:
        pipeline.close()
    assert done == [1, 2, 3]
    assert len(waited) == 3


def test_a_failed_part_raises_after_the_parts_before_it() -> None:
    go = threading.Event()

    def upload(number: int, part: Part) -> str:
        assert go.wait(5)
        if number == 2:
            raise StorageError("injected failure of part 2")
        return str(number)

    pipeline = PartPipeline(upload, SIZE, concurrency=3)
    try:
        assert [_send(pipeline, number) for number in (1, 2, 3)] == [[], [], []]
        go.set()
        results = pipeline.drain()
        assert next(results)["number"] == 1
        with pytest.raises(StorageError, match="part 2"):
            next(results)
    finally:
        go.set()
        pipeline.close()


def test_the_upload_reads_the_bytes_written_into_its_part() -> None:
    seen: dict[int, bytes] = {}

    def upload(number: int, part: Part) -> str:
        seen[number] = bytes(part.body(5))
        return "e"

    pipeline = PartPipeline(upload, SIZE, concurrency=2)
    try:
        for number in (1, 2):
            part = pipeline.buffer()
            part.write(0, f"part{number}".encode())
            list(pipeline.submit(number, part))
        list(pipeline.drain())
    finally:
        pipeline.close()
    assert seen == {1: b"part1", 2: b"part2"}


def test_close_waits_for_the_running_upload_and_gives_the_buffers_back() -> None:
    done: list[int] = []

    def upload(number: int, part: Part) -> str:
        time.sleep(0.05)
        done.append(number)
        return "e"

    pipeline = PartPipeline(upload, SIZE, concurrency=2)
    part = pipeline.buffer()
    assert isinstance(part, MemoryPart)
    assert list(pipeline.submit(1, part)) == []
    pipeline.close()
    assert done == [1]
    assert any(buffer is part.data for buffer in pool._idle)
    pipeline.close()  # twice is harmless


def test_nothing_starts_before_the_first_submit() -> None:
    pipeline = PartPipeline(lambda number, part: "e", SIZE, concurrency=2)
    pipeline.buffer()
    assert pipeline._executor is None
    pipeline.close()


def test_parts_too_large_for_memory_wait_in_files_and_a_short_request_takes_a_small_buffer(
    settings: Any, tmp_path: Path
) -> None:
    settings.RINDLE_TUS_TMP_DIR = str(tmp_path)
    settings.RINDLE_TUS_PART_SIZE = 1
    settings.RINDLE_TUS_MAX_MEMORY_PART = 1024
    pipeline = PartPipeline(lambda number, part: "e", 4096, concurrency=1)
    try:
        full = pipeline.buffer()
        assert isinstance(full, FilePart) and full.capacity == 4096
        short = pipeline.buffer(needed=100)
        assert isinstance(short, MemoryPart) and short.capacity == 100 and not short.pooled
        between = pipeline.buffer(needed=2000)
        assert isinstance(between, FilePart) and between.capacity == 2000
    finally:
        pipeline.close()


def test_needed_is_ignored_when_parts_fit_in_memory() -> None:
    pipeline = PartPipeline(lambda number, part: "e", SIZE, concurrency=1)
    try:
        part = pipeline.buffer(needed=10)
        assert isinstance(part, MemoryPart) and part.capacity == SIZE and part.pooled
    finally:
        pipeline.close()
