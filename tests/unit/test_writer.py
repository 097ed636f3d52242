"""The write path's decisions, with S3 and the lease replaced by fakes that
record what they were asked, in order: no database, no S3. The real thing
is pinned end to end by the service-backed suite; these pin the invariant's
order of writes and what is kept or forgotten in each case."""

from __future__ import annotations

import hashlib
import io
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

from rindle_tus import cleanup, protocol, write_behind, writer
from rindle_tus.body import Body
from rindle_tus.cleanup import cleanup_steps
from rindle_tus.exceptions import ChecksumMismatch, ClientGone, StorageError, TusTailMissing
from rindle_tus.models import State, TusSession
from rindle_tus.receiver import Receiver
from rindle_tus.storage import PartFiles, Tail, tus_part_path, tus_tail_path
from rindle_tus.writer import Writer

MiB = 1024 * 1024
PART = 5 * MiB


def _data(body: Any) -> bytes:
    # A part's body is its (reused) buffer or a file: keep a copy.
    return bytes(body) if isinstance(body, (bytes, bytearray, memoryview)) else body.read()


class FakeS3:
    """Records every call; parts and objects are kept as bytes."""

    def __init__(self, events: list[str]) -> None:
        self.events = events
        self.parts: dict[int, bytes] = {}
        self.objects: dict[str, bytes] = {}
        self.fail_part: int | None = None
        self.aborted: list[str] = []
        self.deleted: list[str] = []

    def key_for(self, session_id: str) -> str:
        return f"tus/{session_id}"

    @property
    def prefix(self) -> str:
        return "tus/"

    def create_multipart(self, key: str, content_type: str | None = None) -> str:
        self.events.append("create_multipart")
        return "upload-1"

    def upload_part(self, key: str, upload_id: str, number: int, body: Any) -> str:
        data = _data(body)
        if number == self.fail_part:
            raise StorageError()
        self.events.append(f"part {number} ({len(data)})")
        self.parts[number] = data
        return f"etag-{number}"

    def complete(self, key: str, upload_id: str, parts: list[dict[str, Any]]) -> None:
        self.events.append("complete")
        self.objects[key] = b"".join(self.parts[p["number"]] for p in parts)

    def size(self, key: str) -> int:
        return len(self.objects[key])

    def put(self, key: str, body: Any, content_type: str | None = None) -> None:
        self.events.append("put")
        self.objects[key] = _data(body)

    def abort(self, key: str, upload_id: str) -> None:
        self.events.append("abort")
        self.aborted.append(upload_id)

    def delete(self, key: str) -> None:
        self.events.append(f"delete {key}")
        self.deleted.append(key)


class FakeLease:
    """A lease that is always ours; commits are applied to the instance."""

    def __init__(self, events: list[str]) -> None:
        self.events = events
        self.token = "token"
        self.stopped: Any = None
        self.commits: list[dict[str, Any]] = []

    def commit(self, session: TusSession, **fields: Any) -> None:
        self._write("commit", session, fields)

    def stage(self, session: TusSession, *, then: Callable[[], None] | None = None, **fields: Any) -> None:
        # The real lease writes these with its next write or its release,
        # both before the request answers; in order, that is here.
        self._write("stage", session, fields)
        if then is not None:
            then()

    def _write(self, how: str, session: TusSession, fields: dict[str, Any]) -> None:
        shown = {k: v for k, v in fields.items() if k in ("offset", "state", "upload_id", "length")}
        if "parts" in fields:
            shown["parts"] = len(fields["parts"])
        self.events.append(f"{how} {shown}")
        self.commits.append(fields)
        for name, value in fields.items():
            setattr(session, name, value)

    def confirm(self) -> None:
        pass

    def beat(self) -> None:
        pass

    def wait_for(self, future: Future[Any]) -> Any:
        return future.result()

    def watch(self, check: Callable[[], Any]) -> None:
        pass

    def on_stop(self, callback: Callable[[], None]) -> None:
        pass

    def unwatch(self) -> None:
        pass

    def stopped_for(self) -> float:
        return 0.0


class Cut(io.BytesIO):
    """A body whose client goes away after ``limit`` bytes."""

    def __init__(self, data: bytes, limit: int) -> None:
        super().__init__(data[:limit])


@pytest.fixture
def events() -> list[str]:
    return []


@pytest.fixture
def fake_s3(events: list[str], monkeypatch: pytest.MonkeyPatch) -> FakeS3:
    store = Tail.store

    def recorded(tail: Tail, part: Any, length: int, unchanged: int) -> None:
        store(tail, part, length, unchanged)
        events.append(f"tail {length}")

    monkeypatch.setattr(Tail, "store", recorded)
    return FakeS3(events)


@pytest.fixture(autouse=True)
def local_tails(settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    settings.RINDLE_TUS_TMP_DIR = str(tmp_path)
    settings.RINDLE_TUS_TAIL_STORE = "local"
    settings.RINDLE_TUS_MAX_TAIL_BYTES = None
    settings.RINDLE_TUS_MAX_BODIES = None
    # Parts are committed before the request ends (write-behind has tests of its own).
    settings.RINDLE_TUS_WRITE_BEHIND = 0
    # Signals wait for the transaction; there is none here.
    monkeypatch.setattr(writer.transaction, "on_commit", lambda callback: callback())
    return tmp_path


def new_session(length: int | None) -> TusSession:
    return TusSession(id="a" * 32, length=length, part_size=PART, key="tus/" + "a" * 32, metadata={})


def receive(
    session: TusSession, s3: FakeS3, events: list[str], data: bytes, *, sent: int | None = None, checksum: Any = None
) -> Writer:
    w = Writer(session, FakeLease(events), s3)  # type: ignore[arg-type]
    stream = io.BytesIO(data) if sent is None else Cut(data, sent)
    Receiver(w).receive(Body(stream, len(data)), checksum)
    return w


def payload(size: int, seed: int = 1) -> bytes:
    out = bytearray()
    block = hashlib.sha256(bytes([seed])).digest()
    while len(out) < size:
        block = hashlib.sha256(block).digest()
        out += block
    return bytes(out[:size])


def tail_bytes(session: TusSession) -> bytes:
    return tus_tail_path(session.id).read_bytes()


def test_parts_are_in_s3_before_the_row_names_them_and_the_tail_before_the_offset(
    fake_s3: FakeS3, events: list[str]
) -> None:
    session = new_session(None)
    data = payload(2 * PART + 1000)
    receive(session, fake_s3, events, data)
    first_part = events.index(f"part 1 ({PART})")
    first_parts_commit = next(i for i, e in enumerate(events) if "'parts': 1" in e)
    assert events[0] == "create_multipart"
    assert first_part < first_parts_commit
    # The last write moves the offset past the parts, after the tail is written
    # (staged: it goes with the lease's release).
    assert events[-2:] == ["tail 1000", f"stage {{'offset': {2 * PART + 1000}}}"]
    assert session.offset == 2 * PART + 1000 and session.committed_bytes == 2 * PART
    assert tail_bytes(session) == data[2 * PART :]
    assert fake_s3.parts[1] + fake_s3.parts[2] == data[: 2 * PART]


def test_a_body_that_fills_no_part_only_appends_to_the_tail(fake_s3: FakeS3, events: list[str]) -> None:
    session = new_session(None)
    data = payload(3000)
    receive(session, fake_s3, events, data[:1000])
    receive(session, fake_s3, events, data[1000:])
    assert not fake_s3.parts
    assert tail_bytes(session) == data
    assert session.offset == 3000


def test_the_tail_goes_into_the_next_part_when_it_fills(fake_s3: FakeS3, events: list[str]) -> None:
    session = new_session(None)
    data = payload(PART + 10)
    receive(session, fake_s3, events, data[:1000])
    receive(session, fake_s3, events, data[1000:])
    assert fake_s3.parts[1] == data[:PART]
    assert tail_bytes(session) == data[PART:]


def test_the_last_bytes_complete_the_object(fake_s3: FakeS3, events: list[str]) -> None:
    session = new_session(PART + 10)
    data = payload(PART + 10)
    receive(session, fake_s3, events, data[:3000])
    receive(session, fake_s3, events, data[3000:])
    assert fake_s3.objects[session.key] == data
    assert session.state == State.COMPLETED
    assert not tus_tail_path(session.id).exists()


def test_a_small_whole_upload_is_one_put(fake_s3: FakeS3, events: list[str]) -> None:
    session = new_session(100)
    receive(session, fake_s3, events, payload(100))
    assert "create_multipart" not in events and "put" in events
    assert session.state == State.COMPLETED


def test_a_cut_body_keeps_what_arrived_and_says_why(fake_s3: FakeS3, events: list[str]) -> None:
    session = new_session(None)
    data = payload(PART + 5000)
    with pytest.raises(ClientGone):
        receive(session, fake_s3, events, data, sent=PART + 123)
    assert session.offset == PART + 123
    assert tail_bytes(session) == data[PART : PART + 123]


def test_a_cut_body_with_a_checksum_keeps_nothing_and_overwrites_its_parts(fake_s3: FakeS3, events: list[str]) -> None:
    session = new_session(None)
    data = payload(2 * PART + 5000)
    checksum = protocol.Checksum("sha256", hashlib.sha256(data).digest())
    receive(session, fake_s3, events, b"x" * 10)  # the upload holds something: its parts are overwritten
    with pytest.raises(ClientGone):
        receive(session, fake_s3, events, data[10:], sent=2 * PART, checksum=checksum)
    assert session.offset == 10
    assert fake_s3.parts and all(part == b"" for part in fake_s3.parts.values())


def test_a_checksum_mismatch_on_a_fresh_upload_aborts_its_multipart_upload(fake_s3: FakeS3, events: list[str]) -> None:
    session = new_session(None)
    data = payload(PART + 5)
    with pytest.raises(ChecksumMismatch):
        receive(session, fake_s3, events, data, checksum=protocol.Checksum("sha256", b"\0" * 32))
    assert fake_s3.aborted == ["upload-1"]
    assert session.offset == 0 and session.upload_id == ""


def test_a_failing_part_keeps_the_parts_before_it(fake_s3: FakeS3, events: list[str]) -> None:
    session = new_session(None)
    fake_s3.fail_part = 3
    with pytest.raises(StorageError):
        receive(session, fake_s3, events, payload(3 * PART + 7))
    assert session.committed_bytes == 2 * PART
    assert session.offset == 2 * PART


def test_a_missing_tail_fails_loudly_and_keeps_the_row(fake_s3: FakeS3, events: list[str]) -> None:
    session = new_session(None)
    receive(session, fake_s3, events, payload(PART + 100))
    tus_tail_path(session.id).unlink()
    with pytest.raises(TusTailMissing):
        receive(session, fake_s3, events, payload(10))
    assert session.offset == PART + 100


def test_a_wrong_size_object_fails_the_upload(
    fake_s3: FakeS3, events: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    session = new_session(PART + 10)
    monkeypatch.setattr(fake_s3, "size", lambda key: 1)
    with pytest.raises(StorageError):
        receive(session, fake_s3, events, payload(PART + 10))
    assert session.state == State.FAILED


def steps(session: TusSession) -> Iterator[tuple[str, str]]:
    for step in cleanup_steps(session, FakeS3([])):  # type: ignore[arg-type]
        yield step.kind, step.target


def test_freeing_a_receiving_upload_aborts_and_keeps_no_object() -> None:
    session = new_session(None)
    session.upload_id = "u"
    assert list(steps(session)) == [(cleanup.ABORT, session.key)]


def test_freeing_a_terminated_upload_deletes_its_object_whatever_it_was() -> None:
    for completed, upload_id in ((True, "u"), (False, "u"), (False, "")):
        session = new_session(10)
        session.state = State.TERMINATED
        session.upload_id = upload_id
        session.completed_at = session.created_at if completed else None
        kinds = [kind for kind, _ in steps(session)]
        assert cleanup.DELETE_OBJECT in kinds
        assert (cleanup.ABORT in kinds) == (bool(upload_id) and not completed)


def test_freeing_deletes_this_nodes_tail_file_when_there_is_one() -> None:
    session = new_session(None)
    path = tus_tail_path(session.id)
    assert cleanup.DELETE_TAIL not in [kind for kind, _ in steps(session)]
    path.parent.mkdir(parents=True)
    path.write_bytes(b"x")
    assert (cleanup.DELETE_TAIL, str(path)) in list(steps(session))


def test_with_write_behind_a_part_on_its_way_is_in_its_file_before_the_row_counts_it(
    fake_s3: FakeS3, events: list[str], settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.RINDLE_TUS_WRITE_BEHIND = 2
    gate = threading.Event()
    upload_part = fake_s3.upload_part

    def held(key: str, upload_id: str, number: int, body: Any) -> str:
        assert gate.wait(10)
        return upload_part(key, upload_id, number, body)

    monkeypatch.setattr(fake_s3, "upload_part", held)
    store = PartFiles.store

    def recorded(files: PartFiles, number: int, part: Any, length: int) -> None:
        store(files, number, part, length)
        events.append(f"part file {number}")

    monkeypatch.setattr(PartFiles, "store", recorded)
    session = new_session(None)
    data = payload(PART + 1000)
    try:
        receive(session, fake_s3, events, data)
        # The part file, then the row at the part's end (so the tail file holds
        # nothing it counts), then the new tail, then the offset past it.
        assert events[-4:] == [
            "part file 1",
            f"commit {{'offset': {PART}}}",
            "tail 1000",
            f"stage {{'offset': {PART + 1000}}}",
        ]
        assert session.parts == [] and session.owed_parts == 1 and fake_s3.parts == {}
        assert tus_part_path(session.id, 1).read_bytes() == data[:PART]
        gate.set()
        for _ in range(500):
            if not write_behind.hints.running():
                break
            threading.Event().wait(0.01)
        receive(session, fake_s3, events, payload(10, seed=2))
        # The next request committed the part its predecessor left running.
        assert [p["number"] for p in session.parts] == [1] and fake_s3.parts[1] == data[:PART]
        assert not tus_part_path(session.id, 1).exists()
        assert tail_bytes(session) == data[PART:] + payload(10, seed=2)
    finally:
        gate.set()
        write_behind.hints.forget(session.id)
