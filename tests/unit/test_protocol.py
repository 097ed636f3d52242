"""Every tus header this server reads or writes, parsed and formatted
without a request: versions, integers, metadata, concatenation, checksums,
deferred lengths and HTTP dates."""

from __future__ import annotations

import base64
import hashlib
import zlib
from datetime import UTC, datetime

import pytest

from rindle_tus import cors, protocol
from rindle_tus.exceptions import InvalidHeader, InvalidMetadata, UnsupportedVersion
from rindle_tus.protocol import Checksum, Concat


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# -- Tus-Resumable ---------------------------------------------------------------


@pytest.mark.parametrize("value", ["1.0.0", " 1.0.0", "1.0.0 \t"])
def test_version_1_0_0_is_accepted(value: str) -> None:
    protocol.check_version(value)


def test_missing_version_is_unsupported_and_says_what_to_send() -> None:
    with pytest.raises(UnsupportedVersion, match=r"missing; send Tus-Resumable: 1\.0\.0") as caught:
        protocol.check_version(None)
    assert caught.value.status == 412


@pytest.mark.parametrize("value", ["0.2.2", "1.0", "1.0.0,0.2.2", "", "v1.0.0", "2.0.0"])
def test_other_versions_are_unsupported(value: str) -> None:
    with pytest.raises(UnsupportedVersion, match="not supported"):
        protocol.check_version(value)


def test_supported_versions() -> None:
    assert protocol.TUS_VERSION == "1.0.0"
    assert protocol.SUPPORTED_VERSIONS == ("1.0.0",)


# -- Upload-Length, Upload-Offset ----------------------------------------------


def test_absent_integer_is_none() -> None:
    assert protocol.parse_int(None, "Upload-Length") is None


@pytest.mark.parametrize(
    ("value", "number"),
    [("0", 0), ("42", 42), (" 42\t", 42), ("007", 7), ("9223372036854775807", 2**63 - 1)],
)
def test_decimal_integers_are_parsed(value: str, number: int) -> None:
    assert protocol.parse_int(value, "Upload-Length") == number


@pytest.mark.parametrize(
    "value",
    ["-1", "+1", "1.5", "0x10", "", " ", "1e3", "1 2", "\u0661\u0662", "\uff11", "12abc", "1\n"],
)
def test_anything_but_decimal_digits_is_refused_naming_the_header(value: str) -> None:
    with pytest.raises(InvalidHeader, match="Upload-Offset must be a non-negative decimal integer") as caught:
        protocol.parse_int(value, "Upload-Offset")
    assert caught.value.status == 400


@pytest.mark.parametrize("value", ["9223372036854775808", "9999999999999999999"])
def test_integers_past_2_63_minus_1_are_refused(value: str) -> None:
    with pytest.raises(InvalidHeader, match=r"larger than 2\^63-1"):
        protocol.parse_int(value, "Upload-Length")


def test_twenty_digits_are_refused() -> None:
    with pytest.raises(InvalidHeader, match="decimal integer"):
        protocol.parse_int("1" * 20, "Upload-Length")


# -- Upload-Defer-Length -----------------------------------------------------------


@pytest.mark.parametrize(("value", "deferred"), [(None, False), ("1", True), (" 1\t", True)])
def test_defer_length_is_absent_or_1(value: str | None, deferred: bool) -> None:
    assert protocol.parse_defer_length(value) is deferred


@pytest.mark.parametrize("value", ["0", "2", "true", "yes", "", "-1", "01", "1.0"])
def test_defer_length_other_than_1_is_refused(value: str) -> None:
    with pytest.raises(InvalidHeader, match="Upload-Defer-Length must be 1"):
        protocol.parse_defer_length(value)


# -- Upload-Metadata -----------------------------------------------------------------


@pytest.mark.parametrize("value", [None, "", "   ", "\t"])
def test_absent_or_blank_metadata_is_empty(value: str | None) -> None:
    assert protocol.parse_metadata(value, 100) == {}


def test_metadata_pairs_decode_and_keys_without_values_are_none() -> None:
    header = f"filename {b64(b'my file.txt')},empty ,flag,\t spaced {b64(b'x')} "
    assert protocol.parse_metadata(header, 8192) == {
        "filename": b"my file.txt",
        "empty": None,
        "flag": None,
        "spaced": b"x",
    }


def test_metadata_values_may_be_any_bytes() -> None:
    raw = bytes(range(256))
    assert protocol.parse_metadata(f"blob {b64(raw)}", 8192) == {"blob": raw}


def test_metadata_keys_may_hold_any_printable_ascii_but_space_and_comma() -> None:
    key = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) != ",")
    assert protocol.parse_metadata(f"{key} {b64(b'v')}", 8192) == {key: b"v"}


def test_metadata_up_to_its_bound_is_accepted_and_past_it_refused() -> None:
    header = f"k {b64(b'x' * 30)}"
    assert protocol.parse_metadata(header, len(header)) == {"k": b"x" * 30}
    with pytest.raises(InvalidMetadata, match=f"longer than {len(header) - 1} bytes"):
        protocol.parse_metadata(header, len(header) - 1)


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("filename !!!", "not valid base64"),
        ("k eA=", "not valid base64"),
        ("k eA===", "not valid base64"),
        ("k eA", "not valid base64"),
        ("k e A=", "is not 'key base64value'"),
        ("bad key eA==", "is not 'key base64value'"),
        (",", "is not 'key base64value'"),
        ("a eA==,", "is not 'key base64value'"),
        ("a eA==,a eQ==", "appears twice"),
        ("a,a", "appears twice"),
        ("k\u00e9 eA==", "forbidden character"),
        ("k\x00 eA==", "forbidden character"),
        ("k\x7f eA==", "forbidden character"),
    ],
)
def test_any_malformed_pair_refuses_the_whole_header(header: str, reason: str) -> None:
    with pytest.raises(InvalidMetadata, match=reason) as caught:
        protocol.parse_metadata(header, 8192)
    assert caught.value.code == "invalid_metadata"


def test_decoded_metadata_replaces_invalid_utf8_and_nul() -> None:
    decoded = protocol.decoded_metadata({"note": b"\x00a", "blob": b"\xff", "name": "r\u00e9".encode(), "flag": None})
    assert decoded == {"note": "\ufffda", "blob": "\ufffd", "name": "r\u00e9", "flag": None}


# -- metadata values that end up in headers -------------------------------------------


@pytest.mark.parametrize("key", [*protocol.CONTENT_TYPE_KEYS, *protocol.FILE_NAME_KEYS])
@pytest.mark.parametrize("control", ["\r\n", "\n", "\x00", "\t", "\x1b", "\x7f"], ids=repr)
def test_header_bound_values_with_a_control_character_are_refused(key: str, control: str) -> None:
    value = ("text/plain" if key in protocol.CONTENT_TYPE_KEYS else "report.pdf").encode()
    with pytest.raises(InvalidMetadata, match=f"value of {key!r} holds the control character"):
        protocol.check_header_metadata({key: value[:4] + control.encode() + value[4:]})


@pytest.mark.parametrize("key", protocol.CONTENT_TYPE_KEYS)
@pytest.mark.parametrize(
    "value", [b"text", b"text/", b"/html", b"text/ html", b"text/plain;", b'text/plain; charset="utf-8"', b"a/b,c/d"]
)
def test_content_types_that_are_not_media_types_are_refused(key: str, value: bytes) -> None:
    with pytest.raises(InvalidMetadata, match="is not a media type"):
        protocol.check_header_metadata({key: value})


def test_ordinary_and_other_values_pass_the_header_check() -> None:
    protocol.check_header_metadata(
        {
            "filetype": b"application/pdf",
            "contentType": b"text/plain; charset=utf-8",
            "filename": "r\u00e9sum\u00e9.pdf".encode(),
            "name": None,
            "type": b"",
            "note": b"line one\r\nline two\x00",
        }
    )


@pytest.mark.parametrize(
    ("text", "is_type"),
    [
        ("application/pdf", True),
        ("image/svg+xml", True),
        ("text/plain;charset=utf-8", True),
        ("text/plain ; a=b ;c=d", True),
        ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", True),
        ("text", False),
        ("text/html ", False),
        ("text/plain; charset", False),
        ("t\u00e9xt/plain", False),
        ("<svg>/x", False),
    ],
)
def test_is_media_type(text: str, is_type: bool) -> None:
    assert protocol.is_media_type(text) is is_type


def test_without_controls_drops_c0_controls_and_del_only() -> None:
    assert protocol.without_controls("a\r\nb\x00c\x1fd\x7fe f\u00e9\u0085") == "abcde f\u00e9\u0085"


# -- Upload-Checksum ---------------------------------------------------------------------


def test_absent_checksum_is_none() -> None:
    assert protocol.parse_checksum(None) is None


@pytest.mark.parametrize("algorithm", ["sha1", "sha256", "sha512", "md5"])
def test_checksums_parse_and_their_hashers_compute_the_digest(algorithm: str) -> None:
    digest = hashlib.new(algorithm, b"hello").digest()
    checksum = protocol.parse_checksum(f"{algorithm} {b64(digest)}")
    assert checksum == Checksum(algorithm, digest)
    hasher = checksum.hasher()
    hasher.update(b"hel")
    hasher.update(memoryview(b"lo"))
    assert hasher.digest() == digest


def test_crc32_is_the_big_endian_4_bytes_of_the_crc() -> None:
    digest = zlib.crc32(b"hello").to_bytes(4, "big")
    checksum = protocol.parse_checksum(f"crc32 {b64(digest)}")
    assert checksum is not None
    hasher = checksum.hasher()
    hasher.update(bytearray(b"he"))
    hasher.update(b"llo")
    assert hasher.digest() == digest
    assert protocol.CHECKSUM_ALGORITHMS["crc32"]().digest() == b"\x00\x00\x00\x00"


def test_checksum_algorithm_names_are_matched_case_insensitively() -> None:
    digest = hashlib.sha256(b"").digest()
    assert protocol.parse_checksum(f" SHA256 {b64(digest)}\t") == Checksum("sha256", digest)


def test_unsupported_algorithm_is_refused_listing_the_supported_ones() -> None:
    supported = r"'whirlpool' is not supported \(supported: sha1,sha256,sha512,md5,crc32\)"
    with pytest.raises(InvalidHeader, match=supported):
        protocol.parse_checksum(f"whirlpool {b64(b'x')}")


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("sha1", "must be '<algorithm> <base64 digest>'"),
        ("", "must be '<algorithm> <base64 digest>'"),
        ("sha1  eA==", "must be '<algorithm> <base64 digest>'"),
        ("sha1 eA== x", "must be '<algorithm> <base64 digest>'"),
        ("sha1 !!!notbase64!!!", "not valid base64"),
        ("sha1 YQ=", "not valid base64"),
        ("sha1 YWJj ZA==", "must be '<algorithm> <base64 digest>'"),
    ],
)
def test_malformed_checksums_are_refused(value: str, reason: str) -> None:
    with pytest.raises(InvalidHeader, match=reason):
        protocol.parse_checksum(value)


# -- Upload-Concat -----------------------------------------------------------------------


def test_absent_concat_is_none() -> None:
    assert protocol.parse_concat(None) is None


@pytest.mark.parametrize("value", ["partial", " partial\t"])
def test_partial(value: str) -> None:
    assert protocol.parse_concat(value) == Concat("partial")


def test_final_lists_its_partial_uploads_in_order() -> None:
    concat = protocol.parse_concat("final;/files/a https://h.example/files/b  /files/c ")
    assert concat == Concat("final", ("/files/a", "https://h.example/files/b", "/files/c"))


@pytest.mark.parametrize("value", ["final;", "final; ", " final;  \t"])
def test_final_naming_no_upload_is_refused(value: str) -> None:
    with pytest.raises(InvalidHeader, match="names no partial uploads"):
        protocol.parse_concat(value)


@pytest.mark.parametrize("value", ["", "final", "final /files/a", "Partial", "partial;", "other;/files/a"])
def test_anything_else_is_refused(value: str) -> None:
    with pytest.raises(InvalidHeader, match="must be 'partial' or 'final;<urls>'"):
        protocol.parse_concat(value)


# -- Upload-Expires ----------------------------------------------------------------------


def test_http_date_is_an_rfc_9110_gmt_date() -> None:
    assert protocol.http_date(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == "Fri, 02 Jan 2026 03:04:05 GMT"


# -- the headers a browser must be allowed to send and read ------------------------------


def test_cors_lists_every_tus_header() -> None:
    assert set(cors.CORS_ALLOW_HEADERS) >= {"tus-resumable", "upload-length", "upload-offset", "upload-metadata",
                                            "upload-concat", "upload-checksum", "upload-defer-length"}
    assert set(cors.CORS_EXPOSE_HEADERS) >= {"Location", "Upload-Offset", "Upload-Length", "Upload-Expires",
                                             "Tus-Resumable", "Tus-Version", "Tus-Max-Size"}
    assert all(name == name.lower() for name in cors.CORS_ALLOW_HEADERS)
    assert set(cors.CORS_ALLOW_METHODS) == {"DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST"}
