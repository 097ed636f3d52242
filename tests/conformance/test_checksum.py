"""PROTOCOL.md, Checksum: Upload-Checksum is checked over each request's body."""

from __future__ import annotations

import base64
import hashlib
import zlib
from collections.abc import Callable

import pytest

from ..conftest import PART, S3, MiB, parts_held, payload, sha256
from .conftest import Tus, assert_bad_request, session_of, tail_bytes


def crc32(data: bytes) -> bytes:
    # The big-endian 4-byte CRC-32, as the checksum extension's crc32 is sent.
    return zlib.crc32(data).to_bytes(4, "big")


DIGESTS: dict[str, Callable[[bytes], bytes]] = {
    "sha1": lambda d: hashlib.sha1(d).digest(),
    "md5": lambda d: hashlib.md5(d).digest(),
    "sha256": lambda d: hashlib.sha256(d).digest(),
    "crc32": crc32,
}


def checksum(algorithm: str, data: bytes) -> dict[str, str]:
    return {"Upload-Checksum": f"{algorithm} {base64.b64encode(DIGESTS[algorithm](data)).decode()}"}


def test_checksum_is_advertised_with_sha1(server: Tus) -> None:
    """OPTIONS lists the checksum extension and Tus-Checksum-Algorithm includes sha1."""
    options = server.options()
    assert "checksum" in options.headers["Tus-Extension"].split(",")
    assert "sha1" in options.headers["Tus-Checksum-Algorithm"].split(",")


@pytest.mark.parametrize("algorithm", list(DIGESTS))
def test_matching_checksum_is_accepted(server: Tus, s3: S3, algorithm: str) -> None:
    """A PATCH whose Upload-Checksum matches its body is stored (sha1, md5, sha256, crc32)."""
    data = payload(PART + 1234, seed=11)
    url = server.new(len(data))
    split = 777
    first = server.patch(url, data[:split], 0, headers=checksum(algorithm, data[:split]))
    assert first.status_code == 204, first.text
    second = server.patch(url, data[split:], split, headers=checksum(algorithm, data[split:]))
    assert second.status_code == 204, second.text
    assert s3.sha256(session_of(url).key) == sha256(data)


@pytest.mark.parametrize("algorithm", list(DIGESTS))
def test_mismatching_checksum_is_460_and_keeps_nothing(server: Tus, algorithm: str) -> None:
    """A body that does not match Upload-Checksum is 460; none of its bytes are kept, the offset stays."""
    data = payload(1000, seed=12)
    url = server.new(len(data))
    assert server.patch(url, data[:100], 0).status_code == 204
    response = server.patch(url, data[100:600], 100, headers=checksum(algorithm, data[100:599] + b"!"))
    assert response.status_code == 460
    assert server.offset(url) == 100
    assert tail_bytes(url) == data[:100]


def test_checksum_algorithm_name_is_matched_case_insensitively(server: Tus) -> None:
    """SHA1 names the sha1 algorithm: algorithm names are tokens compared without case."""
    url = server.new(10)
    digest = base64.b64encode(hashlib.sha1(b"0123456789").digest()).decode()
    assert server.patch(url, b"0123456789", 0, headers={"Upload-Checksum": f"SHA1 {digest}"}).status_code == 204


@pytest.mark.parametrize("algorithm", ["whirlpool", "sha3-256", "blake2b", "crc64"])
def test_unsupported_checksum_algorithm_is_400_and_keeps_nothing(server: Tus, algorithm: str) -> None:
    """An algorithm outside Tus-Checksum-Algorithm is 400; none of the body is kept, the offset stays."""
    url = server.new(1000)
    assert server.patch(url, b"a" * 100, 0).status_code == 204
    response = server.patch(url, b"b" * 100, 100, headers={"Upload-Checksum": f"{algorithm} AAAAAAAAAAAAAAAAAAAAAA=="})
    assert_bad_request(response, algorithm)
    assert server.offset(url) == 100
    assert tail_bytes(url) == b"a" * 100


@pytest.mark.parametrize(
    "value", ["sha1", "sha1 !!!notbase64!!!", "sha1 YQ=", "sha1  YQ==", "", "sha1 YQ== extra"],
    ids=["no-digest", "bad-base64", "bad-padding", "two-spaces", "empty", "three-fields"],
)
def test_malformed_upload_checksum_is_400_and_keeps_nothing(server: Tus, value: str) -> None:
    """A malformed Upload-Checksum is 400 with a reason; the offset stays."""
    url = server.new(1000)
    assert server.patch(url, b"a" * 100, 0).status_code == 204
    response = server.patch(url, b"b" * 100, 100, headers={"Upload-Checksum": value})
    assert_bad_request(response, "Upload-Checksum")
    assert server.offset(url) == 100
    assert tail_bytes(url) == b"a" * 100


def test_mismatch_over_a_body_spanning_several_parts_commits_no_part(server: Tus, s3: S3) -> None:
    """A 460 body that spans several parts commits none of them: parts, offset and tail are as before."""
    data = payload(3 * PART + 4321, seed=13)
    url = server.new(len(data))
    assert server.patch(url, data[:MiB], 0).status_code == 204
    before = session_of(url)
    assert before.parts == []
    body = data[MiB : MiB + 2 * PART + 5]
    response = server.patch(url, body, MiB, headers=checksum("sha1", body[:-1] + b"?"))
    assert response.status_code == 460
    after = session_of(url)
    assert after.parts == before.parts == []
    assert after.offset == MiB
    assert server.offset(url) == MiB
    assert tail_bytes(url) == data[:MiB]

    # The same body, now with its true checksum, goes in, and so does the rest.
    assert server.patch(url, body, MiB, headers=checksum("sha1", body)).status_code == 204
    assert [p["size"] for p in session_of(url).parts] == [PART, PART]
    rest = data[MiB + len(body) :]
    assert server.patch(url, rest, MiB + len(body), headers=checksum("sha256", rest)).status_code == 204
    assert s3.sha256(session_of(url).key) == sha256(data)


def test_mismatch_after_committed_parts_keeps_them_and_nothing_more(server: Tus, s3: S3) -> None:
    """460 after earlier parts were committed leaves those parts and the offset exactly as they were
    (a part that waited for S3 in its part file may be committed meanwhile: it was the row's already)."""
    data = payload(3 * PART, seed=14)
    url = server.new(len(data))
    assert server.patch(url, data[: PART + 10], 0).status_code == 204
    before = session_of(url)
    body = data[PART + 10 : 2 * PART + 20]
    response = server.patch(url, body, PART + 10, headers=checksum("md5", body + b"x"))
    assert response.status_code == 460
    after = session_of(url)
    assert (parts_held(after), after.offset) == (parts_held(before), PART + 10)
    assert tail_bytes(url) == data[PART : PART + 10]
    assert server.patch(url, data[PART + 10 :], PART + 10).status_code == 204
    assert s3.sha256(session_of(url).key) == sha256(data)


def test_creation_with_upload_checks_upload_checksum(server: Tus, s3: S3) -> None:
    """A POST body with a matching Upload-Checksum is stored like a checked PATCH."""
    data = payload(4000, seed=15)
    response = server.create(len(data), body=data, headers=checksum("crc32", data))
    assert response.status_code == 201
    assert response.headers["Upload-Offset"] == str(len(data))
    assert s3.sha256(session_of(response.headers["Location"]).key) == sha256(data)
