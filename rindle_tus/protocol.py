"""Pure tus 1.0.0 header parsing and formatting: no ORM, no I/O."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from typing import Protocol

from .exceptions import InvalidHeader, InvalidMetadata, UnsupportedVersion

TUS_VERSION = "1.0.0"
SUPPORTED_VERSIONS = (TUS_VERSION,)
OFFSET_CONTENT_TYPE = "application/offset+octet-stream"
MAX_INT64 = 2**63 - 1
_DECIMAL = re.compile(r"[0-9]{1,19}")
# Keys are printable ASCII without spaces or commas; values standard base64.
_META_KEY = re.compile(r"[!-+\--~]+")
_BASE64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
# C0 controls and DEL: CR and LF split a header, and botocore and Django
# refuse a header that holds them.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# RFC 9110 media type, parameter values as tokens only (no quoted strings).
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_MEDIA_TYPE = re.compile(rf"{_TOKEN}/{_TOKEN}(?: *; *{_TOKEN}={_TOKEN})*")

# Metadata keys whose values this server puts in headers: the content type
# of the S3 object and of a download, the file name of a download.
CONTENT_TYPE_KEYS = ("filetype", "contentType", "type", "mimetype")
FILE_NAME_KEYS = ("filename", "name")

# Request headers a tus client sends and response headers it reads; publish
# these to browsers (django-cors-headers: CORS_ALLOW_HEADERS / CORS_EXPOSE_HEADERS).
REQUEST_HEADERS = (
    "tus-resumable",
    "upload-length",
    "upload-defer-length",
    "upload-offset",
    "upload-metadata",
    "upload-concat",
    "upload-checksum",
    "x-http-method-override",
    "x-requested-with",
    "content-type",
)
RESPONSE_HEADERS = (
    "Location",
    "Tus-Resumable",
    "Tus-Version",
    "Tus-Extension",
    "Tus-Max-Size",
    "Tus-Checksum-Algorithm",
    "Upload-Offset",
    "Upload-Length",
    "Upload-Defer-Length",
    "Upload-Metadata",
    "Upload-Expires",
    "Upload-Concat",
)


class _Hash(Protocol):
    def update(self, data: bytes | bytearray | memoryview, /) -> None: ...
    def digest(self) -> bytes: ...


class _Crc32:
    def __init__(self) -> None:
        self._value = 0

    def update(self, data: bytes | bytearray | memoryview, /) -> None:
        self._value = zlib.crc32(data, self._value)

    def digest(self) -> bytes:
        return self._value.to_bytes(4, "big")


CHECKSUM_ALGORITHMS: dict[str, Callable[[], _Hash]] = {
    "sha1": hashlib.sha1,
    "sha256": hashlib.sha256,
    "sha512": hashlib.sha512,
    "md5": hashlib.md5,
    "crc32": _Crc32,
}


def check_version(value: str | None) -> None:
    if value is None:
        raise UnsupportedVersion(
            "The Tus-Resumable header is missing; send Tus-Resumable: 1.0.0.", supported=SUPPORTED_VERSIONS
        )
    if value.strip() not in SUPPORTED_VERSIONS:
        raise UnsupportedVersion(
            f"Tus-Resumable {value!r} is not supported; this server speaks 1.0.0.", supported=SUPPORTED_VERSIONS
        )


def parse_int(value: str | None, header: str) -> int | None:
    """A non-negative decimal integer no larger than 2**63-1, or None if absent."""
    if value is None:
        return None
    text = value.strip(" \t")
    if not _DECIMAL.fullmatch(text):
        raise InvalidHeader(f"{header} must be a non-negative decimal integer, got {value!r}.")
    number = int(text)
    if number > MAX_INT64:
        raise InvalidHeader(f"{header} {value!r} is larger than 2^63-1.")
    return number


def parse_defer_length(value: str | None) -> bool:
    if value is None:
        return False
    if value.strip(" \t") != "1":
        raise InvalidHeader(f"Upload-Defer-Length must be 1, got {value!r}.")
    return True


def parse_metadata(value: str | None, max_size: int) -> dict[str, bytes | None]:
    """Decode ``Upload-Metadata``; any malformed pair rejects the whole header."""
    if value is None:
        return {}
    if len(value) > max_size:
        raise InvalidMetadata(f"Upload-Metadata is longer than {max_size} bytes.")
    if not value.strip():
        return {}
    result: dict[str, bytes | None] = {}
    for pair in value.split(","):
        fields = pair.strip(" \t").split(" ")
        if len(fields) > 2 or not fields[0]:
            raise InvalidMetadata(f"Upload-Metadata pair {pair!r} is not 'key base64value'.")
        key = fields[0]
        if not _META_KEY.fullmatch(key):
            raise InvalidMetadata(f"Upload-Metadata key {key!r} has a forbidden character.")
        if key in result:
            raise InvalidMetadata(f"Upload-Metadata key {key!r} appears twice.")
        if len(fields) == 1:
            result[key] = None
            continue
        encoded = fields[1]
        if not _BASE64.fullmatch(encoded):
            raise InvalidMetadata(f"Upload-Metadata value of {key!r} is not valid base64.")
        result[key] = base64.b64decode(encoded)
    return result


def check_header_metadata(metadata: Mapping[str, bytes | None]) -> None:
    """Refuse values of ``CONTENT_TYPE_KEYS`` and ``FILE_NAME_KEYS`` that cannot
    go in a header; every other key may hold any bytes, as tus allows.

    Separate from ``parse_metadata``, which also re-reads the metadata of
    uploads created before this check, and must keep accepting them.
    """
    for key in (*CONTENT_TYPE_KEYS, *FILE_NAME_KEYS):
        value = metadata.get(key)
        if not value:
            continue
        text = value.decode("utf-8", "replace")
        control = _CONTROL.search(text)
        if control:
            raise InvalidMetadata(
                f"Upload-Metadata value of {key!r} holds the control character {control.group()!r}; "
                "it would end up in a header."
            )
        if key in CONTENT_TYPE_KEYS and not is_media_type(text):
            raise InvalidMetadata(
                f"Upload-Metadata value of {key!r} is not a media type such as 'application/pdf', got {text!r}."
            )


def without_controls(text: str) -> str:
    return _CONTROL.sub("", text)


def is_media_type(text: str) -> bool:
    """Whether ``text`` is ``type/subtype`` with optional ``; name=value``
    parameters, every part a token."""
    return _MEDIA_TYPE.fullmatch(text) is not None


def decoded_metadata(metadata: Mapping[str, bytes | None]) -> dict[str, str | None]:
    """A JSON-safe view of metadata values: invalid UTF-8 and NUL (which
    PostgreSQL's jsonb refuses) become U+FFFD. The raw header is kept as sent."""
    return {
        k: None if v is None else v.decode("utf-8", "replace").replace("\x00", "\ufffd") for k, v in metadata.items()
    }


@dataclass(frozen=True)
class Checksum:
    algorithm: str
    digest: bytes

    def hasher(self) -> _Hash:
        return CHECKSUM_ALGORITHMS[self.algorithm]()


def parse_checksum(value: str | None) -> Checksum | None:
    if value is None:
        return None
    fields = value.strip(" \t").split(" ")
    if len(fields) != 2:
        raise InvalidHeader(f"Upload-Checksum must be '<algorithm> <base64 digest>', got {value!r}.")
    algorithm, encoded = fields[0].lower(), fields[1]
    if algorithm not in CHECKSUM_ALGORITHMS:
        supported = ",".join(CHECKSUM_ALGORITHMS)
        raise InvalidHeader(f"Checksum algorithm {fields[0]!r} is not supported (supported: {supported}).")
    if not _BASE64.fullmatch(encoded):
        raise InvalidHeader("The Upload-Checksum digest is not valid base64.")
    try:
        digest = base64.b64decode(encoded, validate=True)
    except binascii.Error as exc:
        raise InvalidHeader("The Upload-Checksum digest is not valid base64.") from exc
    return Checksum(algorithm, digest)


@dataclass(frozen=True)
class Concat:
    kind: str  # "partial" or "final"
    urls: tuple[str, ...] = ()


def parse_concat(value: str | None) -> Concat | None:
    if value is None:
        return None
    text = value.strip(" \t")
    if text == "partial":
        return Concat("partial")
    if text.startswith("final;"):
        urls = tuple(u for u in text[len("final;") :].split(" ") if u)
        if not urls:
            raise InvalidHeader("Upload-Concat final names no partial uploads.")
        return Concat("final", urls)
    raise InvalidHeader(f"Upload-Concat must be 'partial' or 'final;<urls>', got {value!r}.")


def http_date(moment: datetime) -> str:
    return format_datetime(moment, usegmt=True)
