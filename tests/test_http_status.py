"""Every status code of the core protocol, through the Django test client."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from rindle_tus.locking import Lease
from rindle_tus.storage import tus_tail_path

from .conftest import S3, MiB, TusClient, payload, session_for, sha256


def test_missing_tus_resumable_is_412_with_tus_version(tus: TusClient) -> None:
    response = tus.client.generic("POST", "/files/", headers={"Upload-Length": "10"})
    assert response.status_code == 412
    assert response["Tus-Version"] == "1.0.0"


def test_unsupported_tus_resumable_is_412(tus: TusClient) -> None:
    headers = {"Tus-Resumable": "0.2.2", "Upload-Length": "10"}
    response = tus.request("POST", "/files/", headers=headers, content_type="")
    assert response.status_code == 412
    assert response["Tus-Version"] == "1.0.0"


def test_options_needs_no_tus_resumable(tus: TusClient) -> None:
    response = tus.client.options("/files/")
    assert response.status_code == 204
    assert response["Tus-Version"] == "1.0.0"
    assert "creation" in response["Tus-Extension"].split(",")


def test_max_size_is_advertised_and_enforced(tus: TusClient, settings: object) -> None:
    settings.RINDLE_TUS_MAX_SIZE = 1000  # type: ignore[attr-defined]
    assert tus.client.options("/files/")["Tus-Max-Size"] == "1000"
    assert tus.create(1001).status_code == 413
    assert tus.create(1000).status_code == 201


def test_patch_with_wrong_content_type_is_415(tus: TusClient) -> None:
    url = tus.new(10)
    response = tus.request("PATCH", url, b"x", headers={"Upload-Offset": "0"}, content_type="application/octet-stream")
    assert response.status_code == 415
    assert tus.head(url)["Upload-Offset"] == "0"


def test_offset_mismatch_is_409_and_changes_nothing(tus: TusClient) -> None:
    data = payload(3 * MiB)
    url = tus.new(len(data))
    tus.patch(url, data[:MiB], 0)
    response = tus.patch(url, data[MiB:], 5)
    assert response.status_code == 409
    assert tus.head(url)["Upload-Offset"] == str(MiB)
    assert tus_tail_path(session_for(url).id).read_bytes() == data[:MiB]


def test_unknown_upload_is_404_without_offset(tus: TusClient) -> None:
    response = tus.head("/files/" + "A" * 32)
    assert response.status_code == 404
    assert "Upload-Offset" not in response


@pytest.mark.parametrize("path", ["/files/..", "/files/a/b", "/files/%2F", "/files/%00", "/files/%C3%BC" * 4])
def test_malformed_upload_ids_are_404(tus: TusClient, path: str) -> None:
    assert tus.head(path).status_code == 404


def test_terminated_upload_is_410(tus: TusClient, s3: S3) -> None:
    data = payload(2 * MiB)
    url = tus.new(len(data) * 4)
    tus.patch(url, data, 0)
    session = session_for(url)
    assert tus.delete(url).status_code == 204
    assert tus.head(url).status_code == 410
    assert tus.patch(url, b"x", len(data)).status_code == 410
    assert not tus_tail_path(session.id).exists()
    assert s3.multipart_uploads(session.key) == []


def test_delete_of_finished_upload_removes_the_object(tus: TusClient, s3: S3) -> None:
    url = tus.upload(payload(100))
    key = session_for(url).key
    assert s3.exists(key)
    assert tus.delete(url).status_code == 204
    assert not s3.exists(key)


def test_head_reports_offset_length_metadata_and_no_store(tus: TusClient) -> None:
    raw = "filename bXkgZmlsZS50eHQ=,empty ,flag"
    url = tus.new(10, headers={"Upload-Metadata": raw})
    response = tus.head(url)
    assert response.status_code == 200
    assert response["Upload-Offset"] == "0"
    assert response["Upload-Length"] == "10"
    assert response["Upload-Metadata"] == raw
    assert response["Cache-Control"] == "no-store"
    assert response["Tus-Resumable"] == "1.0.0"


def test_head_of_finished_upload_reports_its_length(tus: TusClient) -> None:
    url = tus.upload(payload(100))
    assert tus.head(url)["Upload-Offset"] == "100"


@pytest.mark.parametrize(
    "metadata",
    ["filename !!!", "a " + base64.b64encode(b"x").decode() + ",a eA==", "bad key eA==", ",", "k eA=", "k eA==="],
)
def test_invalid_metadata_is_400(tus: TusClient, metadata: str) -> None:
    response = tus.create(10, headers={"Upload-Metadata": metadata})
    assert response.status_code == 400
    assert response.content.decode().startswith("invalid_metadata:")


@pytest.mark.parametrize("value", ["-1", "1.5", "0x10", "", " ", "9223372036854775808", "١٢", "1e3"])
def test_malformed_upload_length_is_400(tus: TusClient, value: str) -> None:
    response = tus.request("POST", "/files/", headers={"Upload-Length": value}, content_type="")
    assert response.status_code == 400
    assert "Upload-Length" in response.content.decode()


@pytest.mark.parametrize("value", ["-1", "abc", "", "99999999999999999999"])
def test_malformed_upload_offset_is_400_and_changes_nothing(tus: TusClient, value: str) -> None:
    url = tus.new(10)
    response = tus.request("PATCH", url, b"x", headers={"Upload-Offset": value})
    assert response.status_code == 400
    assert tus.head(url)["Upload-Offset"] == "0"


def test_both_length_and_defer_is_400(tus: TusClient) -> None:
    assert tus.create(10, headers={"Upload-Defer-Length": "1"}).status_code == 400


def test_defer_length_other_than_one_is_400(tus: TusClient) -> None:
    assert tus.create(None, headers={"Upload-Defer-Length": "2"}).status_code == 400


def test_patch_past_declared_length_is_413_and_stores_nothing(tus: TusClient) -> None:
    url = tus.new(10)
    response = tus.patch(url, b"x" * 11, 0)
    assert response.status_code == 413
    assert tus.head(url)["Upload-Offset"] == "0"


def test_second_writer_gets_423_when_the_holder_does_not_hand_over(tus: TusClient, settings: Any) -> None:
    # The holder here is the test, which never stops: this is the lock itself,
    # so the wait for a handover is short (a request holding it would hand over).
    settings.RINDLE_TUS_LEASE_WAIT = 0.2
    url = tus.new(10)
    lease = Lease.acquire(session_for(url).id)
    try:
        assert tus.patch(url, b"x", 0).status_code == 423
        assert tus.delete(url).status_code == 423
    finally:
        lease.release()
    assert tus.patch(url, b"x", 0).status_code == 204


@pytest.mark.parametrize("method", ["PATCH", "DELETE", "HEAD"])
def test_method_override_is_honoured(tus: TusClient, method: str) -> None:
    url = tus.new(3)
    headers = {"X-HTTP-Method-Override": method, "Upload-Offset": "0"}
    response = tus.request("POST", url, b"abc" if method == "PATCH" else b"", headers=headers)
    assert response.status_code == {"PATCH": 204, "DELETE": 204, "HEAD": 200}[method]


def test_unknown_method_is_405(tus: TusClient) -> None:
    url = tus.new(3)
    response = tus.request("PUT", url, b"abc")
    assert response.status_code == 405


def test_deferred_length_is_set_once(tus: TusClient, s3: S3) -> None:
    data = payload(2 * MiB)
    url = tus.new(None)
    head = tus.head(url)
    assert head["Upload-Defer-Length"] == "1" and "Upload-Length" not in head
    assert tus.patch(url, data[:MiB], 0).status_code == 204
    response = tus.patch(url, data[MiB:], MiB, headers={"Upload-Length": str(len(data))})
    assert response.status_code == 204
    assert tus.head(url)["Upload-Length"] == str(len(data))
    assert s3.sha256(session_for(url).key) == sha256(data)


def test_deferred_length_cannot_change(tus: TusClient) -> None:
    url = tus.new(None)
    assert tus.patch(url, b"ab", 0, headers={"Upload-Length": "4"}).status_code == 204
    assert tus.patch(url, b"cd", 2, headers={"Upload-Length": "5"}).status_code == 400
    assert tus.head(url)["Upload-Offset"] == "2"


def test_creation_with_upload_stores_the_body(tus: TusClient, s3: S3) -> None:
    data = payload(MiB + 5)
    response = tus.create(len(data) + 10, body=data)
    assert response.status_code == 201
    assert response["Upload-Offset"] == str(len(data))
    assert "Upload-Expires" in response
    url = response["Location"].replace("http://testserver", "")
    rest = payload(10, seed=9)
    assert tus.patch(url, rest, len(data)).status_code == 204
    assert s3.sha256(session_for(url).key) == sha256(data + rest)


def test_expired_upload_is_410(tus: TusClient) -> None:
    from django.utils import timezone

    url = tus.new(10)
    session = session_for(url)
    type(session).objects.filter(pk=session.pk).update(expires_at=timezone.now())
    assert tus.head(url).status_code == 410
    assert tus.patch(url, b"x", 0).status_code == 410


def test_metadata_values_with_nul_and_invalid_utf8_are_stored(tus: TusClient) -> None:
    # Keys whose values never reach a header (a file name's must not hold a NUL).
    raw = "note AGE=,blob /w=="
    url = tus.new(10, headers={"Upload-Metadata": raw})
    session = session_for(url)
    assert session.metadata == {"note": "\ufffda", "blob": "\ufffd"}
    assert tus.head(url)["Upload-Metadata"] == raw


def test_chunked_body_the_server_cannot_delimit_is_411(tus: TusClient) -> None:
    url = tus.new(10)
    response = tus.client.generic(
        "PATCH",
        url,
        b"",
        headers={"Tus-Resumable": "1.0.0", "Upload-Offset": "0", "Transfer-Encoding": "chunked"},
        CONTENT_TYPE="application/offset+octet-stream",
    )
    assert response.status_code == 411
    assert tus.head(url)["Upload-Offset"] == "0"
