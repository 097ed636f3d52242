"""Write-behind on a real S3: a PATCH is answered once the parts it cut are
in part files on this node's disk, while S3 is still receiving them; the
upload's next request commits them, or sends them from their files when
their uploads are not running in its process (another worker, a restart)."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.admin.utils import quote
from django.urls import reverse
from django.utils import timezone

from rindle_tus import maintenance, write_behind
from rindle_tus.maintenance import DONE
from rindle_tus.models import State, TusSession
from rindle_tus.storage import S3Backend, tus_part_path, tus_tail_path

from .conftest import PART, S3, Gate, MiB, TusClient, payload, session_for, sha256


def test_a_patch_is_answered_while_the_part_it_cut_is_still_on_its_way(tus: TusClient, s3: S3, gate: Gate) -> None:
    data = payload(2 * PART + MiB, seed=41)
    url = tus.new(len(data))
    response = tus.patch(url, data[: PART + 100], 0)
    assert response.status_code == 204
    assert response["Upload-Offset"] == str(PART + 100)
    session = session_for(url)
    # S3 has not got part 1, and the row says so: no part committed, the
    # offset past it, and part 1 whole in its part file.
    assert gate.started == [1] and gate.finished == []
    assert session.parts == [] and session.offset == PART + 100 and session.owed_parts == 1
    assert tus_part_path(session.id, 1).read_bytes() == data[:PART]
    assert tus_tail_path(session.id).read_bytes() == data[PART : PART + 100]

    gate.opened.set()
    gate.wait_finished(1)
    assert tus.patch(url, data[PART + 100 : PART + 200], PART + 100).status_code == 204
    session = session_for(url)
    # The next request committed the part the first one left, without sending it again.
    assert [p["number"] for p in session.parts] == [1] and session.offset == PART + 200
    assert gate.started == [1]
    assert not tus_part_path(session.id, 1).exists()
    assert tus.patch(url, data[PART + 200 :], PART + 200).status_code == 204
    session = session_for(url)
    assert session.state == State.COMPLETED
    assert s3.sha256(session.key) == sha256(data)
    assert not list(tus_tail_path(session.id).parent.iterdir())


def test_an_owed_part_no_upload_here_is_sending_goes_from_its_file(tus: TusClient, s3: S3, gate: Gate) -> None:
    """What another worker of the node, or this one after a restart, does."""
    data = payload(2 * PART + MiB, seed=42)
    url = tus.new(len(data))
    assert tus.patch(url, data[: PART + MiB], 0).status_code == 204
    session = session_for(url)
    assert session.owed_parts == 1
    # This process forgets the running upload, as a new process never knew it.
    write_behind.hints.forget(session.id)
    gate.opened.set()
    assert tus.patch(url, data[PART + MiB :], PART + MiB).status_code == 204
    session = session_for(url)
    assert session.state == State.COMPLETED
    assert gate.started.count(1) == 2
    assert s3.sha256(session.key) == sha256(data)


def test_a_head_answers_the_offset_the_part_files_hold(tus: TusClient, s3: S3, gate: Gate) -> None:
    data = payload(PART + MiB, seed=43)
    url = tus.new(len(data))
    assert tus.patch(url, data[: PART + 10], 0).status_code == 204
    assert tus.head(url)["Upload-Offset"] == str(PART + 10)
    gate.opened.set()
    assert tus.patch(url, data[PART + 10 :], PART + 10).status_code == 204
    assert s3.sha256(session_for(url).key) == sha256(data)


def test_more_parts_than_the_setting_lets_wait_are_waited_for(
    tus: TusClient, s3: S3, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.RINDLE_TUS_WRITE_BEHIND = 1
    running: list[int] = []
    most = [0]
    original = S3Backend.upload_part

    def counted(backend: S3Backend, key: str, upload_id: str, number: int, body: Any) -> str:
        running.append(number)
        most[0] = max(most[0], len(running))
        try:
            threading.Event().wait(0.3)
            return original(backend, key, upload_id, number, body)
        finally:
            running.remove(number)

    monkeypatch.setattr(S3Backend, "upload_part", counted)
    data = payload(4 * PART + MiB, seed=44)
    url = tus.new(len(data))
    assert tus.patch(url, data[: 3 * PART + 1], 0).status_code == 204
    session = session_for(url)
    # Three parts cut, at most one left on its way.
    assert session.offset == 3 * PART + 1
    assert session.owed_parts <= 1 and len(session.parts) >= 2
    assert tus.patch(url, data[3 * PART + 1 :], 3 * PART + 1).status_code == 204
    assert s3.sha256(session_for(url).key) == sha256(data)


def test_write_behind_off_answers_once_s3_has_every_part(tus: TusClient, s3: S3, settings: Any) -> None:
    settings.RINDLE_TUS_WRITE_BEHIND = 0
    data = payload(2 * PART + 5, seed=45)
    url = tus.new(len(data))
    assert tus.patch(url, data[: 2 * PART + 1], 0).status_code == 204
    session = session_for(url)
    assert [p["number"] for p in session.parts] == [1, 2] and session.owed_parts == 0
    assert not tus_part_path(session.id, 1).exists()
    assert tus.patch(url, data[2 * PART + 1 :], 2 * PART + 1).status_code == 204
    assert s3.sha256(session_for(url).key) == sha256(data)


def test_a_missing_part_file_fails_loudly_and_keeps_the_offset(tus: TusClient, s3: S3, gate: Gate) -> None:
    data = payload(PART + MiB, seed=46)
    url = tus.new(len(data))
    assert tus.patch(url, data[: PART + 10], 0).status_code == 204
    session = session_for(url)
    gate.opened.set()
    gate.wait_finished(1)
    # Forgotten here too: the part is on no disk and in no running upload.
    write_behind.hints.forget(session.id)
    tus_part_path(session.id, 1).unlink()
    response = tus.patch(url, data[PART + 10 :], PART + 10)
    assert response.status_code == 503 and b"tus_tail_missing" in response.content
    assert session_for(url).offset == PART + 10


def test_a_delete_while_a_part_is_on_its_way_leaves_nothing(tus: TusClient, s3: S3, gate: Gate) -> None:
    data = payload(2 * PART, seed=47)
    url = tus.new(len(data))
    assert tus.patch(url, data[: PART + 10], 0).status_code == 204
    session = session_for(url)
    assert tus.delete(url).status_code == 204
    gate.opened.set()
    gate.wait_finished(1)
    assert not list(tus_tail_path(session.id).parent.iterdir())
    assert s3.multipart_uploads(session.key) == []
    assert not s3.exists(session.key)


def test_an_expiry_while_a_part_is_on_its_way_leaves_nothing_after_the_reaper(
    tus: TusClient, s3: S3, gate: Gate
) -> None:
    data = payload(2 * PART, seed=48)
    url = tus.new(len(data))
    assert tus.patch(url, data[: PART + 10], 0).status_code == 204
    session = session_for(url)
    TusSession.objects.filter(pk=session.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    report = maintenance.reap_expired()
    assert report.count(maintenance.EXPIRE, DONE) == 1
    gate.opened.set()
    gate.wait_finished(1)
    assert not list(tus_tail_path(session.id).parent.iterdir())
    assert s3.multipart_uploads(session.key) == []
    session.refresh_from_db()
    assert session.state == State.EXPIRED


def test_with_the_shared_tail_store_a_patch_answers_once_s3_has_its_parts(
    tus: TusClient, s3: S3, settings: Any
) -> None:
    """Write-behind keeps parts on the disk of the node that received them,
    which the shared tail exists to do without: any node must be able to go on."""
    settings.RINDLE_TUS_TAIL_STORE = "s3"
    data = payload(2 * PART + 5, seed=49)
    url = tus.new(len(data))
    assert tus.patch(url, data[: PART + 1], 0).status_code == 204
    session = session_for(url)
    assert [p["number"] for p in session.parts] == [1] and session.owed_parts == 0
    assert not tus_part_path(session.id, 1).exists()
    assert tus.patch(url, data[PART + 1 :], PART + 1).status_code == 204
    assert s3.sha256(session_for(url).key) == sha256(data)


def test_the_admin_shows_the_parts_waiting_for_s3(tus: TusClient, s3: S3, gate: Gate, admin_client: Any) -> None:
    data = payload(2 * PART, seed=50)
    url = tus.new(len(data))
    assert tus.patch(url, data[: PART + 10], 0).status_code == 204
    session = session_for(url)
    body = admin_client.get(reverse("admin:rindle_tus_tussession_change", args=[quote(session.pk)])).content.decode()
    assert "present on this node (test-node): 10 bytes (10 of them committed), and 1 part in a part file" in body
    gate.opened.set()
