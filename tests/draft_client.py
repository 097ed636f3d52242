"""A small client of the IETF draft "Resumable Uploads for HTTP", interop
version 8, written from the draft's text with ``http.client`` and nothing
else, for the real-client tests (tests/test_client_draft.py).

What it sends, per the draft:

* upload creation: ``POST`` to the endpoint with ``Upload-Draft-Interop-Version:
  8``, ``Upload-Complete`` (``?1`` when the body is the whole representation),
  ``Upload-Length`` when the length is known, and the representation's own
  ``Content-Type`` and ``Content-Disposition``; the body is the start of the
  representation, possibly empty;
* offset retrieval: ``HEAD`` on the upload resource, reading ``Upload-Offset``
  and ``Upload-Complete`` (and ``Upload-Length`` if the server says it);
* upload append: ``PATCH`` with ``Content-Type: application/partial-upload``,
  ``Upload-Offset`` (where the body starts) and ``Upload-Complete``;
* upload cancellation: ``DELETE``.

``Upload-Offset`` and ``Upload-Complete`` are parsed as Structured Fields
(RFC 9651): an Item whose bare value is an sf-integer, resp. an sf-boolean
(``?0``/``?1``), parameters allowed and ignored; anything else is a protocol
error (``ProtocolError``), never a guess. Interim (1xx) responses are read
past; the ``Location`` of a ``104 Upload Resumption Supported`` is kept, so a
creation cut before its final response can still be resumed.

``DraftClient.upload`` is what an application using this client would call:
it creates the upload with the first chunk as the creation's body, appends the
rest, and, when a request fails (no answer: the connection was reset or
closed; or 5xx, 423, or 409 for an offset the server does not have), waits,
asks ``HEAD`` for the offset and appends from there. It waits 0, 1, 3 and 5 s
before the successive attempts (tus-js-client's default delays), longer if
the server sent ``Retry-After``, and gives up (``UploadFailed``) after those
four; as in tus-js-client, an attempt that moved the offset forward starts the
count over. Other client errors (4xx) are not retried. It retries nothing on
a test's behalf: the tests call it once, as an application would.
"""

from __future__ import annotations

import http.client
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.message import Message
from urllib.parse import urljoin, urlsplit

INTEROP_VERSION = 8
PARTIAL_UPLOAD = "application/partial-upload"
# tus-js-client's default retry delays, in seconds.
DEFAULT_DELAYS: tuple[float, ...] = (0, 1, 3, 5)
# The longest Retry-After the client honours.
MAX_RETRY_AFTER = 30.0
RETRYABLE = frozenset({409, 423})


class ProtocolError(Exception):
    """The server answered something the draft does not allow."""


class UploadFailed(Exception):
    """``upload`` gave up: a request the client does not retry failed, or every attempt did."""

    def __init__(self, message: str, url: str | None, last: Response | BaseException | None) -> None:
        super().__init__(f"{message} (upload {url}; last: {last!r})")
        self.url = url
        self.last = last


# -- Structured Fields (RFC 9651), the two Items the draft uses -------------------------

_INTEGER = re.compile(r"-?[0-9]{1,15}")
_BOOLEAN = re.compile(r"\?[01]")
_KEY = r"[a-z*][a-z0-9_\-.*]*"
_BARE_ITEM = (
    r'(?:-?[0-9]{1,12}\.[0-9]{1,3}|-?[0-9]{1,15}|"(?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\["\\])*"'
    r"|[A-Za-z*][!#$%&'*+\-.^_`|~0-9A-Za-z:/]*|:[A-Za-z0-9+/=]*:|\?[01]|@-?[0-9]{1,15})"
)
_PARAMETERS = re.compile(rf"(?:; *{_KEY}(?:={_BARE_ITEM})?)*")


def _parse_item(value: str, bare: re.Pattern[str], name: str) -> str:
    """The bare item of an Item (RFC 9651, section 4.2.3) matching ``bare``;
    its parameters are checked and ignored. Leading and trailing SP are
    allowed; HTTP already strips other whitespace."""
    text = value.strip(" ")
    match = bare.match(text)
    if match is None:
        raise ProtocolError(f"{name}: {value!r} is not a Structured Field of the expected type")
    rest = text[match.end() :]
    if _PARAMETERS.fullmatch(rest) is None:
        raise ProtocolError(f"{name}: {value!r} is not a Structured Field Item")
    return match.group()


def parse_sf_integer(value: str, name: str = "field") -> int:
    """An Item that is an sf-integer: ``"123"``, ``"123;a=1"``. Not a decimal, not two members."""
    return int(_parse_item(value, _INTEGER, name))


def parse_sf_boolean(value: str, name: str = "field") -> bool:
    """An Item that is an sf-boolean: ``"?1"`` or ``"?0"``."""
    return _parse_item(value, _BOOLEAN, name) == "?1"


def sf_boolean(value: bool) -> str:
    return "?1" if value else "?0"


# -- responses ------------------------------------------------------------------------------


class _Response(http.client.HTTPResponse):
    """An ``HTTPResponse`` that reads past every interim (1xx) response, not only
    100, recording them in ``interim`` (``http.client`` would return a 104 as
    the final response)."""

    interim: list[tuple[int, Message]]

    def _read_status(self) -> tuple[str, int, str]:
        if not hasattr(self, "interim"):
            self.interim = []
        while True:
            version, status, reason = super()._read_status()  # type: ignore[misc]
            if not 100 <= status < 200 or status == 101:
                return str(version), int(status), str(reason)
            self.interim.append((int(status), http.client.parse_headers(self.fp)))


class _Connection(http.client.HTTPConnection):
    response_class = _Response


@dataclass
class Response:
    """A final response, with the draft's fields parsed (None when absent)."""

    method: str
    status: int
    headers: Message
    body: bytes
    url: str
    location: str | None = None
    offset: int | None = None
    complete: bool | None = None
    length: int | None = None
    interim: list[int] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        values = self.headers.get_all(name)
        return None if values is None else ", ".join(values)

    @property
    def retry_after(self) -> float | None:
        value = self.header("Retry-After")
        return float(value) if value is not None and value.strip().isdigit() else None

    def __repr__(self) -> str:
        return (
            f"Response({self.method} {self.url} -> {self.status}, offset={self.offset}, "
            f"complete={self.complete}, body={self.body[:200]!r})"
        )


@dataclass
class _Progress:
    """Where ``DraftClient.upload`` stands."""

    data: bytes
    step: int
    url: str | None
    filename: str | None
    ask: bool  # whether to ask the server's offset before the next append
    offset: int = 0
    done: bool = False


@dataclass(frozen=True)
class UploadState:
    """What offset retrieval answered."""

    offset: int
    complete: bool
    length: int | None


# -- the client ---------------------------------------------------------------------------


class DraftClient:
    """One client, one keep-alive connection, reopened after a failure.

    ``endpoint`` is the URL uploads are created at; ``sleep`` is called for
    every wait (``time.sleep``; a test may record the waits)."""

    def __init__(
        self,
        endpoint: str,
        *,
        version: int = INTEROP_VERSION,
        timeout: float = 60.0,
        delays: Sequence[float] = DEFAULT_DELAYS,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.endpoint = endpoint
        self.version = version
        self.timeout = timeout
        self.delays = tuple(delays)
        self.sleep = sleep
        # Every final response and every failed request of ``upload``, in order, for the tests to read.
        self.log: list[Response | BaseException] = []
        self._connection: _Connection | None = None
        self._origin: tuple[str, str] | None = None

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def __enter__(self) -> DraftClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- one request each -----------------------------------------------------------------

    def request(self, method: str, url: str, headers: dict[str, str], body: bytes | None = None) -> Response:
        """Send one request; the final response, read whole. A connection that
        fails is closed (the next request opens a new one) and the error raised."""
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"not an http URL: {url}")
        origin = (parts.hostname, str(parts.port or 80))
        if self._connection is None or self._origin != origin:
            self.close()
            self._connection = _Connection(parts.hostname, parts.port or 80, timeout=self.timeout)
            self._origin = origin
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        all_headers = {"Upload-Draft-Interop-Version": str(self.version), **headers}
        connection = self._connection
        try:
            connection.request(method, target, body=body, headers=all_headers)
            raw = connection.getresponse()
            content = raw.read()
        except BaseException:
            self.close()
            raise
        assert isinstance(raw, _Response)
        response = Response(method, raw.status, raw.msg, content, url, interim=[s for s, _ in raw.interim])
        location = response.header("Location")
        if location is None:
            # A 104 Upload Resumption Supported carries the upload's URL before the final response.
            location = next((h["Location"] for s, h in raw.interim if s == 104 and h["Location"]), None)
        if location is not None:
            response.location = urljoin(url, location)
        for name, attribute, parse in (
            ("Upload-Offset", "offset", parse_sf_integer),
            ("Upload-Complete", "complete", parse_sf_boolean),
            ("Upload-Length", "length", parse_sf_integer),
        ):
            value = response.header(name)
            if value is not None:
                setattr(response, attribute, parse(value, name))
        if raw.will_close:
            self.close()
        return response

    def create(
        self,
        body: bytes = b"",
        *,
        complete: bool,
        length: int | None = None,
        filename: str | None = None,
        content_type: str | None = "application/octet-stream",
    ) -> Response:
        """Upload creation: ``body`` is the start of the representation (maybe all of it)."""
        headers = {"Upload-Complete": sf_boolean(complete)}
        if length is not None:
            headers["Upload-Length"] = str(length)
        if content_type is not None:
            headers["Content-Type"] = content_type
        if filename is not None:
            quoted = filename.replace("\\", "\\\\").replace('"', '\\"')
            headers["Content-Disposition"] = f'attachment; filename="{quoted}"'
        return self.request("POST", self.endpoint, headers, body)

    def offset(self, url: str) -> Response:
        """Offset retrieval (HEAD)."""
        return self.request("HEAD", url, {})

    def state(self, url: str) -> UploadState:
        """Offset retrieval, checked: the upload's offset, completeness and length."""
        response = self.offset(url)
        if not 200 <= response.status < 300:
            raise ProtocolError(f"offset retrieval answered {response!r}")
        if response.offset is None or response.complete is None:
            raise ProtocolError(f"offset retrieval without Upload-Offset or Upload-Complete: {response!r}")
        return UploadState(response.offset, response.complete, response.length)

    def append(self, url: str, body: bytes, offset: int, *, complete: bool) -> Response:
        """Upload append: ``body`` goes at ``offset``."""
        headers = {
            "Content-Type": PARTIAL_UPLOAD,
            "Upload-Offset": str(offset),
            "Upload-Complete": sf_boolean(complete),
        }
        return self.request("PATCH", url, headers, body)

    def cancel(self, url: str) -> Response:
        """Upload cancellation (DELETE)."""
        return self.request("DELETE", url, {})

    # -- a whole upload, resumed after failures ---------------------------------------

    def upload(
        self,
        data: bytes,
        chunk_size: int | None = None,
        *,
        url: str | None = None,
        filename: str | None = None,
    ) -> str:
        """Upload ``data`` (``chunk_size`` bytes a request; None: one request) and
        return the upload's URL. With ``url``, resume that upload instead of
        creating one: offset retrieval first, then appends from its offset."""
        progress = _Progress(data, chunk_size or max(len(data), 1), url, filename, ask=url is not None)
        attempt = 0
        while True:
            before = progress.offset
            failure = self._attempt(progress)
            if failure is None:
                if progress.done:
                    assert progress.url is not None
                    return progress.url
                if progress.offset > before:
                    attempt = 0  # progress: the count starts over
                    continue
                # A success that took none of the bytes sent counts as a failed attempt.
                failure = self.log[-1]
            # Ask the server where the upload stands before appending again (when there is one).
            progress.ask = progress.url is not None
            if attempt >= len(self.delays):
                raise UploadFailed(f"gave up after {attempt} attempts", progress.url, failure)
            wait = self.delays[attempt]
            if isinstance(failure, Response) and failure.retry_after is not None:
                wait = max(wait, min(failure.retry_after, MAX_RETRY_AFTER))
            attempt += 1
            self.sleep(wait)

    def _attempt(self, progress: _Progress) -> Response | BaseException | None:
        """One creation, or one offset retrieval (when ``progress.ask``) and one
        append; updates ``progress``. The failure worth another attempt, or None."""
        data = progress.data
        try:
            if progress.url is None:
                first = data[: progress.step]
                response = self.create(first, complete=len(first) == len(data), length=len(data),
                                       filename=progress.filename)
                if response.location is not None:
                    progress.url = response.location
            else:
                if progress.ask:
                    head = self.offset(progress.url)
                    self.log.append(head)
                    if not 200 <= head.status < 300:
                        return self._failed(head, progress.url)
                    if self._take(progress, head):
                        return None
                    progress.ask = False
                chunk = data[progress.offset : progress.offset + progress.step]
                response = self.append(progress.url, chunk, progress.offset,
                                       complete=progress.offset + len(chunk) == len(data))
        except (OSError, http.client.HTTPException) as error:
            # No final response: what reached the server is its to keep; the next attempt asks it.
            self.log.append(error)
            return error
        self.log.append(response)
        if not 200 <= response.status < 300:
            return self._failed(response, progress.url)
        if progress.url is None:
            raise ProtocolError(f"creation answered without Location: {response!r}")
        self._take(progress, response)
        return None

    def _take(self, progress: _Progress, response: Response) -> bool:
        """Take the state a successful response tells, checked against the data; whether the upload is complete."""
        data = progress.data
        if response.offset is None or response.complete is None:
            raise ProtocolError(f"a success without Upload-Offset or Upload-Complete: {response!r}")
        if not 0 <= response.offset <= len(data):
            raise ProtocolError(f"offset {response.offset} outside the {len(data)} bytes: {response!r}")
        if response.complete and response.offset != len(data):
            raise ProtocolError(f"complete at {response.offset} of {len(data)} bytes: {response!r}")
        progress.offset = response.offset
        progress.done = response.complete
        return progress.done

    def _failed(self, response: Response, url: str | None) -> Response:
        """A response that is no success: returned if worth another attempt, raised otherwise."""
        if response.status >= 500 or response.status in RETRYABLE:
            return response
        raise UploadFailed(f"the server refused with {response.status}", url, response)
