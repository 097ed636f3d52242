"""A client of the IETF "Resumable Uploads for HTTP" draft over real HTTP.

draft-ietf-httpbis-resumable-upload: every request carries
``Upload-Draft-Interop-Version`` (the interop version a test is
parametrized over) and no ``Tus-Resumable`` unless a test says otherwise.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import socket
import struct
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import requests

# The interop versions the server serves: 5 (draft -03), 6 (-04, -05), 7 (-06 to -08), 8 (-09 on).
VERSIONS = (5, 6, 7, 8)
# The versions that know Upload-Limit, problem details and digests.
SINCE_6 = (6, 7, 8)
# The versions that answer inconsistent lengths with a problem document.
SINCE_7 = (7, 8)
PARTIAL_UPLOAD = "application/partial-upload"
PROBLEM_JSON = "application/problem+json"
PROBLEM_TYPES = "https://iana.org/assignments/http-problem-types#"
INTEROP = "Upload-Draft-Interop-Version"

DIGESTS: dict[str, Callable[[bytes], bytes]] = {
    "sha-256": lambda d: hashlib.sha256(d).digest(),
    "sha-512": lambda d: hashlib.sha512(d).digest(),
    "md5": lambda d: hashlib.md5(d).digest(),
    "sha": lambda d: hashlib.sha1(d).digest(),
}


def sf_bytes(raw: bytes) -> str:
    """A structured-field byte sequence: ``:base64:``."""
    return f":{base64.b64encode(raw).decode('ascii')}:"


def digest_field(data: bytes, algorithm: str = "sha-256") -> str:
    """A Content-Digest / Repr-Digest value (RFC 9530) of ``data``."""
    return f"{algorithm}={sf_bytes(DIGESTS[algorithm](data))}"


def success_status(version: int) -> int:
    """What a successful append answers: 201 up to interop 6, 204 from 7."""
    return 201 if version in (5, 6) else 204


def parse_dictionary(value: str) -> dict[str, Any]:
    """A structured-field dictionary of integers, booleans and tokens
    (enough for Upload-Limit); parameters are dropped."""
    out: dict[str, Any] = {}
    for member in value.split(","):
        member = member.strip()
        if not member:
            continue
        member = member.split(";", 1)[0]
        key, sep, raw = member.partition("=")
        key = key.strip()
        raw = raw.strip()
        if not sep:
            out[key] = True
        elif raw in ("?1", "?0"):
            out[key] = raw == "?1"
        else:
            try:
                out[key] = int(raw)
            except ValueError:
                out[key] = raw
    return out


def upload_limit(response: requests.Response) -> dict[str, Any]:
    assert "Upload-Limit" in response.headers, dict(response.headers)
    return parse_dictionary(response.headers["Upload-Limit"])


def problem(response: requests.Response) -> dict[str, Any]:
    """The problem document (RFC 9457) of a response, checked to be one."""
    content_type = response.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
    assert content_type == PROBLEM_JSON, (response.status_code, content_type, response.text)
    document = json.loads(response.content)
    assert isinstance(document, dict), document
    return document


def assert_problem(response: requests.Response, status: int, kind: str) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.text)
    document = problem(response)
    assert document.get("type") == PROBLEM_TYPES + kind, document
    assert isinstance(document.get("title"), str) and document["title"], document
    return document


def upload_complete(response: requests.Response) -> bool:
    value = response.headers["Upload-Complete"].strip()
    assert value in ("?0", "?1"), value
    return value == "?1"


class Draft:
    """Speaks one interop version of the draft to one collection URL."""

    def __init__(self, collection: str, version: int) -> None:
        self.collection = collection
        self.version = version
        parts = urlsplit(collection)
        self.host = parts.hostname or "localhost"
        self.port = parts.port or 80

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {INTEROP: str(self.version), **(extra or {})}

    def request(self, method: str, url: str, data: Any = b"", headers: dict[str, str] | None = None,
                *, interop: bool = True) -> requests.Response:
        all_headers = self.headers(headers) if interop else dict(headers or {})
        # A connection per request, as in the tus suite.
        return requests.request(method, url, data=data, headers=all_headers, allow_redirects=False, timeout=120)

    def options(self, url: str | None = None, headers: dict[str, str] | None = None,
                *, interop: bool = True) -> requests.Response:
        return self.request("OPTIONS", url or self.collection, headers=headers, interop=interop)

    def create(self, body: bytes = b"", *, complete: bool | None = False, length: int | str | None = None,
               headers: dict[str, str] | None = None) -> requests.Response:
        h: dict[str, str] = {}
        if complete is not None:
            h["Upload-Complete"] = "?1" if complete else "?0"
        if length is not None:
            h["Upload-Length"] = str(length)
        h.update(headers or {})
        return self.request("POST", self.collection, body, headers=h)

    def new(self, body: bytes = b"", **kwargs: Any) -> str:
        """Create an upload; its absolute URL."""
        response = self.create(body, **kwargs)
        assert response.status_code == 201, (response.status_code, response.text)
        return response.headers["Location"]

    def head(self, url: str, headers: dict[str, str] | None = None) -> requests.Response:
        return self.request("HEAD", url, headers=headers)

    def append(self, url: str, data: Any, offset: int | str | None, *, complete: bool | None = False,
               content_type: str | None = PARTIAL_UPLOAD,
               headers: dict[str, str] | None = None) -> requests.Response:
        h: dict[str, str] = {}
        if offset is not None:
            h["Upload-Offset"] = str(offset)
        if complete is not None:
            h["Upload-Complete"] = "?1" if complete else "?0"
        if content_type is not None:
            h["Content-Type"] = content_type
        h.update(headers or {})
        return self.request("PATCH", url, data, headers=h)

    def delete(self, url: str, headers: dict[str, str] | None = None) -> requests.Response:
        return self.request("DELETE", url, headers=headers)

    def state(self, url: str) -> tuple[int, bool]:
        """The upload's offset and completeness, as a draft HEAD tells them."""
        response = self.head(url)
        assert response.status_code == 204, response.status_code
        return int(response.headers["Upload-Offset"]), upload_complete(response)

    def cut_append(self, url: str, data: bytes, offset: int, declared: int, *, reset: bool = False) -> None:
        """Send a PATCH declaring ``declared`` body bytes, send only ``data``
        and drop the connection: close the client's side (and read whatever
        answer comes), or with ``reset`` reset the connection."""
        path = urlsplit(url).path
        head = (
            f"PATCH {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"{INTEROP}: {self.version}\r\nUpload-Offset: {offset}\r\nUpload-Complete: ?1\r\n"
            f"Content-Type: {PARTIAL_UPLOAD}\r\nContent-Length: {declared}\r\n\r\n"
        ).encode("ascii")
        with socket.create_connection((self.host, self.port), timeout=30) as sock:
            sock.sendall(head + data)
            time.sleep(0.3)
            if reset:
                # Linger 0: the close resets the connection, as a dropped network does.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                return
            sock.shutdown(socket.SHUT_WR)
            with contextlib.suppress(OSError):
                while sock.recv(65536):
                    pass

    def wait_for_offset(self, url: str, offset: int, timeout: float = 20.0) -> requests.Response:
        """HEAD until the upload shows ``offset`` (a cut request is noticed a little later)."""
        deadline = time.monotonic() + timeout
        while True:
            response = self.head(url)
            if response.status_code == 204 and response.headers.get("Upload-Offset") == str(offset):
                return response
            if time.monotonic() > deadline:
                return response
            time.sleep(0.2)
