"""Parts upload while the next is read; commits stay in part order."""

from __future__ import annotations

import time
from typing import Any

import pytest

from rindle_tus.exceptions import StorageError
from rindle_tus.locking import Lease
from rindle_tus.models import TusSession
from rindle_tus.storage.s3 import S3Backend

from .conftest import PART, S3, LeaseWatch, TusClient, payload, session_for, sha256


@pytest.mark.parametrize("concurrency", [1, 2, 4])
def test_parts_commit_in_order_at_any_concurrency(tus: TusClient, s3: S3, settings: Any, concurrency: int) -> None:
    settings.RINDLE_TUS_UPLOAD_CONCURRENCY = concurrency
    data = payload(5 * PART + 99, seed=concurrency)
    url = tus.upload(data)
    session = session_for(url)
    assert [p["number"] for p in session.parts] == [1, 2, 3, 4, 5, 6]
    assert s3.sha256(session.key) == sha256(data)


def test_failed_part_keeps_the_parts_before_it(tus: TusClient, s3: S3, monkeypatch: pytest.MonkeyPatch) -> None:
    data = payload(4 * PART + 5, seed=7)
    url = tus.new(len(data))
    original = S3Backend.upload_part

    def flaky(self: S3Backend, key: str, upload_id: str, number: int, body: Any) -> str:
        if number == 3:
            raise StorageError("injected failure of part 3")
        return original(self, key, upload_id, number, body)

    monkeypatch.setattr(S3Backend, "upload_part", flaky)
    assert tus.patch(url, data, 0).status_code == 502
    session = session_for(url)
    assert [p["number"] for p in session.parts] == [1, 2]
    assert session.offset == 2 * PART
    monkeypatch.setattr(S3Backend, "upload_part", original)
    assert tus.patch(url, data[2 * PART :], 2 * PART).status_code == 204
    assert s3.sha256(session.key) == sha256(data)


def test_part_commits_are_paced_when_a_commit_is_slow(
    tus: TusClient, s3: S3, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    # A commit rewrites the whole parts list: with thousands of parts it takes
    # tens of milliseconds. The first part is committed at once; parts that
    # finish within SPACING x that time of the last commit wait for the next.
    # (Without write-behind, so that the request ends with every part committed.)
    settings.RINDLE_TUS_WRITE_BEHIND = 0
    original = Lease.commit
    committed: list[int] = []

    def slow(self: Lease, session: TusSession, **fields: Any) -> None:
        if "parts" in fields:
            committed.append(len(fields["parts"]))
            time.sleep(0.25)
        original(self, session, **fields)

    monkeypatch.setattr(Lease, "commit", slow)
    data = payload(6 * PART + 5, seed=8)
    url = tus.new(len(data))
    assert tus.patch(url, data[: 6 * PART], 0).status_code == 204
    assert committed[0] == 1 and committed[-1] == 6
    assert len(committed) <= 3, committed
    session = session_for(url)
    assert session.offset == 6 * PART and [p["number"] for p in session.parts] == [1, 2, 3, 4, 5, 6]
    assert tus.patch(url, data[6 * PART :], 6 * PART).status_code == 204
    assert s3.sha256(session.key) == sha256(data)


def test_the_lease_is_renewed_while_a_slow_part_uploads(
    tus: TusClient, s3: S3, settings: Any, lease_watch: LeaseWatch
) -> None:
    # The request thread blocks on the part upload (as it does without
    # write-behind, or past RINDLE_TUS_WRITE_BEHIND parts); S3 taking longer
    # than the lease must not let another request take over a live one.
    settings.RINDLE_TUS_LEASE_SECONDS = 0.6
    settings.RINDLE_TUS_WRITE_BEHIND = 0
    lease_watch.slow_down(S3Backend, "upload_part")
    data = payload(PART + 5, seed=9)
    url = tus.new(len(data))
    assert tus.patch(url, data[:PART], 0).status_code == 204
    # Renewed every third of the lease while the 2 s upload ran.
    assert len(lease_watch.renewals_during_the_slow_call()) >= 2, (lease_watch.renewals, lease_watch.windows)
    session = session_for(url)
    assert session.lease_token == "" and session.offset == PART
    lease_watch.monkeypatch.undo()
    assert tus.patch(url, data[PART:], PART).status_code == 204
    assert s3.sha256(session.key) == sha256(data)


def test_one_boto3_client_serves_every_thread(s3: S3) -> None:
    import threading

    clients: list[Any] = []
    threads = [threading.Thread(target=lambda: clients.append(S3Backend().client)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    clients.append(S3Backend().client)
    assert len({id(client) for client in clients}) == 1


def test_pooled_buffers_are_reused_and_never_leak_old_bytes(tus: TusClient, s3: S3) -> None:
    from rindle_tus.storage.buffers import pool

    pool._idle.clear()
    pool._bytes = 0
    stale = [bytearray(b"\xff" * PART) for _ in range(3)]
    for buffer in stale:
        pool.give(buffer)
    data = payload(3 * PART + 12345, seed=77)
    url = tus.new(len(data))
    # A tail first, then bodies that cut parts from it, then the last bytes.
    for start, end in ((0, 1_000_000), (1_000_000, PART + 2_000_000), (PART + 2_000_000, len(data))):
        assert tus.patch(url, data[start:end], start).status_code == 204
    assert s3.sha256(session_for(url).key) == sha256(data)
    assert any(buffer is pooled for buffer in stale for pooled in pool._idle)
