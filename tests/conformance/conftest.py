"""A tus client over real HTTP for the conformance suite.

Every test here talks to pytest-django's live server (``live_tus``) through
``requests`` or ``http.client``; none goes through the Django test client, so
what is checked is what a client on the wire sees.
"""

from __future__ import annotations

import base64
import http.client
from dataclasses import dataclass
from email.message import Message
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from rindle_tus.models import TusSession
from rindle_tus.storage import tus_tail_path

from ..conftest import session_for

OFFSET_TYPE = "application/offset+octet-stream"
TUS = {"Tus-Resumable": "1.0.0"}


def b64(value: bytes | str) -> str:
    raw = value.encode() if isinstance(value, str) else value
    return base64.b64encode(raw).decode("ascii")


@dataclass
class RawResponse:
    status: int
    headers: Message
    body: bytes


class Tus:
    """Speaks tus 1.0.0 to one collection URL; every request carries
    ``Tus-Resumable`` unless a test says otherwise."""

    def __init__(self, collection: str) -> None:
        self.collection = collection
        parts = urlsplit(collection)
        self.host = parts.hostname or "localhost"
        self.port = parts.port or 80

    def request(self, method: str, url: str, data: bytes = b"", headers: dict[str, str] | None = None,
                *, tus: bool = True) -> requests.Response:
        all_headers = {**(TUS if tus else {}), **(headers or {})}
        # A connection per request: on a kept-alive one, the test server's small
        # writes meet delayed ACKs and every request waits 40 ms.
        return requests.request(method, url, data=data, headers=all_headers, allow_redirects=False, timeout=120)

    def options(self, headers: dict[str, str] | None = None, *, tus: bool = True) -> requests.Response:
        return self.request("OPTIONS", self.collection, headers=headers, tus=tus)

    def create(self, length: int | None = None, *, defer: bool = False, metadata: str | None = None,
               body: bytes | None = None, headers: dict[str, str] | None = None) -> requests.Response:
        h: dict[str, str] = {}
        if length is not None:
            h["Upload-Length"] = str(length)
        if defer:
            h["Upload-Defer-Length"] = "1"
        if metadata is not None:
            h["Upload-Metadata"] = metadata
        if body is not None:
            h["Content-Type"] = OFFSET_TYPE
        h.update(headers or {})
        return self.request("POST", self.collection, body or b"", headers=h)

    def new(self, length: int | None = None, **kwargs: Any) -> str:
        """Create an upload; its absolute URL."""
        if length is None and not kwargs.get("defer"):
            kwargs["defer"] = True
        response = self.create(length, **kwargs)
        assert response.status_code == 201, response.text
        return response.headers["Location"]

    def head(self, url: str, headers: dict[str, str] | None = None, *, tus: bool = True) -> requests.Response:
        return self.request("HEAD", url, headers=headers, tus=tus)

    def patch(self, url: str, data: bytes, offset: int | str, headers: dict[str, str] | None = None,
              *, content_type: str | None = OFFSET_TYPE, tus: bool = True) -> requests.Response:
        h = {"Upload-Offset": str(offset)}
        if content_type is not None:
            h["Content-Type"] = content_type
        h.update(headers or {})
        return self.request("PATCH", url, data, headers=h, tus=tus)

    def delete(self, url: str, headers: dict[str, str] | None = None, *, tus: bool = True) -> requests.Response:
        return self.request("DELETE", url, headers=headers, tus=tus)

    def get(self, url: str) -> requests.Response:
        return requests.get(url, allow_redirects=False, timeout=120)

    def offset(self, url: str) -> int:
        response = self.head(url)
        assert response.status_code in (200, 204), response.status_code
        return int(response.headers["Upload-Offset"])

    def upload(self, data: bytes, chunk: int | None = None, **create: Any) -> str:
        """Create an upload and send ``data`` in PATCHes of ``chunk`` bytes."""
        url = self.new(len(data), **create)
        step = chunk or max(len(data), 1)
        offset = 0
        while offset < len(data):
            response = self.patch(url, data[offset : offset + step], offset)
            assert response.status_code == 204, response.text
            offset = int(response.headers["Upload-Offset"])
        return url

    def path_of(self, url: str) -> str:
        return urlsplit(url).path

    def raw(self, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> RawResponse:
        """One request exactly as given: the path is neither normalised nor quoted."""
        connection = http.client.HTTPConnection(self.host, self.port, timeout=60)
        try:
            connection.putrequest(method, path, skip_host=False, skip_accept_encoding=True)
            for name, value in headers.items():
                connection.putheader(name, value)
            connection.endheaders(body or None)
            response = connection.getresponse()
            return RawResponse(response.status, response.msg, response.read())
        finally:
            connection.close()

    def answer_without_body(self, method: str, path: str, headers: dict[str, str], declared: int) -> RawResponse:
        """Send the headers of a request declaring ``declared`` body bytes but
        no body, and read the answer. A server that waits for the body before
        answering leaves this to time out."""
        connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            connection.putrequest(method, path, skip_accept_encoding=True)
            for name, value in {**headers, "Content-Length": str(declared)}.items():
                connection.putheader(name, value)
            connection.endheaders()
            response = connection.getresponse()
            return RawResponse(response.status, response.msg, response.read())
        finally:
            connection.close()


@pytest.fixture
def server(live_tus: str) -> Tus:
    return Tus(live_tus)


def session_of(url: str) -> TusSession:
    return session_for(url)


def tail_bytes(url: str) -> bytes | None:
    """The node-local tail file of an upload, or None when there is none."""
    path = tus_tail_path(session_of(url).id)
    return path.read_bytes() if path.exists() else None


def session_count() -> int:
    return TusSession.objects.count()


def assert_bad_request(response: requests.Response | RawResponse, mentions: str) -> None:
    """400 with a text reason naming what was wrong (never a 500)."""
    status = response.status_code if isinstance(response, requests.Response) else response.status
    text = response.text if isinstance(response, requests.Response) else response.body.decode()
    assert status == 400, (status, text)
    assert mentions.lower() in text.lower(), text
