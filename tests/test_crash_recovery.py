"""Simulated crashes at each commit point: the row stays authoritative and the
upload resumes to a byte-exact object."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from rindle_tus import write_behind
from rindle_tus.locking import Lease
from rindle_tus.models import State, TusSession
from rindle_tus.storage import PartFiles, tus_part_path, tus_tail_path

from .conftest import PART, S3, Gate, MiB, TusClient, parts_held, payload, session_for, sha256


class Crash(BaseException):
    """A process death: not an Exception, so no handler in the app swallows it."""


@pytest.fixture
def crash_on(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Callable[[dict[str, Any]], bool]], None]]:
    """The process dies at the first write of the row whose fields match:
    a commit, or the release that writes a request's staged last fields."""
    original_commit, original_release = Lease.commit, Lease.release

    def install(predicate: Callable[[dict[str, Any]], bool]) -> None:
        fired = {"done": False}

        def commit(self: Lease, session: TusSession, **fields: Any) -> None:
            if not fired["done"] and predicate({**self._staged, **fields}):
                fired["done"] = True
                raise Crash()
            original_commit(self, session, **fields)

        def release(self: Lease, **fields: Any) -> None:
            if not fired["done"] and predicate({**self._staged, **fields}):
                fired["done"] = True
                # Nothing of the write lands; the lease goes as a dead
                # holder's would lapse, only sooner.
                self._staged, self._then = {}, []
                original_release(self)
                raise Crash()
            original_release(self, **fields)

        monkeypatch.setattr(Lease, "commit", commit)
        monkeypatch.setattr(Lease, "release", release)

    yield install
    monkeypatch.setattr(Lease, "commit", original_commit)
    monkeypatch.setattr(Lease, "release", original_release)


def _resume(tus: TusClient, url: str, data: bytes) -> None:
    offset = int(tus.head(url)["Upload-Offset"])
    response = tus.patch(url, data[offset:], offset)
    assert response.status_code == 204, response.content


def test_crash_between_part_upload_and_its_commit(tus: TusClient, s3: S3, crash_on: Any) -> None:
    data = payload(2 * PART + MiB, seed=1)
    url = tus.new(len(data))
    crash_on(lambda fields: "parts" in fields and len(fields["parts"]) >= 2)
    with pytest.raises(Crash):
        tus.patch(url, data, 0)
    session = session_for(url)
    assert session.offset == PART
    assert len(session.parts) == 1
    _resume(tus, url, data)
    assert s3.sha256(session.key) == sha256(data)


def test_crash_between_tail_write_and_offset_commit(tus: TusClient, s3: S3, crash_on: Any) -> None:
    data = payload(PART + 3 * MiB, seed=2)
    url = tus.new(len(data))
    assert tus.patch(url, data[:MiB], 0).status_code == 204
    crash_on(lambda fields: "offset" in fields and "tail_node" in fields)
    with pytest.raises(Crash):
        tus.patch(url, data[MiB : 2 * MiB], MiB)
    session = session_for(url)
    assert session.offset == MiB
    # The tail holds bytes the row does not count yet: debris, cut on resume.
    assert tus_tail_path(session.id).stat().st_size == 2 * MiB
    _resume(tus, url, data)
    assert s3.sha256(session.key) == sha256(data)


def test_crash_after_parts_were_cut_before_the_tail_was_replaced(tus: TusClient, s3: S3, crash_on: Any) -> None:
    data = payload(2 * PART + 2 * MiB, seed=3)
    url = tus.new(len(data))
    assert tus.patch(url, data[: 2 * MiB], 0).status_code == 204
    crash_on(lambda fields: "offset" in fields and "tail_node" in fields)
    with pytest.raises(Crash):
        tus.patch(url, data[2 * MiB : PART + 3 * MiB], 2 * MiB)
    session = session_for(url)
    # The part is committed, or (write-behind) whole in its part file: either
    # way the row no longer counts a byte of the tail file it was replacing.
    assert session.offset == PART and parts_held(session) == [1] and session.tail_remainder == 0
    _resume(tus, url, data)
    assert s3.sha256(session.key) == sha256(data)


def test_crash_after_completing_before_marking_completed(tus: TusClient, s3: S3, crash_on: Any) -> None:
    data = payload(PART + MiB, seed=4)
    url = tus.new(len(data))
    crash_on(lambda fields: fields.get("state") == State.COMPLETED)
    with pytest.raises(Crash):
        tus.patch(url, data, 0)
    session = session_for(url)
    assert session.state == State.RECEIVING
    assert session.offset == len(data)
    # The client sees the final offset and retries with an empty PATCH.
    response = tus.patch(url, b"", len(data))
    assert response.status_code == 204
    session.refresh_from_db()
    assert session.state == State.COMPLETED
    assert s3.sha256(session.key) == sha256(data)


def test_failed_completion_stays_resumable(tus: TusClient, s3: S3, monkeypatch: pytest.MonkeyPatch) -> None:
    from rindle_tus.exceptions import StorageError
    from rindle_tus.storage.s3 import S3Backend

    data = payload(PART + MiB, seed=5)
    url = tus.new(len(data))
    original = S3Backend.complete

    def failing(self: S3Backend, *args: Any, **kwargs: Any) -> None:
        raise StorageError("injected")

    monkeypatch.setattr(S3Backend, "complete", failing)
    response = tus.patch(url, data, 0)
    assert response.status_code == 502
    session = session_for(url)
    assert session.state == State.RECEIVING and session.offset == len(data)
    assert "injected" in session.last_error
    monkeypatch.setattr(S3Backend, "complete", original)
    assert tus.patch(url, b"", len(data)).status_code == 204
    session.refresh_from_db()
    assert session.state == State.COMPLETED
    assert s3.sha256(session.key) == sha256(data)


# -- write-behind: the parts a PATCH left on their way to S3 ------------------------


def test_crash_after_the_part_files_before_the_row_counts_them(
    tus: TusClient, s3: S3, gate: Gate, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = payload(2 * PART + MiB, seed=5)
    url = tus.new(len(data))

    def crash() -> None:
        gate.opened.set()
        raise Crash()

    monkeypatch.setattr(PartFiles, "sync", staticmethod(crash))
    with pytest.raises(Crash):
        tus.patch(url, data[: PART + MiB], 0)
    monkeypatch.undo()
    session = session_for(url)
    # Part 1's file is debris: the row never counted it.
    assert session.offset == 0 and session.parts == []
    _resume(tus, url, data)
    assert s3.sha256(session.key) == sha256(data)


def test_crash_after_the_row_counts_the_part_files_before_the_new_offset(
    tus: TusClient, s3: S3, gate: Gate, crash_on: Any
) -> None:
    data = payload(2 * PART + MiB, seed=6)
    url = tus.new(len(data))
    crash_on(lambda fields: "tail_node" in fields and fields.get("offset") == PART + MiB)
    with pytest.raises(Crash):
        tus.patch(url, data[: PART + MiB], 0)
    session = session_for(url)
    assert session.offset == PART and session.parts == [] and session.owed_parts == 1
    assert tus_part_path(session.id, 1).read_bytes() == data[:PART]
    # The process died with the upload of part 1: nothing of it is known here.
    write_behind.hints.forget(session.id)
    gate.opened.set()
    _resume(tus, url, data)
    assert s3.sha256(session.key) == sha256(data)


def test_crash_as_the_next_request_commits_the_part_left_for_s3(
    tus: TusClient, s3: S3, gate: Gate, crash_on: Any
) -> None:
    data = payload(2 * PART + MiB, seed=7)
    url = tus.new(len(data))
    assert tus.patch(url, data[: PART + MiB], 0).status_code == 204
    gate.opened.set()
    gate.wait_finished(1)
    crash_on(lambda fields: bool(fields.get("parts")))
    with pytest.raises(Crash):
        tus.patch(url, data[PART + MiB : PART + 2 * MiB], PART + MiB)
    session = session_for(url)
    assert session.offset == PART + MiB and session.parts == [] and session.owed_parts == 1
    write_behind.hints.forget(session.id)
    _resume(tus, url, data)
    assert s3.sha256(session.key) == sha256(data)


def test_crash_after_the_part_left_for_s3_was_committed_before_its_file_went(
    tus: TusClient, s3: S3, gate: Gate, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = payload(2 * PART + MiB, seed=8)
    url = tus.new(len(data))
    assert tus.patch(url, data[: PART + MiB], 0).status_code == 204
    gate.opened.set()
    gate.wait_finished(1)

    def crash(files: PartFiles, number: int) -> None:
        raise Crash()

    monkeypatch.setattr(PartFiles, "drop", crash)
    with pytest.raises(Crash):
        tus.patch(url, data[PART + MiB : PART + 2 * MiB], PART + MiB)
    monkeypatch.undo()
    session = session_for(url)
    # The part is committed; its file, still there, is debris.
    assert [p["number"] for p in session.parts] == [1] and tus_part_path(session.id, 1).exists()
    _resume(tus, url, data)
    assert s3.sha256(session.key) == sha256(data)
    assert not tus_part_path(session.id, 1).exists()


# -- write-behind: the tail file made the file of the part it starts ----------------


def test_the_tail_file_becomes_the_part_file_of_the_part_it_starts(tus: TusClient, s3: S3, gate: Gate) -> None:
    data = payload(2 * PART + MiB, seed=9)
    url = tus.new(len(data))
    assert tus.patch(url, data[:MiB], 0).status_code == 204
    session = session_for(url)
    inode = tus_tail_path(session.id).stat().st_ino
    assert tus.patch(url, data[MiB : PART + MiB], MiB).status_code == 204
    # Part 1's first MiB was not written again: the tail file was completed and renamed.
    assert tus_part_path(session.id, 1).stat().st_ino == inode
    assert tus_part_path(session.id, 1).read_bytes() == data[:PART]
    assert tus_tail_path(session.id).read_bytes() == data[PART : PART + MiB]
    gate.opened.set()
    _resume(tus, url, data)
    assert s3.sha256(session.key) == sha256(data)


def test_crash_after_the_tail_file_became_a_part_file_before_the_row_counts_it(
    tus: TusClient, s3: S3, gate: Gate, crash_on: Any
) -> None:
    data = payload(2 * PART + MiB, seed=10)
    url = tus.new(len(data))
    assert tus.patch(url, data[:MiB], 0).status_code == 204
    def counts_part_1(fields: dict[str, Any]) -> bool:
        # The commit that would count part 1 (at its boundary, before the new
        # tail). Its upload may end: the process dies waiting for nothing.
        if fields.get("offset") == PART and "tail_node" not in fields:
            gate.opened.set()
            return True
        return False

    crash_on(counts_part_1)
    with pytest.raises(Crash):
        tus.patch(url, data[MiB : PART + 2 * MiB], MiB)
    session = session_for(url)
    assert session.offset == MiB and session.owed_parts == 0 and session.tail_remainder == MiB
    # The tail file is part 1's file now, which the row does not count; an
    # empty one took its name.
    assert tus_tail_path(session.id).read_bytes() == b""
    assert tus_part_path(session.id, 1).read_bytes() == data[:PART]
    write_behind.hints.forget(session.id)
    # The resume finds the tail in that file, not a missing tail.
    _resume(tus, url, data)
    assert s3.sha256(session.key) == sha256(data)


def test_crash_after_the_row_counts_the_renamed_tail_before_the_new_tail(
    tus: TusClient, s3: S3, gate: Gate, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rindle_tus.storage import Tail

    data = payload(2 * PART + MiB, seed=11)
    url = tus.new(len(data))
    assert tus.patch(url, data[:MiB], 0).status_code == 204

    def crash(tail: Tail, *args: Any) -> None:
        raise Crash()

    monkeypatch.setattr(Tail, "store", crash)
    with pytest.raises(Crash):
        tus.patch(url, data[MiB : PART + 2 * MiB], MiB)
    monkeypatch.undo()
    session = session_for(url)
    # Part 1 is counted, in its file; the tail after it is empty, as its file is.
    assert session.offset == PART and session.owed_parts == 1 and session.tail_remainder == 0
    assert tus_tail_path(session.id).read_bytes() == b""
    write_behind.hints.forget(session.id)
    gate.opened.set()
    _resume(tus, url, data)
    assert s3.sha256(session.key) == sha256(data)


def test_no_tail_file_and_no_part_file_to_find_it_in_is_still_a_missing_tail(
    tus: TusClient, gate: Gate
) -> None:
    data = payload(2 * PART, seed=12)
    url = tus.new(len(data))
    assert tus.patch(url, data[:MiB], 0).status_code == 204
    session = session_for(url)
    tus_tail_path(session.id).unlink()
    response = tus.patch(url, data[MiB : 2 * MiB], MiB)
    assert response.status_code == 503 and b"tus_tail_missing" in response.content
    session.refresh_from_db()
    assert session.offset == MiB
