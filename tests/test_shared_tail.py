"""The shared tail store: any node resumes any upload, byte-exact."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rindle_tus.storage import S3Backend, tus_tail_path
from rindle_tus.storage.shared_tail import S3Tail, tus_tail_key

from .conftest import PART, S3, LeaseWatch, MiB, TusClient, payload, session_for, sha256


def _on_node(settings: Any, tmp_path: Path, name: str) -> None:
    settings.RINDLE_TUS_NODE_NAME = name
    settings.RINDLE_TUS_TMP_DIR = str(tmp_path / name)


def _round_robin(tus: TusClient, settings: Any, tmp_path: Path, data: bytes, chunk: int) -> tuple[str, list[int]]:
    url = tus.new(len(data))
    statuses = []
    offset = 0
    nodes = ["node-a", "node-b", "node-c"]
    index = 0
    while offset < len(data):
        _on_node(settings, tmp_path, nodes[index % len(nodes)])
        index += 1
        response = tus.patch(url, data[offset : offset + chunk], offset)
        statuses.append(response.status_code)
        if response.status_code != 204:
            break
        offset = int(response["Upload-Offset"])
    return url, statuses


def test_round_robin_with_local_tails_fails_loudly(tus: TusClient, settings: Any, tmp_path: Path) -> None:
    data = payload(2 * PART + 3 * MiB)
    url, statuses = _round_robin(tus, settings, tmp_path, data, 3_000_000)
    assert statuses == [204, 503]
    assert session_for(url).offset == 3_000_000


@pytest.mark.parametrize("chunk", [3_000_000, PART, MiB])
def test_round_robin_with_shared_tails_is_byte_exact(
    tus: TusClient, s3: S3, settings: Any, tmp_path: Path, chunk: int
) -> None:
    settings.RINDLE_TUS_TAIL_STORE = "s3"
    data = payload(2 * PART + 3 * MiB, seed=chunk)
    url, statuses = _round_robin(tus, settings, tmp_path, data, chunk)
    assert set(statuses) == {204}
    session = session_for(url)
    assert s3.sha256(session.key) == sha256(data)
    assert not list(tmp_path.glob("node-*/tus/*.tail"))
    assert not s3.exists(tus_tail_key(session.id, S3Backend()))


def test_shared_tail_object_holds_the_buffered_bytes(tus: TusClient, s3: S3, settings: Any) -> None:
    settings.RINDLE_TUS_TAIL_STORE = "s3"
    data = payload(3 * PART)
    url = tus.new(len(data))
    tus.patch(url, data[: PART + MiB], 0)
    session = session_for(url)
    key = tus_tail_key(session.id, S3Backend())
    assert key.startswith("site/tus/.tails/")
    body = s3.client.get_object(Bucket=s3.bucket, Key=key)["Body"].read()
    assert body == data[PART : PART + MiB]
    assert not tus_tail_path(session.id).exists()


def test_lost_shared_tail_is_tail_missing(tus: TusClient, s3: S3, settings: Any) -> None:
    settings.RINDLE_TUS_TAIL_STORE = "s3"
    data = payload(3 * PART)
    url = tus.new(len(data))
    tus.patch(url, data[:MiB], 0)
    s3.client.delete_object(Bucket=s3.bucket, Key=tus_tail_key(session_for(url).id, S3Backend()))
    response = tus.patch(url, data[MiB : 2 * MiB], MiB)
    assert response.status_code == 503
    assert session_for(url).offset == MiB


def test_debris_in_shared_tail_is_ignored(tus: TusClient, s3: S3, settings: Any) -> None:
    settings.RINDLE_TUS_TAIL_STORE = "s3"
    data = payload(2 * PART)
    url = tus.new(len(data))
    tus.patch(url, data[:MiB], 0)
    key = tus_tail_key(session_for(url).id, S3Backend())
    s3.client.put_object(Bucket=s3.bucket, Key=key, Body=data[:MiB] + b"debris")
    assert tus.patch(url, data[MiB:], MiB).status_code == 204
    assert s3.sha256(session_for(url).key) == sha256(data)


def test_terminating_removes_the_shared_tail(tus: TusClient, s3: S3, settings: Any) -> None:
    settings.RINDLE_TUS_TAIL_STORE = "s3"
    data = payload(2 * PART)
    url = tus.new(len(data))
    tus.patch(url, data[:MiB], 0)
    key = tus_tail_key(session_for(url).id, S3Backend())
    assert s3.exists(key)
    assert tus.delete(url).status_code == 204
    assert not s3.exists(key)


def test_the_lease_is_renewed_while_a_slow_tail_put_runs(
    tus: TusClient, s3: S3, settings: Any, lease_watch: LeaseWatch
) -> None:
    # boto3 retries a PUT that timed out; while any attempt may still land,
    # no newer request may take the upload over and write its own tail.
    settings.RINDLE_TUS_TAIL_STORE = "s3"
    settings.RINDLE_TUS_LEASE_SECONDS = 0.6
    lease_watch.slow_down(S3Tail, "store")
    data = payload(PART + 2 * MiB, seed=61)
    url = tus.new(len(data))
    assert tus.patch(url, data[:MiB], 0).status_code == 204
    assert len(lease_watch.renewals_during_the_slow_call()) >= 2, (lease_watch.renewals, lease_watch.windows)
    session = session_for(url)
    assert session.offset == MiB and session.lease_token == ""
    tail = s3.client.get_object(Bucket=s3.bucket, Key=tus_tail_key(session.pk, S3Backend()))["Body"].read()
    assert tail == data[:MiB]
    lease_watch.monkeypatch.undo()
    assert tus.patch(url, data[MiB:], MiB).status_code == 204
    assert s3.sha256(session.key) == sha256(data)
