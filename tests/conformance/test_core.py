"""PROTOCOL.md, Core: what every tus 1.0.0 server must do."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from ..conftest import S3, payload, sha256
from .conftest import OFFSET_TYPE, TUS, Tus, assert_bad_request, session_count, session_of, tail_bytes

MAX_INT64 = 2**63 - 1
BAD_INTEGERS = {
    "negative": "-1",
    "plus-sign": "+5",
    "non-decimal": "abc",
    "hex": "0x10",
    "fraction": "1.5",
    "exponent": "1e3",
    "inner-space": "1 0",
    "past-int64": str(MAX_INT64 + 1),
    "twenty-digits": "1" * 20,
    "empty": "",
}


# -- Tus-Resumable -------------------------------------------------------------------


def test_every_response_except_options_carries_tus_resumable(server: Tus) -> None:
    """Every response except OPTIONS carries Tus-Resumable: 1.0.0 (successes and errors alike)."""
    responses: dict[str, requests.Response] = {}
    responses["POST 201"] = created = server.create(10)
    url = created.headers["Location"]
    responses["HEAD 200"] = server.head(url)
    responses["PATCH 204"] = server.patch(url, b"12345", 0)
    responses["PATCH 409"] = server.patch(url, b"x", 0)
    responses["PATCH 415"] = server.patch(url, b"x", 5, content_type="text/plain")
    responses["POST 400"] = server.create(headers={"Upload-Length": "x"})
    responses["HEAD 404"] = server.head(server.collection + "A" * 32)
    responses["DELETE 204"] = server.delete(url)
    responses["HEAD 410"] = server.head(url)
    responses["HEAD 412"] = server.head(url, tus=False)
    for name, response in responses.items():
        assert name.endswith(str(response.status_code)), (name, response.status_code)
        assert response.headers.get("Tus-Resumable") == "1.0.0", name


BAD_VERSIONS = {"missing": None, "0.2.2": "0.2.2", "2.0.0": "2.0.0", "1.0": "1.0", "empty": ""}


@pytest.mark.parametrize("version", list(BAD_VERSIONS.values()), ids=list(BAD_VERSIONS))
def test_unsupported_tus_resumable_on_post_is_412_with_tus_version_and_creates_nothing(
    server: Tus, version: str | None
) -> None:
    """A POST whose Tus-Resumable is missing or unsupported gets 412 with Tus-Version; no upload is made."""
    before = session_count()
    headers = {"Upload-Length": "10"}
    if version is not None:
        headers["Tus-Resumable"] = version
    response = server.request("POST", server.collection, headers=headers, tus=False)
    assert response.status_code == 412
    assert "1.0.0" in response.headers["Tus-Version"].split(",")
    assert "Location" not in response.headers
    assert session_count() == before


@pytest.mark.parametrize("version", [None, "0.2.2"], ids=["missing", "0.2.2"])
def test_unsupported_tus_resumable_on_patch_is_412_and_stores_nothing(server: Tus, version: str | None) -> None:
    """A PATCH without a supported Tus-Resumable gets 412 with Tus-Version; the offset does not move."""
    url = server.new(10)
    headers = {} if version is None else {"Tus-Resumable": version}
    response = server.patch(url, b"12345", 0, headers=headers, tus=False)
    assert response.status_code == 412
    assert "1.0.0" in response.headers["Tus-Version"].split(",")
    assert server.offset(url) == 0
    assert tail_bytes(url) in (None, b"")


@pytest.mark.parametrize("version", [None, "0.2.2"], ids=["missing", "0.2.2"])
def test_unsupported_tus_resumable_on_delete_is_412_and_keeps_the_upload(server: Tus, version: str | None) -> None:
    """A DELETE without a supported Tus-Resumable gets 412 with Tus-Version; the upload survives."""
    url = server.new(10)
    headers = {} if version is None else {"Tus-Resumable": version}
    response = server.delete(url, headers=headers, tus=False)
    assert response.status_code == 412
    assert "1.0.0" in response.headers["Tus-Version"].split(",")
    assert server.head(url).status_code == 200


def test_unsupported_tus_resumable_on_head_is_412_without_upload_offset(server: Tus) -> None:
    """A HEAD without Tus-Resumable gets 412 with Tus-Version and reveals nothing of the upload."""
    url = server.new(10)
    response = server.head(url, tus=False)
    assert response.status_code == 412
    assert "1.0.0" in response.headers["Tus-Version"].split(",")
    assert "Upload-Offset" not in response.headers


# -- OPTIONS -------------------------------------------------------------------------


def test_options_answers_204_with_tus_version(server: Tus) -> None:
    """OPTIONS answers 204 with Tus-Version: 1.0.0."""
    response = server.options()
    assert response.status_code == 204
    assert response.headers["Tus-Version"].split(",") == ["1.0.0"]


def test_options_needs_no_tus_resumable(server: Tus) -> None:
    """OPTIONS is discovery: it answers 204 even without Tus-Resumable."""
    response = server.options(tus=False)
    assert response.status_code == 204
    assert "Tus-Version" in response.headers


def test_options_on_an_upload_url_answers_204_with_tus_version(server: Tus) -> None:
    """OPTIONS on an upload's own URL answers like the collection."""
    url = server.new(10)
    response = server.request("OPTIONS", url)
    assert response.status_code == 204
    assert response.headers["Tus-Version"].split(",") == ["1.0.0"]


def test_options_lists_the_extensions_really_supported(server: Tus) -> None:
    """Tus-Extension lists creation, creation-with-upload, creation-defer-length, termination, expiration, checksum."""
    extensions = server.options().headers["Tus-Extension"].split(",")
    for name in ("creation", "creation-with-upload", "creation-defer-length", "termination", "expiration",
                 "checksum"):
        assert name in extensions, extensions


def test_options_lists_checksum_algorithms(server: Tus) -> None:
    """Tus-Checksum-Algorithm lists sha1 (required) and md5, sha256, crc32."""
    algorithms = server.options().headers["Tus-Checksum-Algorithm"].split(",")
    for name in ("sha1", "md5", "sha256", "crc32"):
        assert name in algorithms, algorithms


def test_options_lists_s3s_limit_as_tus_max_size_without_a_setting(server: Tus, settings: Any) -> None:
    """Without RINDLE_TUS_MAX_SIZE, Tus-Max-Size is S3's own hard limit (5 TiB)."""
    settings.RINDLE_TUS_MAX_SIZE = None
    assert server.options().headers["Tus-Max-Size"] == str(5 * 1024**4)


def test_options_never_lists_more_than_s3s_limit(server: Tus, settings: Any) -> None:
    settings.RINDLE_TUS_MAX_SIZE = 6 * 1024**4
    assert server.options().headers["Tus-Max-Size"] == str(5 * 1024**4)


def test_options_lists_tus_max_size_when_a_limit_is_set(server: Tus, settings: Any) -> None:
    """With RINDLE_TUS_MAX_SIZE set, OPTIONS carries Tus-Max-Size with that number."""
    settings.RINDLE_TUS_MAX_SIZE = 12345678
    assert server.options().headers["Tus-Max-Size"] == "12345678"


# -- HEAD ----------------------------------------------------------------------------


def test_head_of_a_new_upload_answers_offset_zero(server: Tus) -> None:
    """HEAD answers 200 or 204 with Upload-Offset, also when it is 0."""
    url = server.new(100)
    response = server.head(url)
    assert response.status_code in (200, 204)
    assert response.headers["Upload-Offset"] == "0"


def test_head_answers_the_offset_after_a_patch(server: Tus) -> None:
    """HEAD answers the stored offset after a PATCH."""
    url = server.new(100)
    assert server.patch(url, b"x" * 42, 0).status_code == 204
    assert server.head(url).headers["Upload-Offset"] == "42"


def test_head_of_a_complete_upload_answers_offset_and_length(server: Tus) -> None:
    """HEAD answers Upload-Offset also when the upload is complete (it equals Upload-Length)."""
    url = server.upload(b"abcdef")
    response = server.head(url)
    assert response.status_code in (200, 204)
    assert response.headers["Upload-Offset"] == "6"
    assert response.headers["Upload-Length"] == "6"


def test_head_answers_upload_length_when_known(server: Tus) -> None:
    """HEAD carries Upload-Length when the length is known, and no Upload-Defer-Length."""
    url = server.new(1234)
    response = server.head(url)
    assert response.headers["Upload-Length"] == "1234"
    assert "Upload-Defer-Length" not in response.headers


def test_head_answers_upload_defer_length_while_length_unknown(server: Tus) -> None:
    """HEAD carries Upload-Defer-Length: 1 (and no Upload-Length) while the length is deferred."""
    url = server.new(defer=True)
    response = server.head(url)
    assert response.headers["Upload-Defer-Length"] == "1"
    assert "Upload-Length" not in response.headers


def test_head_answers_cache_control_no_store(server: Tus) -> None:
    """HEAD answers Cache-Control: no-store, so no cache ever serves a stale offset."""
    url = server.new(10)
    directives = [d.strip() for d in server.head(url).headers["Cache-Control"].split(",")]
    assert "no-store" in directives


def test_head_of_an_unknown_upload_is_404_without_upload_offset(server: Tus) -> None:
    """HEAD of an upload that never existed is 404, without Upload-Offset."""
    response = server.head(server.collection + secrets.token_urlsafe(24))
    assert response.status_code == 404
    assert "Upload-Offset" not in response.headers


def test_head_of_a_terminated_upload_is_410_without_upload_offset(server: Tus) -> None:
    """HEAD of an upload we know was terminated is 410, without Upload-Offset."""
    url = server.new(10)
    assert server.delete(url).status_code == 204
    response = server.head(url)
    assert response.status_code == 410
    assert "Upload-Offset" not in response.headers


# -- unknown ids ---------------------------------------------------------------------

ODD_IDS = {
    "random": "{random}",
    "dot-dot": "..",
    "dot-dot-traversal": "..%2F..%2Fetc%2Fpasswd",
    "dot-dot-suffix": "{real}..",
    "encoded-slash-suffix": "{real}%2F..",
    "encoded-slash-prefix": "..%2F{real}",
    "unicode": "%C3%A9t%C3%A9-%E2%9C%93-{random}",
    "unicode-suffix": "{real}%C3%A9",
    "nul": "{real}%00",
    "too-long": "A" * 65,
}


@pytest.mark.parametrize("odd", list(ODD_IDS.values()), ids=list(ODD_IDS))
def test_unknown_or_malformed_upload_id_is_404(server: Tus, odd: str) -> None:
    """Any id that names no upload (also one with .., %2F, unicode or NUL) is 404 to HEAD, PATCH, DELETE, never 500."""
    real_url = server.new(10)
    real = real_url.rstrip("/").rsplit("/", 1)[-1]
    upload_id = odd.format(real=real, random=secrets.token_urlsafe(24))
    path = server.path_of(server.collection) + upload_id
    for method in ("HEAD", "PATCH", "DELETE"):
        headers = {"Tus-Resumable": "1.0.0"}
        if method == "PATCH":
            headers.update({"Upload-Offset": "0", "Content-Type": OFFSET_TYPE})
        response = server.raw(method, path, headers, b"12345" if method == "PATCH" else b"")
        assert response.status == 404, (method, response.status, response.body)
        assert response.headers.get("Tus-Resumable") == "1.0.0", method
        assert response.headers.get("Upload-Offset") is None, method
    # The real upload is untouched by requests naming something like it.
    assert server.offset(real_url) == 0


# -- PATCH ---------------------------------------------------------------------------


def test_patch_answers_204_with_the_new_offset(server: Tus) -> None:
    """A successful PATCH answers 204 with the new Upload-Offset."""
    url = server.new(100)
    response = server.patch(url, b"a" * 30, 0)
    assert response.status_code == 204
    assert response.headers["Upload-Offset"] == "30"
    response = server.patch(url, b"b" * 20, 30)
    assert response.status_code == 204
    assert response.headers["Upload-Offset"] == "50"


@pytest.mark.parametrize(
    "content_type", [None, "application/octet-stream", "text/plain", "application/offset+octet-stream-x"],
    ids=["missing", "octet-stream", "text-plain", "lookalike"],
)
def test_patch_without_the_offset_content_type_is_415_and_stores_nothing(server: Tus, content_type: str | None) -> None:
    """PATCH requires Content-Type: application/offset+octet-stream, else 415; the offset does not move."""
    url = server.new(100)
    assert server.patch(url, b"a" * 10, 0).status_code == 204
    response = server.patch(url, b"b" * 10, 10, content_type=content_type)
    assert response.status_code == 415
    assert server.offset(url) == 10
    assert tail_bytes(url) == b"a" * 10


@pytest.mark.parametrize("sent", [0, 5, 11, 100], ids=["behind", "inside", "ahead", "at-length"])
def test_patch_at_the_wrong_offset_is_409_and_changes_nothing(server: Tus, sent: int) -> None:
    """Upload-Offset must equal the stored offset, else 409; nothing changes."""
    url = server.new(100)
    assert server.patch(url, b"a" * 10, 0).status_code == 204
    response = server.patch(url, b"b" * 10, sent)
    assert response.status_code == 409
    assert server.offset(url) == 10
    assert tail_bytes(url) == b"a" * 10


def test_patch_at_the_wrong_offset_is_answered_before_its_body_is_read(server: Tus) -> None:
    """A 409 does not consume the body: it is answered while the body has not even been sent."""
    url = server.new(1000)
    assert server.patch(url, b"a" * 10, 0).status_code == 204
    headers = {"Tus-Resumable": "1.0.0", "Upload-Offset": "0", "Content-Type": OFFSET_TYPE}
    response = server.answer_without_body("PATCH", server.path_of(url), headers, declared=500)
    assert response.status == 409
    assert server.offset(url) == 10
    assert tail_bytes(url) == b"a" * 10


def test_chunked_patch_is_stored_or_refused_never_silently_dropped(server: Tus) -> None:
    """A PATCH whose body comes chunked (no Content-Length) is applied, or refused with a 4xx; a 204 means stored."""
    url = server.new(100)

    def body() -> Iterator[bytes]:
        yield b"a" * 10
        yield b"b" * 10

    response = requests.patch(url, data=body(), headers={**TUS, "Upload-Offset": "0", "Content-Type": OFFSET_TYPE},
                              timeout=120)
    if response.status_code == 204:
        assert response.headers["Upload-Offset"] == "20"
        assert server.offset(url) == 20
    else:
        assert 400 <= response.status_code < 500, response.status_code
        assert server.offset(url) == 0


def test_patch_without_upload_offset_is_400_and_stores_nothing(server: Tus) -> None:
    """PATCH without Upload-Offset is 400 with a reason; the offset does not move."""
    url = server.new(100)
    response = server.request("PATCH", url, b"abc", headers={"Content-Type": OFFSET_TYPE})
    assert_bad_request(response, "Upload-Offset")
    assert server.offset(url) == 0


@pytest.mark.parametrize("value", list(BAD_INTEGERS.values()), ids=list(BAD_INTEGERS))
def test_malformed_upload_offset_is_400_and_never_moves_the_offset(server: Tus, value: str) -> None:
    """Upload-Offset must be a non-negative decimal no larger than 2^63-1; else 400 (never 500), offset unchanged."""
    url = server.new(100)
    assert server.patch(url, b"a" * 10, 0).status_code == 204
    before = server.head(url).headers["Upload-Offset"]
    response = server.patch(url, b"b" * 10, value)
    assert_bad_request(response, "Upload-Offset")
    assert server.head(url).headers["Upload-Offset"] == before == "10"
    assert tail_bytes(url) == b"a" * 10


@pytest.mark.parametrize("value", list(BAD_INTEGERS.values()), ids=list(BAD_INTEGERS))
def test_malformed_upload_length_on_post_is_400_and_creates_nothing(server: Tus, value: str) -> None:
    """Upload-Length must be a non-negative decimal no larger than 2^63-1; else 400 (never 500), no upload."""
    before = session_count()
    response = server.create(headers={"Upload-Length": value})
    assert_bad_request(response, "Upload-Length")
    assert "Location" not in response.headers
    assert session_count() == before


@pytest.mark.parametrize("value", list(BAD_INTEGERS.values()), ids=list(BAD_INTEGERS))
def test_malformed_upload_length_on_patch_is_400_and_never_moves_the_offset(server: Tus, value: str) -> None:
    """A malformed Upload-Length on the PATCH of a deferred upload is 400; offset and length unchanged."""
    url = server.new(defer=True)
    assert server.patch(url, b"a" * 10, 0).status_code == 204
    response = server.patch(url, b"b" * 10, 10, headers={"Upload-Length": value})
    assert_bad_request(response, "Upload-Length")
    head = server.head(url)
    assert head.headers["Upload-Offset"] == "10"
    assert head.headers["Upload-Defer-Length"] == "1"
    assert tail_bytes(url) == b"a" * 10


def test_upload_length_of_exactly_2_63_minus_1_is_not_a_malformed_header(server: Tus) -> None:
    """2^63-1 is a well-formed Upload-Length: refused for its size (413), not as malformed (400)."""
    response = server.create(MAX_INT64)
    assert response.status_code == 413


def test_patch_past_the_declared_length_is_refused_and_stores_nothing_past_it(server: Tus, s3: S3) -> None:
    """A PATCH that would pass Upload-Length is 400 or 413 and stores nothing past it."""
    data = payload(100)
    url = server.new(len(data))
    assert server.patch(url, data[:60], 0).status_code == 204
    response = server.patch(url, data[60:] + b"overflow", 60)
    assert response.status_code in (400, 413)
    assert server.offset(url) == 60
    assert tail_bytes(url) == data[:60]
    assert server.patch(url, data[60:], 60).status_code == 204
    session = session_of(url)
    assert s3.client.head_object(Bucket=s3.bucket, Key=session.key)["ContentLength"] == len(data)
    assert s3.sha256(session.key) == sha256(data)


def test_patch_to_a_complete_upload_with_bytes_is_refused(server: Tus, s3: S3) -> None:
    """A PATCH with bytes to a complete upload passes its length: 400 or 413, the object is unchanged."""
    data = payload(50)
    url = server.upload(data)
    response = server.patch(url, b"more", len(data))
    assert response.status_code in (400, 413)
    assert s3.sha256(session_of(url).key) == sha256(data)


# -- X-HTTP-Method-Override ----------------------------------------------------------


def test_method_override_patch_through_post_stores_the_bytes(server: Tus, s3: S3) -> None:
    """X-HTTP-Method-Override: PATCH on a POST is treated as a PATCH."""
    data = payload(64)
    url = server.new(len(data))
    headers = {"X-HTTP-Method-Override": "PATCH", "Upload-Offset": "0", "Content-Type": OFFSET_TYPE}
    response = server.request("POST", url, data, headers=headers)
    assert response.status_code == 204
    assert response.headers["Upload-Offset"] == str(len(data))
    assert s3.sha256(session_of(url).key) == sha256(data)


def test_method_override_delete_through_post_terminates(server: Tus) -> None:
    """X-HTTP-Method-Override: DELETE on a POST is treated as a DELETE."""
    url = server.new(64)
    response = server.request("POST", url, headers={"X-HTTP-Method-Override": "DELETE"})
    assert response.status_code == 204
    assert server.head(url).status_code == 410


def test_method_override_head_through_post_answers_the_offset(server: Tus) -> None:
    """X-HTTP-Method-Override: HEAD on a POST answers like a HEAD, with Upload-Offset."""
    url = server.new(64)
    assert server.patch(url, b"a" * 7, 0).status_code == 204
    response = server.request("POST", url, headers={"X-HTTP-Method-Override": "HEAD"})
    assert response.status_code in (200, 204)
    assert response.headers["Upload-Offset"] == "7"
    assert response.headers["Upload-Length"] == "64"
    assert "no-store" in response.headers["Cache-Control"]
