"""Metadata values that end up in headers (the content type and the file
name): refused at creation when no header could carry them, neutralised
where they are used for uploads created before that check, and a streamed
download that the site's origin can serve whatever the uploader named."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from example_project.uploads.downloads import download_url
from example_project.uploads.models import FinishedUpload
from rindle_tus import protocol
from rindle_tus.metadata import content_disposition
from rindle_tus.models import State, TusSession

from .conftest import PART, S3, MiB, TusClient, payload, session_for, sha256

CONTENT_TYPE_KEYS = ("filetype", "contentType", "type", "mimetype")
FILE_NAME_KEYS = ("filename", "name")
CONTROLS = ["\r\n", "\r", "\n", "\x00", "\t", "\x1b", "\x7f"]
HEADER_VALUES = {key: b"text/plain" for key in CONTENT_TYPE_KEYS} | {key: b"report.pdf" for key in FILE_NAME_KEYS}
NOT_MEDIA_TYPES = [
    b"text", b"text/", b"/html", b"text/ html", b"text/html ", b"text/html;", b"text/plain; charset",
    b'text/plain; charset="utf-8"', b"text/html,text/plain", b"<svg>/x", "t\u00e9xt/plain".encode(),
    b"\xff\xfe/plain",
]
ORDINARY = {
    "pdf": {"filetype": b"application/pdf", "filename": "r\u00e9sum\u00e9.pdf".encode()},
    "svg": {"type": b"image/svg+xml", "name": b"logo.svg"},
    "charset": {"contentType": b"text/plain; charset=utf-8", "filename": b"notes.txt"},
    "vendor": {"mimetype": b"application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
    "empty": {"filetype": b"", "filename": b""},
}
# What a server without the creation check stored, as an old row holds it.
OLD_BAD_METADATA = {
    "filetype": b"text/html\r\nX-Injected: 1",
    "filename": b"evil\r\nSet-Cookie: a=b\x00.txt",
}
OLD_BAD_NAME = "evilSet-Cookie: a=b\ufffd.txt"


def _header(metadata: dict[str, bytes]) -> str:
    return ",".join(f"{k} {base64.b64encode(v).decode()}" for k, v in metadata.items())


def _stored(s3: S3) -> tuple[list[str], list[str]]:
    objects = s3.client.list_objects_v2(Bucket=s3.bucket).get("Contents", [])
    return sorted(o["Key"] for o in objects), sorted(u["UploadId"] for u in s3.multipart_uploads())


def _assert_refused(response: Any, key: str) -> None:
    assert response.status_code == 400
    text = response.content.decode()
    assert text.startswith("invalid_metadata:")
    assert repr(key) in text


def _as_old_row(url: str, metadata: dict[str, bytes]) -> TusSession:
    """Give an upload the metadata a server without the check would have stored."""
    session = session_for(url)
    TusSession.objects.filter(pk=session.pk).update(
        metadata_raw=_header(metadata), metadata=protocol.decoded_metadata(metadata)
    )
    return session_for(url)


def _old_upload(tus: TusClient, s3: S3, data: bytes, *, deferred: bool = False) -> str:
    url = tus.new(None if deferred else len(data))
    _as_old_row(url, OLD_BAD_METADATA)
    headers = {"Upload-Length": str(len(data))} if deferred else {}
    response = tus.patch(url, data, 0, headers=headers)
    assert response.status_code == 204, response.content
    assert s3.sha256(session_for(url).key) == sha256(data)
    return url


@pytest.mark.parametrize("control", CONTROLS, ids=repr)
@pytest.mark.parametrize("key", list(HEADER_VALUES))
def test_control_character_in_a_header_bound_value_is_refused_and_creates_nothing(
    tus: TusClient, s3: S3, key: str, control: str
) -> None:
    value = HEADER_VALUES[key]
    bad = value[:4] + control.encode() + value[4:]
    before = _stored(s3)
    response = tus.create(3, metadata={key: bad}, body=b"abc")
    _assert_refused(response, key)
    assert not TusSession.objects.exists()
    assert _stored(s3) == before


@pytest.mark.parametrize("value", NOT_MEDIA_TYPES, ids=repr)
@pytest.mark.parametrize("key", CONTENT_TYPE_KEYS)
def test_content_type_that_is_not_a_media_type_is_refused_and_creates_nothing(
    tus: TusClient, s3: S3, key: str, value: bytes
) -> None:
    before = _stored(s3)
    response = tus.create(3, metadata={key: value}, body=b"abc")
    _assert_refused(response, key)
    assert not TusSession.objects.exists()
    assert _stored(s3) == before


@pytest.mark.parametrize("key", ["filetype", "filename"])
def test_final_concatenation_with_a_control_character_is_refused_and_creates_nothing(
    tus: TusClient, s3: S3, key: str
) -> None:
    data = payload(100, seed=7)
    partial = tus.new(len(data), headers={"Upload-Concat": "partial"})
    assert tus.patch(partial, data, 0).status_code == 204
    assert s3.sha256(session_for(partial).key) == sha256(data)
    before = _stored(s3)
    headers = {"Upload-Concat": f"final;{partial}", "Upload-Metadata": _header({key: HEADER_VALUES[key] + b"\r\n"})}
    response = tus.request("POST", "/files/", headers=headers, content_type="")
    _assert_refused(response, key)
    assert TusSession.objects.count() == 1
    assert _stored(s3) == before


@pytest.mark.parametrize("metadata", list(ORDINARY.values()), ids=list(ORDINARY))
def test_ordinary_header_bound_values_are_accepted_and_stored(
    tus: TusClient, s3: S3, metadata: dict[str, bytes]
) -> None:
    data = payload(PART + 5, seed=1)
    url = tus.upload(data, metadata=metadata)
    key = session_for(url).key
    assert s3.sha256(key) == sha256(data)
    content_type = next((v for k, v in metadata.items() if k in CONTENT_TYPE_KEYS and v), None)
    if content_type:
        assert s3.client.head_object(Bucket=s3.bucket, Key=key)["ContentType"] == content_type.decode()


def test_other_keys_with_control_characters_are_accepted_and_echoed_byte_for_byte(tus: TusClient, s3: S3) -> None:
    metadata = {"note": b"line one\r\nline two\x00\x1b\x7f", "filename": b"a.txt", "kind": b"text\n/html"}
    data = payload(10, seed=2)
    url = tus.upload(data, metadata=metadata)
    assert s3.sha256(session_for(url).key) == sha256(data)
    assert tus.head(url)["Upload-Metadata"] == _header(metadata)


@pytest.mark.parametrize("size", [MiB, PART + MiB], ids=["single-put", "multipart"])
def test_old_upload_with_bad_values_completes_without_its_content_type(tus: TusClient, s3: S3, size: int) -> None:
    url = _old_upload(tus, s3, payload(size, seed=3))
    session = session_for(url)
    assert session.state == State.COMPLETED
    stored_type = s3.client.head_object(Bucket=s3.bucket, Key=session.key)["ContentType"]
    assert "text/html" not in stored_type


def test_old_upload_with_bad_values_and_a_deferred_length_completes(tus: TusClient, s3: S3) -> None:
    url = _old_upload(tus, s3, payload(PART + 1, seed=4), deferred=True)
    assert session_for(url).state == State.COMPLETED


def test_old_upload_with_bad_values_downloads_by_redirect_with_a_clean_name(tus: TusClient, s3: S3) -> None:
    data = payload(MiB + 1, seed=5)
    url = _old_upload(tus, s3, data)
    response = tus.client.get(url)
    assert response.status_code == 302
    (disposition,) = parse_qs(urlsplit(response["Location"]).query)["response-content-disposition"]
    assert disposition == content_disposition(OLD_BAD_NAME)
    assert "\r" not in disposition and "\n" not in disposition
    download = requests.get(response["Location"], timeout=30)
    assert download.status_code == 200
    assert sha256(download.content) == sha256(data)


def test_old_upload_with_bad_values_downloads_streamed_without_them(
    tus: TusClient, s3: S3, settings: Any
) -> None:
    settings.RINDLE_TUS_GET_REDIRECT = False
    data = payload(MiB + 1, seed=6)
    url = _old_upload(tus, s3, data)
    response = tus.client.get(url)
    assert response.status_code == 200
    assert sha256(b"".join(response.streaming_content)) == sha256(data)
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"] == (
        "attachment; filename=\"evilSet-Cookie: a=b?.txt\"; filename*=UTF-8''evilSet-Cookie%3A%20a%3Db%EF%BF%BD.txt"
    )


@pytest.mark.parametrize("filetype", [b"text/html", b"image/svg+xml"])
def test_streamed_download_is_an_attachment_browsers_neither_sniff_nor_run(
    tus: TusClient, s3: S3, settings: Any, filetype: bytes
) -> None:
    settings.RINDLE_TUS_GET_REDIRECT = False
    data = b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(document.cookie)'/>"
    url = tus.upload(data, metadata={"filetype": filetype, "filename": b"page.html"})
    assert s3.sha256(session_for(url).key) == sha256(data)
    response = tus.client.get(url)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == data
    assert response["Content-Type"] == filetype.decode()
    assert response["Content-Disposition"].startswith("attachment;")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"


def test_example_download_link_of_an_old_record_has_a_clean_name(s3: S3, db: None) -> None:
    upload = FinishedUpload.objects.create(session_id="old", key="site/tus/old", size=1, filename="a\r\nb.txt")
    (disposition,) = parse_qs(urlsplit(download_url(upload)).query)["response-content-disposition"]
    assert disposition == "attachment; filename=\"ab.txt\"; filename*=UTF-8''ab.txt"
