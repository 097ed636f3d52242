"""The cross-node guard and the tail invariant."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from rindle_tus import signals
from rindle_tus.models import State
from rindle_tus.storage import tus_tail_path

from .conftest import PART, S3, MiB, TusClient, parts_held, payload, session_for, sha256


def _snapshot(url: str) -> tuple[int, list[dict[str, object]], str]:
    session = session_for(url)
    return session.offset, list(session.parts), session.upload_id


def _assert_tail_missing(tus: TusClient, url: str, data: bytes, offset: int) -> None:
    before = _snapshot(url)
    response = tus.patch(url, data[offset : offset + MiB], offset)
    assert response.status_code == 503
    assert response.content.decode().startswith("tus_tail_missing:")
    assert _snapshot(url) == before


def test_committed_part_without_tail_is_missing(tus: TusClient) -> None:
    data = payload(12 * MiB)
    url = tus.new(len(data))
    tus.patch(url, data[: 6 * MiB], 0)
    tus_tail_path(session_for(url).id).unlink()
    _assert_tail_missing(tus, url, data, 6 * MiB)


def test_first_patch_at_offset_zero_needs_no_tail(tus: TusClient, tail_root: Path) -> None:
    data = payload(MiB)
    url = tus.new(2 * MiB)
    assert not tus_tail_path(session_for(url).id).exists()
    assert tus.patch(url, data, 0).status_code == 204


def test_upload_id_and_offset_without_part_or_tail_is_missing(tus: TusClient) -> None:
    data = payload(12 * MiB)
    url = tus.new(len(data))
    tus.patch(url, data[:MiB], 0)
    session = session_for(url)
    assert session.upload_id and not session.parts
    tus_tail_path(session.id).unlink()
    _assert_tail_missing(tus, url, data, MiB)


def test_upload_id_and_offset_with_its_tail_resumes(tus: TusClient, s3: S3) -> None:
    data = payload(12 * MiB)
    url = tus.new(len(data))
    tus.patch(url, data[:MiB], 0)
    assert tus.patch(url, data[MiB:], MiB).status_code == 204
    assert s3.sha256(session_for(url).key) == sha256(data)


def test_exact_part_boundary_without_tail_is_missing(tus: TusClient) -> None:
    data = payload(12 * MiB)
    url = tus.new(len(data))
    tus.patch(url, data[:PART], 0)
    session = session_for(url)
    assert session.offset == PART and parts_held(session) == [1]
    assert tus_tail_path(session.id).read_bytes() == b""
    tus_tail_path(session.id).unlink()
    _assert_tail_missing(tus, url, data, PART)


def test_tail_shorter_than_the_row_implies_is_missing(tus: TusClient) -> None:
    data = payload(12 * MiB)
    url = tus.new(len(data))
    tus.patch(url, data[: 2 * MiB], 0)
    path = tus_tail_path(session_for(url).id)
    path.write_bytes(data[:MiB])
    _assert_tail_missing(tus, url, data, 2 * MiB)


def test_tail_longer_than_the_row_implies_is_truncated(tus: TusClient, s3: S3) -> None:
    data = payload(12 * MiB)
    url = tus.new(len(data))
    tus.patch(url, data[: 2 * MiB], 0)
    path = tus_tail_path(session_for(url).id)
    with open(path, "ab") as fh:
        fh.write(b"debris of an interrupted request")
    assert tus.patch(url, data[2 * MiB :], 2 * MiB).status_code == 204
    assert s3.sha256(session_for(url).key) == sha256(data)


def test_tail_missing_is_logged_and_signalled(tus: TusClient, caplog: pytest.LogCaptureFixture) -> None:
    data = payload(12 * MiB)
    url = tus.new(len(data))
    tus.patch(url, data[:MiB], 0)
    session = session_for(url)
    tus_tail_path(session.id).unlink()
    received: list[dict[str, object]] = []

    def receiver(sender: object, **kwargs: object) -> None:
        received.append(kwargs)

    signals.tail_missing.connect(receiver)
    try:
        with caplog.at_level(logging.ERROR, logger="rindle_tus"):
            tus.patch(url, data[MiB : 2 * MiB], MiB)
    finally:
        signals.tail_missing.disconnect(receiver)
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert any(session.id in r.getMessage() and "test-node" in r.getMessage() for r in errors)
    assert len(received) == 1
    assert received[0]["node"] == "test-node"
    assert received[0]["tail_node"] == "test-node"


def test_completed_upload_leaves_no_tail(tus: TusClient) -> None:
    url = tus.upload(payload(PART + 3), chunk=MiB)
    session = session_for(url)
    assert session.state == State.COMPLETED
    assert not tus_tail_path(session.id).exists()


