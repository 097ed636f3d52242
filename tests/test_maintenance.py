"""The reaper against the real S3, the real database and real tail files."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from rindle_tus import maintenance
from rindle_tus.exceptions import StorageError
from rindle_tus.locking import Lease
from rindle_tus.maintenance import (
    ABORT,
    ABORT_ORPHAN,
    DELETE_OBJECT,
    DELETE_ROW,
    DONE,
    EXPIRE,
    FAILED,
    GONE,
    SWEEP_TAIL,
    WOULD,
)
from rindle_tus.models import State, TusSession
from rindle_tus.signals import upload_finished
from rindle_tus.storage import S3Backend, tus_tail_path

from .conftest import PART, S3, MiB, TusClient, payload, session_for, sha256

LONG_AGO = timedelta(days=400)


@pytest.fixture
def prefix(settings: Any) -> str:
    """A key prefix of this test's own, so the reaper only sees this test's uploads."""
    settings.RINDLE_TUS_KEY_PREFIX = f"reap-{uuid.uuid4().hex[:12]}/"
    return f"site/{settings.RINDLE_TUS_KEY_PREFIX}"


def receiving(tus: TusClient, size: int = 10 * MiB, sent: int = MiB, seed: int = 0) -> tuple[TusSession, bytes]:
    """A session part-way through: a multipart upload in S3 and a tail on this node."""
    data = payload(size, seed)
    url = tus.new(size, metadata={"filename": f"file-{seed}.bin".encode()})
    assert tus.patch(url, data[:sent], 0).status_code == 204
    session = session_for(url)
    assert session.upload_id and tus_tail_path(session.pk).exists()
    return session, data


def expire(session: TusSession) -> None:
    TusSession.objects.filter(pk=session.pk).update(expires_at=timezone.now() - timedelta(seconds=1))


def finish(tus: TusClient, session: TusSession, data: bytes) -> None:
    session.refresh_from_db()
    url = f"/files/{session.pk}"
    assert tus.patch(url, data[session.offset :], session.offset).status_code == 204


def with_failed_completion(tus: TusClient, s3: S3, seed: int = 0) -> tuple[TusSession, bytes]:
    """All bytes in committed parts, offset == length, but the multipart upload never completed."""
    data = payload(PART + 1000, seed)
    # Part 1 committed when the PATCH answers (not left on its way to S3).
    with override_settings(RINDLE_TUS_WRITE_BEHIND=0):
        session, _ = receiving(tus, size=len(data), sent=PART + 500, seed=seed)
    data = payload(len(data), seed)
    last = data[PART:]
    etag = s3.client.upload_part(
        Bucket=s3.bucket, Key=session.key, UploadId=session.upload_id, PartNumber=2, Body=last
    )["ETag"]
    parts = [*session.parts, {"number": 2, "etag": etag, "size": len(last)}]
    TusSession.objects.filter(pk=session.pk).update(
        parts=parts, offset=len(data), last_error="storage_error: The object store failed to complete."
    )
    session.refresh_from_db()
    return session, data


def upload_ids(s3: S3, prefix: str) -> set[str]:
    return {u["UploadId"] for u in s3.multipart_uploads(prefix)}


def orphan(s3: S3, key: str) -> str:
    return str(s3.client.create_multipart_upload(Bucket=s3.bucket, Key=key)["UploadId"])


def make_old(path: Path) -> None:
    stamp = time.time() - LONG_AGO.total_seconds()
    os.utime(path, (stamp, stamp), follow_symlinks=False)


# -- expired sessions --------------------------------------------------------


def test_expired_session_is_aborted_its_tail_deleted_and_marked_expired(tus: TusClient, s3: S3, prefix: str) -> None:
    session, _ = receiving(tus)
    expire(session)
    report = maintenance.reap_expired()
    session.refresh_from_db()
    assert session.state == State.EXPIRED
    assert session.last_error == ""
    assert session.lease_token == ""
    assert upload_ids(s3, prefix) == set()
    assert not tus_tail_path(session.pk).exists()
    assert report.count(EXPIRE, DONE) == 1
    assert report.count(ABORT, DONE) == 1


def test_active_session_and_its_tail_are_untouched_and_it_still_completes(
    tus: TusClient, s3: S3, prefix: str
) -> None:
    session, data = receiving(tus)
    tail = tus_tail_path(session.pk).read_bytes()
    report = maintenance.reap()
    assert report.actions == []
    assert upload_ids(s3, prefix) == {session.upload_id}
    assert tus_tail_path(session.pk).read_bytes() == tail
    finish(tus, session, data)
    assert s3.sha256(session.key) == sha256(data)


def test_leased_session_is_untouched_even_past_its_expiry(tus: TusClient, s3: S3, prefix: str) -> None:
    session, _ = receiving(tus)
    expire(session)
    lease = Lease.acquire(session.pk)
    assert maintenance.reap_expired().actions == []
    assert maintenance.sweep_tails().actions == []
    session.refresh_from_db()
    assert session.state == State.RECEIVING
    assert session.lease_token == lease.token
    assert upload_ids(s3, prefix) == {session.upload_id}
    assert tus_tail_path(session.pk).exists()
    lease.release()
    assert maintenance.reap_expired().count(EXPIRE, DONE) == 1


def test_dry_run_changes_nothing(tus: TusClient, s3: S3, prefix: str) -> None:
    session, _ = receiving(tus)
    expire(session)
    stray = orphan(s3, f"{prefix}stray")
    TusSession.objects.create(
        part_size=PART, key=f"{prefix}old", state=State.COMPLETED, updated_at=timezone.now() - LONG_AGO
    )
    before = list(TusSession.objects.order_by("pk").values())
    report = maintenance.reap(dry_run=True)
    orphans = maintenance.reap_orphans(dry_run=True, now=timezone.now() + LONG_AGO)
    assert list(TusSession.objects.order_by("pk").values()) == before
    assert upload_ids(s3, prefix) == {session.upload_id, stray}
    assert tus_tail_path(session.pk).exists()
    assert {a.result for a in report.actions + orphans.actions} == {WOULD}
    assert report.count(EXPIRE, WOULD) == 1
    assert report.count(ABORT, WOULD) == 1
    assert report.count(SWEEP_TAIL, WOULD) == 1
    assert report.count(DELETE_ROW, WOULD) == 1
    assert orphans.count(ABORT_ORPHAN, WOULD) == 1


def test_failed_abort_leaves_a_marker_and_the_next_run_retries_it(tus: TusClient, s3: S3, prefix: str) -> None:
    session, _ = receiving(tus)
    expire(session)
    broken = S3Backend()
    broken.bucket = f"missing-{uuid.uuid4().hex[:8]}"
    first = maintenance.reap_expired(backend=broken)
    session.refresh_from_db()
    assert session.state == State.EXPIRED
    assert session.last_error
    assert first.count(ABORT, FAILED) == 1
    assert upload_ids(s3, prefix) == {session.upload_id}
    second = maintenance.reap_expired()
    session.refresh_from_db()
    assert session.last_error == ""
    assert second.count(ABORT, DONE) == 1
    assert upload_ids(s3, prefix) == set()


def test_one_failing_session_does_not_stop_the_rest(tus: TusClient, s3: S3, prefix: str) -> None:
    bad, _ = receiving(tus, seed=1)
    good, _ = receiving(tus, seed=2)
    # An empty key is refused by the S3 client itself.
    TusSession.objects.filter(pk=bad.pk).update(key="")
    expire(bad)
    expire(good)
    report = maintenance.reap_expired()
    assert len(report.failed) == 1
    bad.refresh_from_db()
    good.refresh_from_db()
    assert (bad.state, bool(bad.last_error)) == (State.EXPIRED, True)
    assert (good.state, good.last_error) == (State.EXPIRED, "")
    assert upload_ids(s3, prefix) == {bad.upload_id}


def test_terminated_session_whose_abort_failed_is_retried_and_its_error_cleared(
    tus: TusClient, s3: S3, prefix: str
) -> None:
    session, _ = receiving(tus)
    TusSession.objects.filter(pk=session.pk).update(state=State.TERMINATED, last_error="storage_error: abort failed")
    report = maintenance.reap_expired()
    session.refresh_from_db()
    assert (session.state, session.last_error) == (State.TERMINATED, "")
    assert report.count(maintenance.CLEAR_ERROR, DONE) == 1
    assert upload_ids(s3, prefix) == set()
    assert not tus_tail_path(session.pk).exists()


def test_terminated_finished_upload_whose_delete_failed_has_its_object_deleted(
    tus: TusClient, s3: S3, prefix: str
) -> None:
    data = payload(PART + 10)
    session = session_for(tus.upload(data))
    assert s3.sha256(session.key) == sha256(data)
    TusSession.objects.filter(pk=session.pk).update(state=State.TERMINATED, last_error="storage_error: delete failed")
    report = maintenance.reap_expired()
    assert report.count(maintenance.DELETE_OBJECT, DONE) == 1
    assert not s3.exists(session.key)


def test_active_receiving_session_with_a_last_error_is_not_reaped(tus: TusClient, s3: S3, prefix: str) -> None:
    session, _ = with_failed_completion(tus, s3)
    assert maintenance.reap_expired().actions == []
    assert upload_ids(s3, prefix) == {session.upload_id}


# -- orphans -----------------------------------------------------------------


def test_orphan_multipart_upload_past_the_orphan_age_is_aborted(tus: TusClient, s3: S3, prefix: str) -> None:
    live, _ = receiving(tus)
    stray = orphan(s3, f"{prefix}left-by-another-server")
    report = maintenance.reap_orphans(now=timezone.now() + LONG_AGO)
    assert [a.detail.split(",")[0] for a in report.actions] == [f"upload id {stray}"]
    assert report.count(ABORT_ORPHAN, DONE) == 1
    assert upload_ids(s3, prefix) == {live.upload_id}


def test_young_orphans_and_uploads_outside_the_prefix_are_kept(s3: S3, db: None, prefix: str) -> None:
    young = orphan(s3, f"{prefix}young")
    outside_key = f"elsewhere-{uuid.uuid4().hex[:8]}/file"
    outside = orphan(s3, outside_key)
    try:
        assert maintenance.reap_orphans().actions == []
        maintenance.reap_orphans(now=timezone.now() + LONG_AGO)
        assert upload_ids(s3, outside_key) == {outside}
        assert young not in upload_ids(s3, prefix)
    finally:
        s3.client.abort_multipart_upload(Bucket=s3.bucket, Key=outside_key, UploadId=outside)


def test_orphan_of_an_expired_but_unreaped_session_is_left_to_the_session_reaper(
    tus: TusClient, s3: S3, prefix: str
) -> None:
    session, _ = receiving(tus)
    expire(session)
    assert maintenance.reap_orphans(now=timezone.now() + LONG_AGO).actions == []
    assert upload_ids(s3, prefix) == {session.upload_id}


# -- tail sweep --------------------------------------------------------------


def test_tail_sweep_deletes_tails_of_finished_expired_and_gone_sessions(
    tus: TusClient, s3: S3, prefix: str, tail_root: Path
) -> None:
    completed, _ = receiving(tus, seed=1)
    terminated, _ = receiving(tus, seed=2)
    failed, _ = receiving(tus, seed=3)
    expired, _ = receiving(tus, seed=4)
    TusSession.objects.filter(pk=completed.pk).update(state=State.COMPLETED)
    TusSession.objects.filter(pk=terminated.pk).update(state=State.TERMINATED)
    TusSession.objects.filter(pk=failed.pk).update(state=State.FAILED)
    expire(expired)
    gone = tus_tail_path("a-session-that-was-deleted")
    gone.write_bytes(b"x")
    make_old(gone)
    report = maintenance.sweep_tails()
    for session in (completed, terminated, failed, expired):
        assert not tus_tail_path(session.pk).exists()
    assert not gone.exists()
    assert report.count(SWEEP_TAIL, DONE) == 5


def test_tail_sweep_keeps_active_tails_even_when_old(tus: TusClient, s3: S3, prefix: str) -> None:
    session, data = receiving(tus)
    make_old(tus_tail_path(session.pk))
    assert maintenance.sweep_tails().actions == []
    finish(tus, session, data)
    assert s3.sha256(session.key) == sha256(data)


def test_tail_sweep_keeps_a_fresh_tail_whose_row_it_cannot_see_yet(db: None, tail_root: Path) -> None:
    fresh = tus_tail_path("row-not-committed-yet")
    fresh.parent.mkdir(parents=True)
    fresh.write_bytes(b"x")
    assert maintenance.sweep_tails().actions == []
    assert fresh.exists()


def test_tail_sweep_never_touches_symlinks_folders_or_other_files(db: None, tail_root: Path, tmp_path: Path) -> None:
    folder = tus_tail_path("x").parent
    folder.mkdir(parents=True)
    outside = tmp_path / "precious.tail"
    outside.write_bytes(b"keep me")
    link = folder / tus_tail_path("a-gone-session").name
    link.symlink_to(outside)
    make_old(link)
    other = folder / "notes.txt"
    other.write_bytes(b"not ours")
    make_old(other)
    subfolder = folder / f"{tus_tail_path('another-gone-one').name}"
    subfolder.mkdir()
    assert maintenance.sweep_tails().actions == []
    assert link.is_symlink() and outside.read_bytes() == b"keep me"
    assert other.exists() and subfolder.is_dir()


def test_old_temp_file_is_swept_and_a_young_one_kept(db: None, tail_root: Path) -> None:
    folder = tus_tail_path("x").parent
    folder.mkdir(parents=True)
    old = folder / "debris.tmp"
    old.write_bytes(b"x")
    make_old(old)
    young = folder / "in-flight.tmp"
    young.write_bytes(b"x")
    report = maintenance.sweep_tails()
    assert report.count(SWEEP_TAIL, DONE) == 1
    assert not old.exists() and young.exists()


# -- old rows ----------------------------------------------------------------


def test_old_finished_rows_are_deleted_after_the_retention_and_their_objects_kept(
    tus: TusClient, s3: S3, prefix: str
) -> None:
    data = payload(100)
    session = session_for(tus.upload(data))
    TusSession.objects.filter(pk=session.pk).update(updated_at=timezone.now() - LONG_AGO)
    report = maintenance.delete_old_rows()
    assert report.count(DELETE_ROW, DONE) == 1
    assert not TusSession.objects.filter(pk=session.pk).exists()
    assert s3.sha256(session.key) == sha256(data)


def test_old_partial_uploads_go_with_their_objects_and_the_final_stays(tus: TusClient, s3: S3, prefix: str) -> None:
    first, second = payload(PART + 3, seed=31), payload(1000, seed=32)
    partials = [session_for(tus.upload(d, headers={"Upload-Concat": "partial"})) for d in (first, second)]
    concat = "final;" + " ".join(f"/files/{p.pk}" for p in partials)
    response = tus.request("POST", "/files/", headers={"Upload-Concat": concat}, content_type="")
    assert response.status_code == 201, response.content
    final = session_for(str(response["Location"]))
    assert s3.sha256(final.key) == sha256(first + second)
    TusSession.objects.update(updated_at=timezone.now() - LONG_AGO)

    dry = maintenance.delete_old_rows(dry_run=True)
    assert {a.target for a in dry.actions if a.kind == DELETE_OBJECT} == {p.pk for p in partials}
    assert all(s3.exists(p.key) for p in partials)

    report = maintenance.delete_old_rows()
    assert report.count(DELETE_OBJECT, DONE) == 2 and report.count(DELETE_ROW, DONE) == 3
    assert not any(s3.exists(p.key) for p in partials)
    assert s3.sha256(final.key) == sha256(first + second)


def test_a_partial_whose_object_cannot_be_deleted_keeps_its_row(
    tus: TusClient, s3: S3, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = payload(1000, seed=33)
    partial = session_for(tus.upload(data, headers={"Upload-Concat": "partial"}))
    TusSession.objects.filter(pk=partial.pk).update(updated_at=timezone.now() - LONG_AGO)

    def refuse(self: S3Backend, key: str) -> None:
        raise StorageError("S3 is down")

    monkeypatch.setattr(S3Backend, "delete", refuse)
    report = maintenance.delete_old_rows()
    assert report.count(DELETE_OBJECT, FAILED) == 1 and report.count(DELETE_ROW, DONE) == 0
    assert TusSession.objects.filter(pk=partial.pk).exists()
    monkeypatch.undo()
    report = maintenance.delete_old_rows()
    assert report.count(DELETE_OBJECT, DONE) == 1 and report.count(DELETE_ROW, DONE) == 1
    assert not s3.exists(partial.key)


def test_receiving_recent_failed_and_pending_rows_are_kept(db: None, prefix: str) -> None:
    old = timezone.now() - LONG_AGO
    kept = [
        TusSession.objects.create(part_size=PART, key="k1", state=State.RECEIVING, updated_at=old),
        TusSession.objects.create(part_size=PART, key="k2", state=State.COMPLETED),
        TusSession.objects.create(part_size=PART, key="k3", state=State.FAILED, updated_at=old),
        TusSession.objects.create(part_size=PART, key="k4", state=State.TERMINATED, updated_at=old, last_error="x"),
    ]
    deleted = [
        TusSession.objects.create(part_size=PART, key=f"d-{state}", state=state, updated_at=old)
        for state in (State.COMPLETED, State.EXPIRED, State.TERMINATED)
    ]
    report = maintenance.delete_old_rows()
    assert {a.target for a in report.actions} == {s.pk for s in deleted}
    assert set(TusSession.objects.values_list("pk", flat=True)) == {s.pk for s in kept}


# -- everything at once ------------------------------------------------------


def test_after_reaping_only_live_uploads_and_their_tails_remain(tus: TusClient, s3: S3, prefix: str) -> None:
    active, active_data = receiving(tus, seed=1)
    leased, _ = receiving(tus, seed=2)
    expired, _ = receiving(tus, seed=3)
    terminated, _ = receiving(tus, seed=4)
    expire(leased)
    expire(expired)
    lease = Lease.acquire(leased.pk)
    TusSession.objects.filter(pk=terminated.pk).update(state=State.TERMINATED, last_error="storage_error: x")
    orphan(s3, f"{prefix}stray")
    maintenance.reap()
    maintenance.reap_orphans(now=timezone.now() + LONG_AGO)
    assert upload_ids(s3, prefix) == {active.upload_id, leased.upload_id}
    tails = {p.name for p in tus_tail_path("x").parent.iterdir()}
    assert tails == {tus_tail_path(active.pk).name, tus_tail_path(leased.pk).name}
    lease.release()
    finish(tus, active, active_data)
    assert s3.sha256(active.key) == sha256(active_data)


# -- two reapers at once -----------------------------------------------------


class InterleavingBackend(S3Backend):
    """The real S3, with a second reaper run in the middle of the first abort."""

    def __init__(self, during_first_abort: Callable[[], None]) -> None:
        super().__init__()
        self.during_first_abort: Callable[[], None] | None = during_first_abort

    def abort(self, key: str, upload_id: str) -> None:
        hook, self.during_first_abort = self.during_first_abort, None
        if hook:
            hook()
        super().abort(key, upload_id)


def test_a_second_reaper_during_the_first_does_each_thing_once(tus: TusClient, s3: S3, prefix: str) -> None:
    sessions = [receiving(tus, seed=n)[0] for n in range(4)]
    for session in sessions:
        expire(session)
    inner: list[maintenance.Report] = []
    backend = InterleavingBackend(lambda: inner.append(maintenance.reap_expired(batch_size=2)))
    outer = maintenance.reap_expired(backend=backend, batch_size=1)
    assert inner and inner[0].count(EXPIRE, DONE) >= 1
    expired = Counter(a.target for a in outer.actions + inner[0].actions if a.kind == EXPIRE and a.result == DONE)
    aborted = Counter(a.detail for a in outer.actions + inner[0].actions if a.kind == ABORT and a.result == DONE)
    assert expired == Counter({s.pk: 1 for s in sessions})
    assert aborted == Counter({f"upload id {s.upload_id}": 1 for s in sessions})
    assert upload_ids(s3, prefix) == set()


def _in_threads(count: int, run: Callable[[], maintenance.Report]) -> list[maintenance.Report]:
    barrier = threading.Barrier(count)
    reports: list[maintenance.Report] = []
    errors: list[BaseException] = []

    def work() -> None:
        from django.db import connection as thread_connection

        try:
            barrier.wait()
            reports.append(run())
        except BaseException as exc:  # noqa: BLE001  (re-raised in the test)
            errors.append(exc)
        finally:
            thread_connection.close()

    threads = [threading.Thread(target=work) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return reports


@pytest.mark.django_db(transaction=True)
def test_two_reapers_in_threads_do_each_thing_once(tus: TusClient, s3: S3, prefix: str) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serialises writers; the interleaved test covers it there")
    sessions = [receiving(tus, size=6 * MiB, sent=1000, seed=n)[0] for n in range(12)]
    for session in sessions:
        expire(session)
    reports = _in_threads(2, lambda: maintenance.reap_expired(batch_size=2))
    actions = [a for report in reports for a in report.actions]
    assert Counter(a.target for a in actions if a.kind == EXPIRE and a.result == DONE) == Counter(
        {s.pk: 1 for s in sessions}
    )
    assert sum(1 for a in actions if a.kind == ABORT and a.result == DONE) == len(sessions)
    assert upload_ids(s3, prefix) == set()


@pytest.mark.django_db(transaction=True)
def test_two_orphan_reapers_in_threads_abort_each_upload_once(s3: S3, prefix: str) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("only PostgreSQL keeps a second orphan reaper out")
    strays = {orphan(s3, f"{prefix}stray-{n}") for n in range(6)}
    later = timezone.now() + LONG_AGO
    reports = _in_threads(2, lambda: maintenance.reap_orphans(now=later))
    actions = [a for report in reports for a in report.actions]
    done = Counter(a.detail.split(",")[0] for a in actions if a.result == DONE)
    assert done == Counter({f"upload id {u}": 1 for u in strays})
    assert all(a.result in (DONE, GONE) or a.kind == maintenance.STEP for a in actions)
    assert upload_ids(s3, prefix) == set()


# -- operator actions --------------------------------------------------------


def test_retry_completion_completes_the_upload_and_sends_upload_finished(
    tus: TusClient, s3: S3, prefix: str, django_capture_on_commit_callbacks: Any
) -> None:
    session, data = with_failed_completion(tus, s3)
    received: list[dict[str, Any]] = []

    def on_finished(**kwargs: Any) -> None:
        received.append(kwargs)

    upload_finished.connect(on_finished)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            report = maintenance.retry_completion([session.pk])
    finally:
        upload_finished.disconnect(on_finished)
    assert report.count(maintenance.COMPLETE, DONE) == 1
    session.refresh_from_db()
    assert (session.state, session.last_error, session.lease_token) == (State.COMPLETED, "", "")
    assert s3.sha256(session.key) == sha256(data)
    assert not tus_tail_path(session.pk).exists()
    assert [(r["key"], r["size"]) for r in received] == [(session.key, len(data))]


def test_retry_completion_skips_an_upload_still_missing_bytes(tus: TusClient, s3: S3, prefix: str) -> None:
    session, _ = receiving(tus)
    report = maintenance.retry_completion([session.pk])
    assert report.count(maintenance.COMPLETE, maintenance.SKIPPED) == 1
    session.refresh_from_db()
    assert session.state == State.RECEIVING
    assert upload_ids(s3, prefix) == {session.upload_id}


def test_terminate_sessions_aborts_and_deletes_the_tail_but_leaves_completed_uploads(
    tus: TusClient, s3: S3, prefix: str
) -> None:
    session, _ = receiving(tus)
    data = payload(100, seed=9)
    completed = session_for(tus.upload(data))
    report = maintenance.terminate_sessions([session.pk, completed.pk])
    assert report.count(maintenance.TERMINATE, DONE) == 1
    assert report.count(maintenance.TERMINATE, maintenance.SKIPPED) == 1
    session.refresh_from_db()
    assert session.state == State.TERMINATED
    assert upload_ids(s3, prefix) == set()
    assert not tus_tail_path(session.pk).exists()
    assert s3.sha256(completed.key) == sha256(data)


def test_reap_selected_reaps_only_the_selected_and_never_an_active_one(tus: TusClient, s3: S3, prefix: str) -> None:
    active, _ = receiving(tus, seed=1)
    chosen, _ = receiving(tus, seed=2)
    other, _ = receiving(tus, seed=3)
    expire(chosen)
    expire(other)
    report = maintenance.reap_selected([active.pk, chosen.pk])
    assert report.count(EXPIRE, DONE) == 1
    assert report.count(maintenance.STEP, maintenance.SKIPPED) == 1
    assert upload_ids(s3, prefix) == {active.upload_id, other.upload_id}
    assert TusSession.objects.get(pk=other.pk).state == State.RECEIVING


def test_expired_upload_with_every_byte_committed_is_completed_not_thrown_away(
    tus: TusClient, s3: S3, prefix: str
) -> None:
    session, data = with_failed_completion(tus, s3, seed=11)
    expire(session)
    report = maintenance.reap_expired()
    assert report.count(maintenance.COMPLETE, DONE) == 1
    assert report.count(EXPIRE) == 0
    session.refresh_from_db()
    assert (session.state, session.lease_token) == (State.COMPLETED, "")
    assert s3.sha256(session.key) == sha256(data)


def test_expired_session_with_shared_tail_has_it_deleted(tus: TusClient, s3: S3, prefix: str, settings: Any) -> None:
    from rindle_tus.storage.shared_tail import tus_tail_key

    settings.RINDLE_TUS_TAIL_STORE = "s3"
    session, _ = receiving_shared(tus)
    key = tus_tail_key(session.pk, S3Backend())
    assert s3.exists(key)
    expire(session)
    maintenance.reap_expired()
    assert not s3.exists(key)
    session.refresh_from_db()
    assert session.state == State.EXPIRED


def receiving_shared(tus: TusClient) -> tuple[TusSession, bytes]:
    data = payload(10 * MiB, 12)
    url = tus.new(len(data))
    assert tus.patch(url, data[:MiB], 0).status_code == 204
    return session_for(url), data
