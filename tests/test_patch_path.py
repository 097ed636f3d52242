"""The PATCH path on a real S3: parts, tail and offset after each request."""

from __future__ import annotations

import pytest

from rindle_tus.models import State
from rindle_tus.storage import tus_tail_path

from .conftest import PART, MiB, TusClient, parts_held, payload, session_for, sha256


def test_one_mib_patch_leaves_no_part_and_offset_one_mib(tus: TusClient) -> None:
    data = payload(10 * MiB)
    url = tus.new(len(data))
    response = tus.patch(url, data[:MiB], 0)
    assert response.status_code == 204
    assert response["Upload-Offset"] == str(MiB)
    session = session_for(url)
    assert session.parts == []
    assert session.offset == MiB
    assert session.upload_id
    assert tus_tail_path(session.id).read_bytes() == data[:MiB]


def test_two_two_mib_patches_leave_no_part_and_offset_four_mib(tus: TusClient) -> None:
    data = payload(10 * MiB)
    url = tus.new(len(data))
    assert tus.patch(url, data[: 2 * MiB], 0).status_code == 204
    assert tus.patch(url, data[2 * MiB : 4 * MiB], 2 * MiB).status_code == 204
    session = session_for(url)
    assert session.parts == []
    assert session.offset == 4 * MiB
    assert tus_tail_path(session.id).read_bytes() == data[: 4 * MiB]


def test_six_mib_patch_commits_exactly_one_part(tus: TusClient) -> None:
    data = payload(12 * MiB)
    url = tus.new(len(data))
    assert tus.patch(url, data[: 6 * MiB], 0).status_code == 204
    session = session_for(url)
    assert parts_held(session) == [1]
    assert session.offset == 6 * MiB
    assert tus_tail_path(session.id).read_bytes() == data[PART : 6 * MiB]


def test_three_patches_of_one_part_commit_parts_one_two_three(tus: TusClient, s3) -> None:
    data = payload(3 * PART + 1)
    url = tus.new(len(data))
    for index in range(3):
        assert tus.patch(url, data[index * PART : (index + 1) * PART], index * PART).status_code == 204
    session = session_for(url)
    assert parts_held(session) == [1, 2, 3]
    assert session.offset == 3 * PART
    assert tus_tail_path(session.id).read_bytes() == b""
    assert tus.patch(url, data[3 * PART :], 3 * PART).status_code == 204
    assert s3.sha256(session.key) == sha256(data)


def test_a_part_and_a_half_then_completion(tus: TusClient, s3) -> None:
    data = payload(PART + PART // 2 + 12345)
    url = tus.new(len(data))
    assert tus.patch(url, data[: PART + PART // 2], 0).status_code == 204
    response = tus.patch(url, data[PART + PART // 2 :], PART + PART // 2)
    assert response.status_code == 204
    assert response["Upload-Offset"] == str(len(data))
    session = session_for(url)
    assert session.state == State.COMPLETED
    assert [p["size"] for p in session.parts] == [PART, len(data) - PART]
    assert not tus_tail_path(session.id).exists()
    assert s3.sha256(session.key) == sha256(data)
    assert s3.multipart_uploads(session.key) == []


def test_small_whole_upload_is_one_put_object(tus: TusClient, s3) -> None:
    data = payload(3 * MiB)
    url = tus.upload(data)
    session = session_for(url)
    assert session.state == State.COMPLETED
    assert session.upload_id == ""
    assert session.parts == []
    assert s3.sha256(session.key) == sha256(data)


def test_zero_length_upload_completes_at_creation(tus: TusClient, s3) -> None:
    url = tus.new(0)
    session = session_for(url)
    assert session.state == State.COMPLETED
    assert s3.sha256(session.key) == sha256(b"")
    assert tus.head(url)["Upload-Offset"] == "0"


@pytest.mark.parametrize("size", [1, PART - 1, PART, PART + 1, 2 * PART, 2 * PART + 7])
def test_sizes_around_part_boundaries_are_byte_exact(tus: TusClient, s3, size: int) -> None:
    data = payload(size, seed=size)
    url = tus.upload(data, chunk=3_000_000)
    session = session_for(url)
    assert session.state == State.COMPLETED
    assert all(p["size"] == PART for p in session.parts[:-1])
    assert s3.sha256(session.key) == sha256(data)


def test_single_request_multi_part_upload(tus: TusClient, s3) -> None:
    data = payload(3 * PART + 4321, seed=3)
    url = tus.upload(data)
    session = session_for(url)
    assert len(session.parts) == 4
    assert s3.sha256(session.key) == sha256(data)


def test_object_key_lives_under_the_storage_location_and_prefix(tus: TusClient, s3) -> None:
    url = tus.upload(payload(10))
    session = session_for(url)
    assert session.key == f"site/tus/{session.id}"
    assert s3.exists(session.key)


def test_content_type_comes_from_metadata(tus: TusClient, s3) -> None:
    url = tus.upload(payload(10), metadata={"filename": b"a.txt", "filetype": b"text/plain"})
    head = s3.client.head_object(Bucket=s3.bucket, Key=session_for(url).key)
    assert head["ContentType"] == "text/plain"
