"""PROTOCOL.md, Creation, creation-with-upload and creation-defer-length."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest

from ..conftest import PART, S3, MiB, payload, sha256
from .conftest import Tus, assert_bad_request, b64, session_count, session_of, tail_bytes

METADATA_LIMIT = 8192


# -- POST ----------------------------------------------------------------------------


def test_post_with_upload_length_is_201_with_the_location_of_the_new_upload(server: Tus) -> None:
    """POST with Upload-Length answers 201 and a Location under the collection that answers HEAD."""
    response = server.create(1000)
    assert response.status_code == 201
    location = response.headers["Location"]
    assert urlsplit(location).path.startswith(urlsplit(server.collection).path)
    assert server.head(location).headers["Upload-Length"] == "1000"


def test_each_post_creates_a_distinct_upload(server: Tus) -> None:
    """Two POSTs create two uploads at two URLs."""
    assert server.new(10) != server.new(10)


def test_post_with_upload_defer_length_is_201(server: Tus) -> None:
    """POST with Upload-Defer-Length: 1 (and no Upload-Length) creates an upload."""
    response = server.create(defer=True)
    assert response.status_code == 201
    assert server.head(response.headers["Location"]).headers["Upload-Defer-Length"] == "1"


def test_post_with_both_upload_length_and_defer_length_is_400(server: Tus) -> None:
    """Upload-Length and Upload-Defer-Length together are 400; no upload is made."""
    before = session_count()
    response = server.create(10, defer=True)
    assert_bad_request(response, "Upload-")
    assert session_count() == before


def test_post_with_neither_upload_length_nor_defer_length_is_400(server: Tus) -> None:
    """A POST without Upload-Length or Upload-Defer-Length is 400; no upload is made."""
    before = session_count()
    response = server.create()
    assert_bad_request(response, "Upload-Length")
    assert session_count() == before


@pytest.mark.parametrize("value", ["0", "2", "true", "yes", "", "-1"])
def test_upload_defer_length_other_than_1_is_400(server: Tus, value: str) -> None:
    """Upload-Defer-Length must be 1; any other value is 400 and makes no upload."""
    before = session_count()
    response = server.create(headers={"Upload-Defer-Length": value})
    assert_bad_request(response, "Upload-Defer-Length")
    assert session_count() == before


def test_post_over_tus_max_size_is_413(server: Tus, settings: Any) -> None:
    """Upload-Length over Tus-Max-Size is 413; no upload is made."""
    settings.RINDLE_TUS_MAX_SIZE = 1000
    before = session_count()
    assert server.create(1001).status_code == 413
    assert session_count() == before


def test_post_at_tus_max_size_is_accepted(server: Tus, settings: Any) -> None:
    """Upload-Length equal to Tus-Max-Size is allowed."""
    settings.RINDLE_TUS_MAX_SIZE = 1000
    assert server.create(1000).status_code == 201


def test_upload_length_zero_completes_at_once(server: Tus, s3: S3) -> None:
    """POST with Upload-Length: 0 is complete at once: HEAD answers offset 0 of 0, the object exists, empty."""
    response = server.create(0)
    assert response.status_code == 201
    url = response.headers["Location"]
    head = server.head(url)
    assert (head.headers["Upload-Offset"], head.headers["Upload-Length"]) == ("0", "0")
    assert s3.sha256(session_of(url).key) == sha256(b"")


# -- Upload-Metadata -----------------------------------------------------------------

ECHOED = {
    "plain": f"filename {b64('world.txt')}",
    "padding-two": f"a {b64('x')}",
    "padding-one": f"b {b64('xy')}",
    "no-padding": f"c {b64('xyz')}",
    "several": f"filename {b64('photo.jpg')},filetype {b64('image/jpeg')},size {b64('12')}",
    "empty-value": f"empty ,filename {b64('a.bin')}",
    "key-without-value": f"is_confidential,filename {b64('a.bin')}",
    "key-without-value-last": f"filename {b64('a.bin')},is_confidential",
    "utf8-value": f"filename {b64('naïve résumé ✓.txt')}",
    "binary-value": f"blob {b64(bytes(range(256)))}",
    "punctuation-key": f"x-Amz.meta_key!~ {b64('v')}",
}


@pytest.mark.parametrize("header", list(ECHOED.values()), ids=list(ECHOED))
def test_upload_metadata_is_echoed_byte_for_byte(server: Tus, header: str) -> None:
    """HEAD answers Upload-Metadata exactly as the client sent it (padding, empty values, keys without value)."""
    url = server.new(10, metadata=header)
    assert server.head(url).headers["Upload-Metadata"] == header


def test_upload_without_metadata_answers_no_metadata(server: Tus) -> None:
    """An upload created without Upload-Metadata answers none (or an empty one) on HEAD."""
    url = server.new(10)
    assert server.head(url).headers.get("Upload-Metadata", "") == ""


def test_metadata_up_to_its_bound_is_accepted(server: Tus) -> None:
    """Upload-Metadata of exactly 8192 bytes is within the bound and echoed."""
    header = _metadata_of_size(METADATA_LIMIT)
    url = server.new(10, metadata=header)
    assert server.head(url).headers["Upload-Metadata"] == header


def _metadata_of_size(size: int) -> str:
    pairs = []
    index = 0
    while sum(len(p) + 1 for p in pairs) - 1 < size - 40:
        pairs.append(f"k{index} {b64('v' * 18)}")
        index += 1
    header = ",".join(pairs)
    filler = size - len(header) - len(",pad ")
    assert filler > 0
    # A value of n base64 characters (n a multiple of 4) with a key that absorbs the rest.
    value_len = filler - filler % 4
    key = "pad" + "x" * (filler - value_len)
    header = f"{header},{key} {'QUJD' * (value_len // 4)}"
    assert len(header) == size, len(header)
    return header


BAD_METADATA = {
    "bad-base64-chars": "filename !!!!",
    "bad-base64-length": "filename YWJjZ",
    "bad-base64-padding": "filename YQ=",
    "base64url-alphabet": "filename _-__",
    "duplicate-key": f"a {b64('1')},a {b64('2')}",
    "duplicate-key-without-value": "flag,flag",
    "key-with-space": f"my key {b64('v')}",
    "empty-pair": f"a {b64('1')},,b {b64('2')}",
    "non-ascii-key": f"clé {b64('v')}",
    "oversized": _metadata_of_size(METADATA_LIMIT + 1),
}


@pytest.mark.parametrize("header", list(BAD_METADATA.values()), ids=list(BAD_METADATA))
def test_invalid_upload_metadata_is_400_and_creates_nothing(server: Tus, header: str) -> None:
    """Invalid Upload-Metadata (bad base64, duplicate or spaced keys, over 8192 bytes) is 400, never dropped."""
    before = session_count()
    response = server.create(10, metadata=header)
    assert_bad_request(response, "Upload-Metadata")
    assert session_count() == before


# -- creation-with-upload ------------------------------------------------------------


def test_post_with_a_body_stores_it_like_a_first_patch(server: Tus, s3: S3) -> None:
    """creation-with-upload: the POST body is stored and the response carries Upload-Offset."""
    data = payload(PART + MiB + 17, seed=5)
    first = PART + 3
    response = server.create(len(data), body=data[:first])
    assert response.status_code == 201
    assert response.headers["Upload-Offset"] == str(first)
    url = response.headers["Location"]
    assert server.offset(url) == first
    assert server.patch(url, data[first:], first).status_code == 204
    assert s3.sha256(session_of(url).key) == sha256(data)


def test_post_with_the_whole_body_completes_the_upload(server: Tus, s3: S3) -> None:
    """creation-with-upload: a POST carrying every byte completes the upload."""
    data = payload(12345, seed=6)
    response = server.create(len(data), body=data)
    assert response.status_code == 201
    assert response.headers["Upload-Offset"] == str(len(data))
    url = response.headers["Location"]
    assert server.offset(url) == len(data)
    assert s3.sha256(session_of(url).key) == sha256(data)


def test_post_with_a_body_past_upload_length_stores_nothing_past_it(server: Tus) -> None:
    """creation-with-upload: a body longer than Upload-Length is refused (400 or 413), nothing past it kept."""
    response = server.create(10, body=b"0123456789abc")
    assert response.status_code in (400, 413)
    if "Location" in response.headers:
        url = response.headers["Location"]
        assert server.offset(url) == 0
        assert tail_bytes(url) in (None, b"")


def test_post_without_the_offset_content_type_ignores_the_body(server: Tus) -> None:
    """A POST body without Content-Type application/offset+octet-stream is not upload data."""
    response = server.request("POST", server.collection, b"not upload data",
                              headers={"Upload-Length": "100", "Content-Type": "text/plain"})
    assert response.status_code == 201
    assert server.offset(response.headers["Location"]) == 0


# -- creation-defer-length -----------------------------------------------------------


def test_deferred_length_is_set_by_a_later_patch(server: Tus, s3: S3) -> None:
    """With a deferred length, a PATCH carrying Upload-Length sets it; HEAD then answers it."""
    data = payload(3000, seed=7)
    url = server.new(defer=True)
    assert server.patch(url, data[:1000], 0).status_code == 204
    assert server.patch(url, data[1000:2000], 1000, headers={"Upload-Length": str(len(data))}).status_code == 204
    head = server.head(url)
    assert head.headers["Upload-Length"] == str(len(data))
    assert "Upload-Defer-Length" not in head.headers
    assert server.patch(url, data[2000:], 2000).status_code == 204
    assert s3.sha256(session_of(url).key) == sha256(data)


def test_deferred_length_set_by_the_completing_patch_completes_the_upload(server: Tus, s3: S3) -> None:
    """Upload-Length sent with the last bytes of a deferred upload completes it."""
    data = payload(PART + 999, seed=8)
    url = server.new(defer=True)
    assert server.patch(url, data[:PART], 0).status_code == 204
    response = server.patch(url, data[PART:], PART, headers={"Upload-Length": str(len(data))})
    assert response.status_code == 204
    assert response.headers["Upload-Offset"] == str(len(data))
    assert s3.sha256(session_of(url).key) == sha256(data)


def test_deferred_length_can_never_change_once_set(server: Tus) -> None:
    """Once set, Upload-Length cannot change: a different value is 400 and nothing is stored."""
    url = server.new(defer=True)
    assert server.patch(url, b"a" * 10, 0, headers={"Upload-Length": "100"}).status_code == 204
    response = server.patch(url, b"b" * 10, 10, headers={"Upload-Length": "200"})
    assert_bad_request(response, "Upload-Length")
    head = server.head(url)
    assert (head.headers["Upload-Offset"], head.headers["Upload-Length"]) == ("10", "100")


def test_deferred_length_repeated_with_the_same_value_is_accepted(server: Tus) -> None:
    """Repeating the Upload-Length already set is harmless."""
    url = server.new(defer=True)
    assert server.patch(url, b"a" * 10, 0, headers={"Upload-Length": "100"}).status_code == 204
    assert server.patch(url, b"b" * 10, 10, headers={"Upload-Length": "100"}).status_code == 204
    assert server.offset(url) == 20


def test_known_length_cannot_be_changed_by_a_patch(server: Tus) -> None:
    """An upload created with Upload-Length keeps it: a PATCH with another value is 400."""
    url = server.new(100)
    response = server.patch(url, b"a" * 10, 0, headers={"Upload-Length": "50"})
    assert_bad_request(response, "Upload-Length")
    assert server.head(url).headers["Upload-Length"] == "100"
    assert server.offset(url) == 0


def test_deferred_length_smaller_than_the_bytes_received_is_400(server: Tus) -> None:
    """A deferred Upload-Length below the bytes already stored is 400; nothing changes."""
    url = server.new(defer=True)
    assert server.patch(url, b"a" * 10, 0).status_code == 204
    response = server.patch(url, b"b" * 5, 10, headers={"Upload-Length": "5"})
    assert_bad_request(response, "Upload-Length")
    head = server.head(url)
    assert head.headers["Upload-Offset"] == "10"
    assert head.headers["Upload-Defer-Length"] == "1"
