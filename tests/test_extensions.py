"""Checksum, concatenation, GET and expiration, through the Django test client."""

from __future__ import annotations

import base64
import copy
import hashlib
import zlib
from email.utils import parsedate_to_datetime
from typing import Any

import pytest
import requests
from django.utils import timezone

from rindle_tus.models import ConcatKind, State
from rindle_tus.storage import S3Backend, tus_tail_path

from .conftest import PART, S3, MiB, TusClient, payload, session_for, sha256


def _checksum(algorithm: str, data: bytes) -> str:
    if algorithm == "crc32":
        digest = zlib.crc32(data).to_bytes(4, "big")
    else:
        digest = hashlib.new(algorithm, data).digest()
    return f"{algorithm} {base64.b64encode(digest).decode()}"


@pytest.mark.parametrize("algorithm", ["sha1", "md5", "sha256", "sha512", "crc32"])
def test_matching_checksum_is_accepted(tus: TusClient, s3: S3, algorithm: str) -> None:
    data = payload(MiB + 3)
    url = tus.new(len(data))
    response = tus.patch(url, data, 0, headers={"Upload-Checksum": _checksum(algorithm, data)})
    assert response.status_code == 204
    assert s3.sha256(session_for(url).key) == sha256(data)


def test_checksum_mismatch_spanning_parts_keeps_nothing(tus: TusClient, s3: S3) -> None:
    data = payload(3 * PART)
    url = tus.new(len(data))
    assert tus.patch(url, data[:MiB], 0).status_code == 204
    tail_before = tus_tail_path(session_for(url).id).read_bytes()
    body = data[MiB : MiB + 2 * PART + 5]
    response = tus.patch(url, body, MiB, headers={"Upload-Checksum": _checksum("sha1", body + b"x")})
    assert response.status_code == 460
    session = session_for(url)
    assert session.offset == MiB
    assert session.parts == []
    assert tus_tail_path(session.id).read_bytes() == tail_before
    assert tus.patch(url, data[MiB:], MiB).status_code == 204
    assert s3.sha256(session.key) == sha256(data)


def test_unsupported_checksum_algorithm_is_400(tus: TusClient) -> None:
    url = tus.new(3)
    response = tus.patch(url, b"abc", 0, headers={"Upload-Checksum": "whirlpool AAAA"})
    assert response.status_code == 400
    assert tus.head(url)["Upload-Offset"] == "0"


def test_checksum_on_the_final_patch_guards_completion(tus: TusClient, s3: S3) -> None:
    data = payload(PART + 10)
    url = tus.new(len(data))
    bad = tus.patch(url, data, 0, headers={"Upload-Checksum": _checksum("sha256", data[:-1])})
    assert bad.status_code == 460
    assert session_for(url).state == State.RECEIVING
    good = tus.patch(url, data, 0, headers={"Upload-Checksum": _checksum("sha256", data)})
    assert good.status_code == 204
    assert s3.sha256(session_for(url).key) == sha256(data)


def test_options_advertises_checksum_algorithms(tus: TusClient) -> None:
    algorithms = tus.client.options("/files/")["Tus-Checksum-Algorithm"].split(",")
    assert {"sha1", "md5", "sha256", "crc32"} <= set(algorithms)


def test_upload_expires_on_post_and_patch_and_slides(tus: TusClient, settings: object) -> None:
    created = tus.create(10)
    url = created["Location"].replace("http://testserver", "")
    first = parsedate_to_datetime(created["Upload-Expires"])
    assert created["Upload-Expires"].endswith("GMT")
    session = session_for(url)
    type(session).objects.filter(pk=session.pk).update(expires_at=timezone.now() + timezone.timedelta(minutes=1))
    patched = tus.patch(url, b"abc", 0)
    assert parsedate_to_datetime(patched["Upload-Expires"]) >= first - timezone.timedelta(seconds=1)
    assert session_for(url).expires_at > timezone.now() + timezone.timedelta(hours=23)


def test_finished_upload_has_no_upload_expires(tus: TusClient) -> None:
    url = tus.new(3)
    response = tus.patch(url, b"abc", 0)
    assert "Upload-Expires" not in response




def test_concatenation_by_server_side_copy(tus: TusClient, s3: S3) -> None:
    pieces = [payload(PART + 7, seed=1), payload(PART, seed=2), payload(123, seed=3)]
    urls = [tus.partial(piece) for piece in pieces]
    response = tus.final(["http://testserver" + urls[0], urls[1], urls[2]])
    assert response.status_code == 201
    url = response["Location"].replace("http://testserver", "")
    final = session_for(url)
    assert final.state == State.COMPLETED
    assert final.concat == ConcatKind.FINAL
    assert [p["size"] for p in final.parts] == [PART + 7, PART, 123]
    assert s3.sha256(final.key) == sha256(b"".join(pieces))
    head = tus.head(url)
    assert head["Upload-Concat"] == "final;" + " ".join(["http://testserver" + urls[0], urls[1], urls[2]])
    assert head["Upload-Length"] == head["Upload-Offset"] == str(sum(map(len, pieces)))


def test_concatenation_of_small_partials_streams(tus: TusClient, s3: S3) -> None:
    pieces = [payload(MiB, seed=4), b"", payload(PART + MiB, seed=5), payload(7, seed=6)]
    urls = [tus.partial(piece) for piece in pieces]
    response = tus.final(urls)
    assert response.status_code == 201
    final = session_for(response["Location"])
    assert final.state == State.COMPLETED
    assert s3.sha256(final.key) == sha256(b"".join(pieces))


def test_partial_upload_head_says_partial(tus: TusClient) -> None:
    url = tus.partial(b"abc")
    assert tus.head(url)["Upload-Concat"] == "partial"


def test_patch_to_final_upload_is_403(tus: TusClient) -> None:
    response = tus.final([tus.partial(b"abc")])
    url = response["Location"].replace("http://testserver", "")
    assert tus.patch(url, b"x", 3).status_code == 403


def test_final_with_unfinished_partial_is_400(tus: TusClient) -> None:
    url = tus.new(10, headers={"Upload-Concat": "partial"})
    response = tus.final([url])
    assert response.status_code == 400
    assert "not finished" in response.content.decode()


def test_final_with_unknown_partial_is_400(tus: TusClient) -> None:
    response = tus.final(["/files/" + "B" * 32])
    assert response.status_code == 400
    assert "does not exist" in response.content.decode()


def test_final_with_non_partial_upload_is_400(tus: TusClient) -> None:
    url = tus.upload(b"abc")
    response = tus.final([url])
    assert response.status_code == 400
    assert "not a partial" in response.content.decode()


def test_final_with_foreign_host_is_400(tus: TusClient) -> None:
    url = tus.partial(b"abc")
    response = tus.final(["http://elsewhere.example" + url])
    assert response.status_code == 400


def test_final_with_upload_length_is_400(tus: TusClient) -> None:
    url = tus.partial(b"abc")
    response = tus.request(
        "POST", "/files/", headers={"Upload-Concat": f"final;{url}", "Upload-Length": "3"}, content_type=""
    )
    assert response.status_code == 400


def test_get_redirects_to_a_presigned_url_of_the_object(tus: TusClient, s3: S3) -> None:
    data = payload(MiB + 1)
    url = tus.upload(data, metadata={"filename": "résumé.pdf".encode()})
    response = tus.client.get(url)
    assert response.status_code == 302
    download = requests.get(response["Location"], timeout=30)
    assert download.status_code == 200
    assert sha256(download.content) == sha256(data)
    assert "filename*=UTF-8''r%C3%A9sum%C3%A9.pdf" in download.headers["Content-Disposition"]


def test_get_can_stream_instead(tus: TusClient, settings: object) -> None:
    settings.RINDLE_TUS_GET_REDIRECT = False  # type: ignore[attr-defined]
    data = payload(MiB + 1)
    url = tus.upload(data)
    response = tus.client.get(url)
    assert response.status_code == 200
    assert sha256(b"".join(response.streaming_content)) == sha256(data)


def test_get_of_unfinished_upload_is_404(tus: TusClient) -> None:
    url = tus.new(10)
    assert tus.client.get(url).status_code == 404


def test_creation_with_upload_refused_by_checksum_leaves_nothing(tus: TusClient, s3: S3, settings: object) -> None:
    from rindle_tus.models import TusSession

    settings.RINDLE_TUS_KEY_PREFIX = "discard-test/"  # type: ignore[attr-defined]
    data = payload(PART + 100)
    response = tus.create(len(data), body=data, headers={"Upload-Checksum": _checksum("sha1", b"other")})
    assert response.status_code == 460
    assert "Location" not in response
    assert not TusSession.objects.exists()
    assert s3.multipart_uploads("site/discard-test/") == []


def test_head_completes_an_upload_whose_completion_failed(
    tus: TusClient, s3: S3, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rindle_tus.exceptions import StorageError
    from rindle_tus.storage.s3 import S3Backend

    data = payload(PART + 10)
    url = tus.new(len(data))
    original = S3Backend.complete

    def failing(self: S3Backend, *args: object, **kwargs: object) -> None:
        raise StorageError("injected")

    monkeypatch.setattr(S3Backend, "complete", failing)
    assert tus.patch(url, data, 0).status_code == 502
    assert tus.head(url).status_code == 502
    monkeypatch.setattr(S3Backend, "complete", original)
    head = tus.head(url)
    assert head.status_code == 200
    assert head["Upload-Offset"] == str(len(data))
    assert session_for(url).state == State.COMPLETED
    assert s3.sha256(session_for(url).key) == sha256(data)


def test_head_during_a_completion_in_progress_still_reports_the_offset(
    tus: TusClient, s3: S3, settings: Any
) -> None:
    from rindle_tus.locking import Lease
    from rindle_tus.models import TusSession

    # The completing request (the test) does not hand over; HEAD waits for
    # that briefly and then answers from the row.
    settings.RINDLE_TUS_LEASE_WAIT = 0.2
    data = payload(PART + 10)
    url = tus.new(len(data))
    session = session_for(url)
    lease = Lease.acquire(session.id)
    try:
        # What the final PATCH has committed just before CompleteMultipartUpload.
        etag = S3Backend().create_multipart(session.key)
        TusSession.objects.filter(pk=session.pk).update(
            upload_id=etag, parts=[{"number": 1, "etag": "x", "size": len(data)}], offset=len(data)
        )
        response = tus.head(url)
    finally:
        lease.release()
    assert response.status_code == 200
    assert response["Upload-Offset"] == str(len(data))


def test_get_with_a_custom_domain_and_no_cloudfront_key_redirects_to_a_signed_url(
    tus: TusClient, s3: S3, settings: Any, s3_storages: dict[str, Any]
) -> None:
    # django-storages alone would answer the custom domain's URL unsigned,
    # which a private bucket refuses.
    storages = copy.deepcopy(s3_storages)
    host = s3.endpoint.split("//", 1)[1]
    storages["default"]["OPTIONS"].update(custom_domain=f"{host}/{s3.bucket}", url_protocol="http:")
    settings.STORAGES = storages
    data = payload(MiB + 3, seed=5)
    url = tus.upload(data, metadata={"filename": b"report.pdf"})
    response = tus.client.get(url)
    assert response.status_code == 302
    location = response["Location"]
    assert "Signature=" in location  # SigV2 or SigV4, as the client signs
    download = requests.get(location, timeout=30)
    assert download.status_code == 200
    assert sha256(download.content) == sha256(data)
    assert "report.pdf" in download.headers["Content-Disposition"]


def test_get_from_a_storage_that_does_not_sign_redirects_without_header_overrides(
    tus: TusClient, s3: S3, settings: Any, s3_storages: dict[str, Any]
) -> None:
    # A public bucket: S3 refuses response-* overrides on anonymous requests.
    storages = copy.deepcopy(s3_storages)
    storages["default"]["OPTIONS"]["querystring_auth"] = False
    settings.STORAGES = storages
    data = payload(1000, seed=6)
    url = tus.upload(data, metadata={"filename": b"report.pdf"})
    location = tus.client.get(url)["Location"]
    assert "Signature=" not in location
    assert "response-content-disposition" not in location.lower()
    download = requests.get(location, timeout=30)
    assert download.status_code == 200
    assert sha256(download.content) == sha256(data)
