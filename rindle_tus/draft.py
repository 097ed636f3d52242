"""Resumable Uploads for HTTP (draft-ietf-httpbis-resumable-upload): which
interop versions are served, what differs between them, and the draft's
header parsing and formatting. Pure: no ORM, no I/O.

A request carrying ``Upload-Draft-Interop-Version`` with a version in
``VERSIONS`` speaks the draft; every other request is tus. Both reach the
same views, rows and verbs: only headers, statuses and error bodies differ.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import Message
from email.utils import collapse_rfc2231_value
from typing import Any

from .exceptions import InvalidHeader
from .protocol import CHECKSUM_ALGORITHMS, Checksum

PARTIAL_UPLOAD_TYPE = "application/partial-upload"
VERSION_HEADER = "Upload-Draft-Interop-Version"
PROBLEM_TYPE = "https://iana.org/assignments/http-problem-types#"
MISMATCHING_OFFSET = "mismatching-upload-offset"
COMPLETED_UPLOAD = "completed-upload"
INCONSISTENT_LENGTH = "inconsistent-upload-length"


@dataclass(frozen=True)
class Version:
    """One interop version, as what its drafts ask of a server differs from the newest."""

    number: int
    drafts: str
    # PATCH must carry Content-Type: application/partial-upload (from -04).
    partial_upload_type: bool
    # The key of the lifetime in Upload-Limit; None: no Upload-Limit at all (before -04).
    age_key: str | None
    # Problem types (RFC 9457) the version defines.
    problems: frozenset[str]
    # The status of a successful append (-04/-05 ask for 201).
    append_status: int
    # HEAD and DELETE must refuse Upload-Offset / Upload-Complete (-03 to -05).
    refuses_state_headers: bool
    # Content-Digest and Repr-Digest are defined (from -04).
    digests: bool

    @property
    def name(self) -> str:
        """How a row records it (``TusSession.protocol``)."""
        return f"ietf-draft-{self.number}"


_NEWEST_PROBLEMS = frozenset({MISMATCHING_OFFSET, COMPLETED_UPLOAD, INCONSISTENT_LENGTH})
VERSIONS: dict[int, Version] = {
    v.number: v
    for v in (
        Version(5, "-03", False, None, frozenset(), 201, True, False),
        Version(6, "-04, -05", True, "expires", frozenset({MISMATCHING_OFFSET, COMPLETED_UPLOAD}), 201, True, True),
        Version(7, "-06 to -08", True, "max-age", _NEWEST_PROBLEMS, 204, False, True),
        Version(8, "-09 to -11 and the editor's copy after -11", True, "max-age", _NEWEST_PROBLEMS, 204, False, True),
    )
}
NEWEST = VERSIONS[max(VERSIONS)]

# Request and response headers the draft adds, for CORS (``rindle_tus.cors``).
REQUEST_HEADERS = (
    "upload-draft-interop-version",
    "upload-complete",
    "content-disposition",
    "content-digest",
    "repr-digest",
)
RESPONSE_HEADERS = ("Upload-Draft-Interop-Version", "Upload-Complete", "Upload-Limit", "Accept-Patch")

_SF_INTEGER = re.compile(r"-?[0-9]{1,15}")


def requested(headers: Mapping[str, str]) -> int | None:
    """The interop version a request names, served or not; None if it names none."""
    value = headers.get(VERSION_HEADER)
    if value is None:
        return None
    number = sf_integer(value)
    return -1 if number is None else number


def version_of(headers: Mapping[str, str]) -> Version | None:
    """The version a request speaks, if it speaks one served here."""
    number = requested(headers)
    return None if number is None else VERSIONS.get(number)


def _bare(value: str) -> str:
    """An Item's bare value: parameters (``;name=value``) do not change it."""
    return value.split(";", 1)[0].strip(" \t")


def sf_integer(value: str | None) -> int | None:
    """A structured-field Integer, or None if absent or not one (the draft
    asks for such a field to be ignored)."""
    if value is None:
        return None
    text = _bare(value)
    return int(text) if _SF_INTEGER.fullmatch(text) else None


def sf_boolean(value: str | None) -> bool | None:
    """A structured-field Boolean (``?1`` / ``?0``), or None if absent or not one."""
    if value is None:
        return None
    text = _bare(value)
    return {"?1": True, "?0": False}.get(text)


def boolean(value: bool) -> str:
    return "?1" if value else "?0"


def non_negative(value: str | None) -> int | None:
    """An Integer field that must not be negative (offsets and lengths)."""
    number = sf_integer(value)
    return number if number is not None and number >= 0 else None


def upload_limit(version: Version, *, max_size: int, max_append: int | None, max_age: int | None) -> str | None:
    """``Upload-Limit`` in the version's keys; None for a version without it."""
    if version.age_key is None:
        return None
    members = [f"max-size={max_size}"]
    if max_append is not None:
        members.append(f"max-append-size={max_append}")
    if max_age is not None:
        members.append(f"{version.age_key}={max(0, max_age)}")
    return ", ".join(members)


def problem(version: Version, kind: str, title: str, **members: Any) -> dict[str, Any] | None:
    """The problem details (RFC 9457) of ``kind``, if the version defines it."""
    if kind not in version.problems:
        return None
    return {"type": PROBLEM_TYPE + kind, "title": title, **members}


# RFC 9530's algorithm names, as the checksum machinery names them.
DIGEST_ALGORITHMS = {"sha-256": "sha256", "sha-512": "sha512", "md5": "md5", "sha": "sha1"}
# Strongest first: of several digests in one field, the strongest is checked.
_PREFERENCE = ("sha-512", "sha-256", "sha", "md5")


def parse_digest(value: str | None, header: str) -> Checksum | None:
    """``Content-Digest`` or ``Repr-Digest``: a Dictionary of algorithm to
    Byte Sequence (``sha-256=:base64:``), as the checksum of the strongest
    algorithm it holds."""
    if value is None:
        return None
    digests: dict[str, bytes] = {}
    for member in value.split(","):
        name, sep, rest = member.strip(" \t").partition("=")
        encoded = _bare(rest)
        if not sep or len(encoded) < 2 or encoded[0] != ":" or encoded[-1] != ":":
            raise InvalidHeader(f"{header} must be a dictionary such as 'sha-256=:<base64>:', got {value!r}.")
        try:
            digests[name.strip().lower()] = base64.b64decode(encoded[1:-1], validate=True)
        except binascii.Error:
            raise InvalidHeader(f"The {header} value of {name!r} is not valid base64.") from None
    for name in _PREFERENCE:
        if name in digests:
            algorithm = DIGEST_ALGORITHMS[name]
            assert algorithm in CHECKSUM_ALGORITHMS
            return Checksum(algorithm, digests[name])
    supported = ", ".join(_PREFERENCE)
    raise InvalidHeader(f"{header} names no algorithm this server checks (it checks {supported}).")


def filename_of(content_disposition: str | None) -> str | None:
    """The file name of a ``Content-Disposition`` (RFC 6266): ``filename*``
    when given, else ``filename``."""
    if not content_disposition:
        return None
    message = Message()
    message["Content-Disposition"] = content_disposition
    plain: str | None = None
    for key, value in message.get_params(header="content-disposition") or ():
        if key != "filename":
            continue
        if isinstance(value, tuple):
            # filename*: RFC 8187's charset'language'percent-encoded form.
            return collapse_rfc2231_value(value) or None
        plain = plain or value or None
    return plain
