"""A request body as the receiver reads it.

* Reads are bounded and sized to the client's pace. A server's read may
  return only once it has all it was asked for (gunicorn's own does), so
  asking a slow client for a whole MiB would hide its progress for minutes:
  the size doubles while reads come back full and quickly, and halves while
  they take long, between ``MIN_READ`` and ``RINDLE_TUS_READ_CHUNK_SIZE``. A
  stream whose reads return what has arrived (``partial_reads``: the socket
  under gunicorn, ``socket_body``; the ASGI entry point's) is asked for
  ``RINDLE_TUS_READ_CHUNK_SIZE`` at once.
* The stalled-body rule (``stall``): a read that waits ``RINDLE_TUS_BODY_TIMEOUT``
  seconds for its bytes, or a stretch of that many seconds spent waiting in
  reads that brings fewer than ``RINDLE_TUS_BODY_MIN_RATE`` bytes a second,
  ends the body. Only time spent waiting for the client counts, never time
  the receiver spends on S3.
* A read that blocks can be ended from another thread (``interrupt``): the
  read side of the client's socket is shut, so the read returns what it has,
  as on a disconnect. Only a read blocked for ``BLOCKED`` seconds is ended
  so: a client that is still sending gets its answer on a whole connection.
  The socket is found where the server exposes it (``request_socket``).
* However a server reports a client that went away (OSError,
  UnreadablePostError, gunicorn's NoMoreData...), it is a disconnect.
* ``slots`` bounds how many bodies one process reads at once
  (``RINDLE_TUS_MAX_BODIES``), so slow bodies cannot take every thread the
  rest of the site needs; past the bound, a new body takes the place of one
  that has proven slower than ``RINDLE_TUS_BODY_MIN_RATE``, or is refused at
  once (503 ``busy``).
* A body left unread by a refusal is read off and dropped after the answer
  has gone out (``discard``), at most ``DISCARD_BYTES`` for at most
  ``DISCARD_SECONDS``. A server that closes with the body unread sends a
  reset that can reach the client before it reads the answer (tus-js-client
  then sees only EPIPE); a client that has the answer stops sending, so the
  bounded discard usually takes all that is left, and a short body leaves the
  connection fit for the next request.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import suppress
from typing import Any, Protocol

from .conf import tus_settings
from .exceptions import BodyStalled, Busy, TusError

logger = logging.getLogger("rindle_tus")

KiB = 1024
MIN_READ = 8 * KiB
FIRST_READ = MIN_READ
# A read that comes back full within this is a sign to ask for more; one that takes longer than SLOW, for less.
QUICK = 0.05
SLOW = 0.5
# A read waiting this long is blocked on the client: a stop ends it. A younger
# one returns soon by itself, and the holder then sees the stop, while the
# connection stays whole for its response.
BLOCKED = 0.5
DISCARD_BYTES = 4 * 1024 * KiB
DISCARD_SECONDS = 2.0
# How long a body must have waited in reads before its rate may be judged
# to give its slot to a newcomer.
JUDGE = 2.0

# The request META key under which a tus view finds a body that the ASGI
# entry point streams (``rindle_tus.asgi``), in place of Django's spooled one.
STREAM_KEY = "rindle_tus.stream"


class Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


class Empty:
    def read(self, size: int = -1, /) -> bytes:
        return b""


def request_socket(environ: Mapping[str, Any]) -> socket.socket | None:
    """The client's socket, where the server lets it be found: gunicorn (every
    worker class) puts it in the environ; Django's development and test
    servers read the body from a file over it."""
    sock = environ.get("gunicorn.socket")
    if isinstance(sock, socket.socket):
        return sock
    # Django's LimitedStream (which keeps only its stream's bound read), then
    # a BufferedReader, then its SocketIO.
    stream = environ.get("wsgi.input")
    for _ in range(4):
        if isinstance(stream, socket.socket):
            return stream
        inner = getattr(stream, "raw", None) or getattr(stream, "_sock", None)
        stream = inner if inner is not None else getattr(getattr(stream, "_read", None), "__self__", None)
    return None


class Body:
    def __init__(
        self,
        stream: Readable,
        length: int | None,
        sock: socket.socket | None = None,
        *,
        discardable: bool = False,
        interrupter: Callable[[], None] | None = None,
    ) -> None:
        self.stream = stream
        # Ends a blocked read where there is no socket to shut (the ASGI
        # entry point's streamed body).
        self._interrupter = interrupter
        # Content-Length; None for a chunked body.
        self.length = length
        self.received = 0
        self.disconnected = False
        self.ended = False
        self._sock = sock
        # Whether what is left may be discarded once answered, under a read
        # timeout on the socket (gunicorn's reader survives one; it does the
        # same for its own drain).
        self._discard_sock = sock if discardable else None
        self._lock = threading.Lock()
        self._largest = max(1, tus_settings.READ_CHUNK_SIZE)
        # A stream whose reads return what has arrived asks for the most at once.
        self._partial = bool(getattr(stream, "partial_reads", False))
        self._size = self._largest if self._partial else min(FIRST_READ, self._largest)
        self._timeout = tus_settings.BODY_TIMEOUT
        self._min_rate = tus_settings.BODY_MIN_RATE
        self._reading_since: float | None = None
        self._read_time = 0.0
        self._evicted: TusError | None = None
        # Read time and bytes received when the current window of the rate rule began.
        self._window = (0.0, 0)

    def read(self, size: int) -> bytes:
        """At most ``size`` bytes; b"" at the end of the body or when the client is gone."""
        size = max(1, min(size, self._size))
        started = time.monotonic()
        with self._lock:
            self._reading_since = started
        data = b""
        try:
            data = self.stream.read(size)
        except TusError:
            raise
        except Exception:
            logger.debug("reading the request body failed", exc_info=True)
            self.disconnected = True
        finally:
            took = time.monotonic() - started
            with self._lock:
                self._reading_since = None
                self._read_time += took
                self.received += len(data)
        if not data:
            if self.length is not None:
                # Content-Length promised more.
                self.disconnected = True
            elif not self.disconnected:
                self.ended = True
        if not self._partial:
            self._pace(len(data) == size, took)
        return data

    def _pace(self, full: bool, took: float) -> None:
        """The next read's size, for a stream whose read waits until it has all it was asked."""
        if full and took < QUICK:
            self._size = min(self._size * 2, self._largest)
        elif took > SLOW:
            self._size = max(self._size // 2, min(MIN_READ, self._largest))

    def stall(self) -> TusError | None:
        """The stalled-body rule; run from the heartbeat thread."""
        if self._evicted is not None:
            return self._evicted
        if self._timeout <= 0:
            return None
        now = time.monotonic()
        with self._lock:
            reading = self._reading_since
            read_time = self._read_time + (now - reading if reading is not None else 0.0)
            received = self.received
            window_time, window_bytes = self._window
        if reading is not None and now - reading >= self._timeout:
            return BodyStalled(
                f"No byte of the body arrived for {self._timeout:g} s; the {received} bytes before were kept."
            )
        if read_time - window_time < self._timeout:
            return None
        rate = (received - window_bytes) / (read_time - window_time)
        if rate < self._min_rate:
            return BodyStalled(
                f"The body arrived at {rate:.0f} bytes/s, slower than the {self._min_rate:g} this server "
                f"accepts; the {received} bytes before were kept."
            )
        with self._lock:
            self._window = (read_time, received)
        return None

    def rate(self) -> tuple[float, float, float]:
        """Seconds spent waiting in reads so far, bytes a second over them,
        and how long the current read has been waiting (0 if none)."""
        now = time.monotonic()
        with self._lock:
            reading = self._reading_since
            blocked = now - reading if reading is not None else 0.0
            read_time = self._read_time + blocked
            received = self.received
        return read_time, received / read_time if read_time > 0 else float("inf"), blocked

    def evict(self, reason: TusError) -> None:
        """Have the stalled-body rule end this body at its next look."""
        self._evicted = reason

    def interrupt(self) -> None:
        """End a read blocked on the client (from any thread): shut the
        socket's read side (the response can still be written), or under
        the ASGI entry point end the wait for the next message. With no read
        blocked, nothing."""
        with self._lock:
            reading = self._reading_since
            if reading is None or time.monotonic() - reading < BLOCKED:
                return
            if self._sock is not None:
                # socket.socket's own shutdown: an SSLSocket's would also tear down TLS for the response.
                with suppress(OSError):
                    socket.socket.shutdown(self._sock, socket.SHUT_RD)
            elif self._interrupter is not None:
                self._interrupter()

    def close(self) -> None:
        """Reading is over: never interrupt the socket again (the server may reuse it)."""
        with self._lock:
            self._sock = None
            self._interrupter = None

    @property
    def unread(self) -> bool:
        """Whether the client may still be sending bytes nobody read."""
        if self.disconnected or self.ended:
            return False
        return self.length is None or self.received < self.length

    def discard(self) -> None:
        """Read off and drop what the client still sends, within the bounds;
        the server then keeps the connection (the body was all read) or ends
        it. Called once the answer was written (from the response's close)."""
        sock = self._discard_sock
        if sock is None or not self.unread:
            return
        deadline = time.monotonic() + DISCARD_SECONDS
        left = DISCARD_BYTES
        prior = sock.gettimeout()
        try:
            while left > 0 and self.unread:
                wait = deadline - time.monotonic()
                if wait <= 0:
                    break
                sock.settimeout(wait)
                want = min(64 * KiB, left, self.length - self.received if self.length is not None else left)
                data = self.stream.read(want)
                if not data:
                    break
                left -= len(data)
                self.received += len(data)
        except Exception:  # a timeout, or the client gone: the server closes the connection
            logger.debug("discarding a refused body stopped", exc_info=True)
        finally:
            with suppress(OSError):
                sock.settimeout(prior)


class Slots:
    """How many bodies this process reads at once (``RINDLE_TUS_MAX_BODIES``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._bodies: set[Body] = set()

    def enter(self, body: Body) -> None:
        limit = tus_settings.MAX_BODIES
        if limit is None:
            return
        with self._lock:
            if len(self._bodies) >= limit:
                self._make_room(limit)
            self._bodies.add(body)

    def _make_room(self, limit: int) -> None:
        """Take the place of the slowest body that has proven slower than
        ``RINDLE_TUS_BODY_MIN_RATE``: over all its reading so far, or by its
        current read, blocked for longer than the smallest read takes at that
        rate (the bytes inside a blocked read cannot be seen)."""
        threshold = tus_settings.BODY_MIN_RATE or 1.0
        blocked_limit = MIN_READ / threshold
        slowest: tuple[float, Body] | None = None
        for candidate in self._bodies:
            waited, rate, blocked = candidate.rate()
            if not ((waited >= JUDGE and rate < threshold) or blocked >= blocked_limit):
                continue
            if slowest is None or rate < slowest[0]:
                slowest = (rate, candidate)
        if slowest is None:
            raise Busy(f"This server reads {limit} upload bodies at once already; retry shortly.")
        _, body = slowest
        body.evict(
            BodyStalled(
                f"The body arrived slower than the {threshold:g} bytes/s this server accepts, and another "
                f"upload needed its place; the {body.received} bytes before were kept."
            )
        )
        # It leaves on its own within a heartbeat tick; its place is given now.
        self._bodies.discard(body)

    def leave(self, body: Body) -> None:
        with self._lock:
            self._bodies.discard(body)

    def count(self) -> int:
        with self._lock:
            return len(self._bodies)


slots = Slots()
