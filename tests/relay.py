"""A TCP relay in front of an HTTP server that fails the way a phone's network does when it changes networks.

The phone's own socket dies at once (the client sees a connection reset), but nothing reaches the server: its side of
the connection stays open and silent, its read blocked, until a timeout or a keep-alive probe gives up. That is the
hardest disconnect for an upload server (no FIN, no RST, no error to react to), so the tests need it on demand:
``ClientRelay`` follows the requests it carries and can cut the next matching one after exactly so many body bytes
(``drop``) or every connection at once (``reset_clients``), resetting the client and leaving the server's socket
open, never again read, written or closed until the relay is closed.
"""

from __future__ import annotations

import enum
import logging
import re
import select
import socket
import struct
import threading
import time
from dataclasses import dataclass
from types import TracebackType

log = logging.getLogger(__name__)

PIECE = 64 * 1024
# Longest request head or chunk-size/trailer line followed; past it the connection passes through unparsed.
LINE_LIMIT = 64 * 1024
_HEX = re.compile(rb"[0-9A-Fa-f]+")


def _reset(sock: socket.socket) -> None:
    """Close with an RST. Only call this when no other thread is in a call on ``sock``: a thread blocked in
    ``recv`` or ``poll`` on it keeps the kernel socket alive, so nothing would be sent until that call returns."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


@dataclass(eq=False)
class _Drop:
    method: str
    after: int
    path_contains: str | None

    def matches(self, method: str, target: str) -> bool:
        return method == self.method and (self.path_contains is None or self.path_contains in target)


class _State(enum.Enum):
    HEAD = enum.auto()
    BODY = enum.auto()  # Content-Length body; ``remaining`` bytes left
    CHUNK_SIZE = enum.auto()
    CHUNK_DATA = enum.auto()  # ``remaining`` bytes of the current chunk left
    CHUNK_END = enum.auto()  # the CRLF after a chunk's data
    TRAILERS = enum.auto()
    RAW = enum.auto()  # unparseable: pass the rest of the connection through


class _RequestStream:
    """Follows the requests on one client-to-server byte stream and says where to cut it."""

    def __init__(self, relay: ClientRelay) -> None:
        self.relay = relay
        self.state = _State.HEAD
        self.buffer = bytearray()  # the head or line read so far
        self.remaining = 0
        self.forwarded = 0  # body payload bytes of the current request
        self.drop: _Drop | None = None

    def feed(self, data: bytes) -> tuple[int, bool]:
        """How many bytes of ``data`` to forward, and whether to cut the connection right after them."""
        pos = 0
        while True:
            if self.drop is not None and self.forwarded == self.drop.after:
                fired = self.relay._fire(self.drop)
                self.drop = None
                if fired:
                    return pos, True
            if self.state is _State.BODY and self.remaining == 0:
                self._end_request()
            if pos == len(data) or self.state is _State.RAW:
                return len(data), False
            pos = self._step(data, pos)

    def _step(self, data: bytes, pos: int) -> int:
        state = self.state
        if state is _State.HEAD:
            return self._head(data, pos)
        if state is _State.BODY or state is _State.CHUNK_DATA:
            return self._payload(data, pos)
        end = data.find(b"\n", pos)
        if state is _State.CHUNK_END:
            if end >= 0:
                self.state = _State.CHUNK_SIZE
            return len(data) if end < 0 else end + 1
        # CHUNK_SIZE or TRAILERS: one line
        if end < 0:
            self.buffer += data[pos:]
            if len(self.buffer) > LINE_LIMIT:
                self.state = _State.RAW
            return len(data)
        self.buffer += data[pos:end]
        line = bytes(self.buffer).rstrip(b"\r")
        self.buffer.clear()
        if state is _State.TRAILERS:
            if not line:
                self._end_request()
        else:
            self._chunk_size(line)
        return end + 1

    def _payload(self, data: bytes, pos: int) -> int:
        """Body bytes (of a length-delimited body or of a chunk), up to a drop point."""
        n = min(self.remaining, len(data) - pos)
        if self.drop is not None:
            n = min(n, self.drop.after - self.forwarded)
        self.remaining -= n
        self.forwarded += n
        if self.state is _State.CHUNK_DATA and self.remaining == 0:
            self.state = _State.CHUNK_END
        return pos + n

    def _chunk_size(self, line: bytes) -> None:
        size = line.split(b";", 1)[0].strip()
        if not _HEX.fullmatch(size):
            self.state = _State.RAW
        elif int(size, 16) == 0:
            self.state = _State.TRAILERS
        else:
            self.remaining = int(size, 16)
            self.state = _State.CHUNK_DATA

    def _head(self, data: bytes, pos: int) -> int:
        if not self.buffer:
            # Clients may send empty lines between requests (RFC 9112, section 2.2).
            while pos < len(data) and data[pos] in b"\r\n":
                pos += 1
        before = len(self.buffer)
        self.buffer += data[pos:]
        end = self.buffer.find(b"\r\n\r\n", max(0, before - 3))
        if end < 0:
            if len(self.buffer) > LINE_LIMIT:
                self.state = _State.RAW
            return len(data)
        head = bytes(self.buffer[:end])
        self.buffer.clear()
        self._start_request(head)
        return pos + end + 4 - before

    def _start_request(self, head: bytes) -> None:
        lines = head.split(b"\r\n")
        words = lines[0].split()
        if len(words) < 2:
            self.state = _State.RAW
            return
        method, target = words[0].decode("latin-1"), words[1].decode("latin-1")
        headers: dict[bytes, list[bytes]] = {}
        for line in lines[1:]:
            name, colon, value = line.partition(b":")
            if colon:
                headers.setdefault(name.strip().lower(), []).append(value.strip())
        self.drop = self.relay._request_seen(method, target)
        self.forwarded = 0
        if b"transfer-encoding" in headers:
            codings = b",".join(headers[b"transfer-encoding"]).split(b",")
            # A request whose last coding is not chunked has no delimited body (RFC 9112, section 6.3).
            self.state = _State.CHUNK_SIZE if codings[-1].strip().lower() == b"chunked" else _State.RAW
            return
        lengths = {value.strip() for value in b",".join(headers.get(b"content-length", [b"0"])).split(b",")}
        length = lengths.pop()
        if lengths or not length.isdigit():
            self.state = _State.RAW
        else:
            self.state, self.remaining = _State.BODY, int(length)

    def _end_request(self) -> None:
        self.state = _State.HEAD
        self.drop = None


class _Fate(enum.IntEnum):
    """How a connection ends; a later, stronger cause overrides a weaker one."""

    CLOSE = 0  # close both sides normally
    RESET = 1  # reset the client, abandon the upstream socket
    DROP = 2  # the same, counted as a drop


class _Connection:
    """One client connection and its upstream connection, with a pump thread each way."""

    def __init__(self, relay: ClientRelay, client: socket.socket, upstream: socket.socket) -> None:
        self.relay = relay
        self.client = client
        self.upstream = upstream
        self.stream = _RequestStream(relay)
        self.lock = threading.Lock()
        self.fate: _Fate | None = None
        self.running = 2
        # A byte written here wakes both pumps from their polls; a socket being closed would not.
        self.wake_r, self.wake_w = socket.socketpair()
        for sock in (client, upstream):
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.threads = [
            threading.Thread(target=self._pump_up, daemon=True, name="relay-up"),
            threading.Thread(target=self._pump_down, daemon=True, name="relay-down"),
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def join(self, timeout: float) -> None:
        for thread in self.threads:
            thread.join(timeout)

    def stop(self, fate: _Fate) -> None:
        with self.lock:
            if self.running == 0 or (self.fate is not None and self.fate >= fate):
                return
            first = self.fate is None
            self.fate = fate
            if first:
                self.wake_w.send(b"x")

    def _wait(self, sock: socket.socket, event: int) -> bool:
        """Wait until ``sock`` is ready for ``event``; False once the connection is stopping."""
        poller = select.poll()
        poller.register(sock, event)
        poller.register(self.wake_r, select.POLLIN)
        while True:
            ready = dict(poller.poll())
            if self.wake_r.fileno() in ready:
                return False
            if ready:
                return True

    def _send(self, sock: socket.socket, data: memoryview) -> bool:
        while data:
            if not self._wait(sock, select.POLLOUT):
                return False
            try:
                data = data[sock.send(data) :]
            except BlockingIOError:
                continue
        return True

    def _pump_up(self) -> None:
        try:
            while self._wait(self.client, select.POLLIN):
                try:
                    data = self.client.recv(PIECE)
                except BlockingIOError:
                    continue
                if not data:
                    self.upstream.shutdown(socket.SHUT_WR)
                    return
                length, cut = self.stream.feed(data)
                sent = self._send(self.upstream, memoryview(data)[:length])
                if cut:
                    self.stop(_Fate.DROP)
                    return
                if not sent:
                    return
        except OSError:
            self.stop(_Fate.CLOSE)
        except Exception:
            log.exception("relay: client-to-server pump failed")
            self.stop(_Fate.CLOSE)
        finally:
            self._exit()

    def _pump_down(self) -> None:
        try:
            while self._wait(self.upstream, select.POLLIN):
                with self.lock:
                    # Under the lock: once the connection is cut, not one more byte is read from the server.
                    if self.fate is not None:
                        return
                    try:
                        data = self.upstream.recv(PIECE)
                    except BlockingIOError:
                        continue
                if not data:
                    self.client.shutdown(socket.SHUT_WR)
                    return
                if not self._send(self.client, memoryview(data)):
                    return
        except OSError:
            self.stop(_Fate.CLOSE)
        except Exception:
            log.exception("relay: server-to-client pump failed")
            self.stop(_Fate.CLOSE)
        finally:
            self._exit()

    def _exit(self) -> None:
        """The last pump out closes the sockets; no other thread is in a call on them then."""
        with self.lock:
            self.running -= 1
            if self.running:
                return
            fate = self.fate or _Fate.CLOSE
        if fate is _Fate.CLOSE:
            self.client.close()
            self.upstream.close()
        else:
            _reset(self.client)
        self.wake_r.close()
        self.wake_w.close()
        self.relay._finished(self, None if fate is _Fate.CLOSE else self.upstream, counted=fate is _Fate.DROP)


class ClientRelay:
    """A TCP relay on an ephemeral loopback port in front of an HTTP server; see the module docstring."""

    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1") -> None:
        self.upstream_port = upstream_port
        self.upstream_host = upstream_host
        self.abandoned: list[socket.socket] = []
        self._lock = threading.Condition()
        self._requests: list[tuple[str, str]] = []
        self._drops = 0
        self._armed: _Drop | None = None
        self._connections: set[_Connection] = set()
        self._closed = False
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self._listener.setblocking(False)
        self._port = int(self._listener.getsockname()[1])
        self._wake_r, self._wake_w = socket.socketpair()
        self._acceptor = threading.Thread(target=self._accept_loop, daemon=True, name="relay-accept")
        self._acceptor.start()

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def drops(self) -> int:
        with self._lock:
            return self._drops

    @property
    def requests(self) -> list[tuple[str, str]]:
        """``(method, target)`` of every request head seen so far, in order (a copy)."""
        with self._lock:
            return list(self._requests)

    def rewrite(self, url: str) -> str:
        """``url`` with the upstream server's origin replaced by the relay's."""
        origin = re.escape(f"http://{self.upstream_host}:{self.upstream_port}")
        return re.sub(origin + r"(?![0-9])", self.url, url)

    def drop(self, method: str = "PATCH", after: int = 0, *, path_contains: str | None = None) -> None:
        """Cut the next ``method`` request (whose target contains ``path_contains``) once ``after`` bytes of its body
        went to the server: reset the client, abandon the server's side. Replaces a drop armed before."""
        if after < 0:
            raise ValueError(f"after must be >= 0, not {after}")
        with self._lock:
            self._armed = _Drop(method, after, path_contains)

    def wait_dropped(self, count: int = 1, timeout: float = 60) -> None:
        with self._lock:
            if not self._lock.wait_for(lambda: self._drops >= count, timeout):
                raise AssertionError(f"relay: {self._drops} drop(s) after {timeout} s, expected {count}")

    def reset_clients(self) -> None:
        """Reset every client connection now, leaving their upstream sides open and abandoned."""
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            connection.stop(_Fate.RESET)
        for connection in connections:
            connection.join(timeout=5)

    def release_abandoned(self) -> None:
        """Close the upstream sockets left open by drops and resets."""
        with self._lock:
            abandoned, self.abandoned = self.abandoned, []
        for sock in abandoned:
            sock.close()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._wake_w.send(b"x")
        self._acceptor.join(timeout=5)
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            connection.stop(_Fate.CLOSE)
        for connection in connections:
            connection.join(timeout=5)
        self.release_abandoned()
        self._listener.close()
        self._wake_r.close()
        self._wake_w.close()

    def __enter__(self) -> ClientRelay:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def _accept_loop(self) -> None:
        poller = select.poll()
        poller.register(self._listener, select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        while self._wake_r.fileno() not in dict(poller.poll()):
            try:
                self._accept()
            except (OSError, RuntimeError):
                # Out of file descriptors or threads, say: let some connections end, then go on.
                log.warning("relay: accepting a connection failed", exc_info=True)
                time.sleep(0.05)

    def _accept(self) -> None:
        try:
            client, _ = self._listener.accept()
        except BlockingIOError:
            return
        try:
            upstream = socket.create_connection((self.upstream_host, self.upstream_port), timeout=10)
        except OSError:
            client.close()
            return
        try:
            connection = _Connection(self, client, upstream)
        except OSError:
            client.close()
            upstream.close()
            raise
        with self._lock:
            # Started under the lock: a connection others can see can be joined.
            self._connections.add(connection)
            connection.start()

    def request_seen(self, method: str, target: str) -> None:
        """Called for every request head, before the armed drop is matched
        against it (a subclass may arm one for this very request)."""

    def dropped(self) -> None:
        """Called once per drop, in the pump thread, right after the reset."""

    def _request_seen(self, method: str, target: str) -> _Drop | None:
        """Record a request head; the armed drop if the request matches it."""
        self.request_seen(method, target)
        with self._lock:
            self._requests.append((method, target))
            armed = self._armed
        return armed if armed is not None and armed.matches(method, target) else None

    def _fire(self, drop: _Drop) -> bool:
        """Disarm ``drop`` if it is still the armed one; whether it was."""
        with self._lock:
            if self._armed is not drop:
                return False
            self._armed = None
            return True

    def _finished(self, connection: _Connection, abandoned: socket.socket | None, counted: bool) -> None:
        with self._lock:
            self._connections.discard(connection)
            if abandoned is not None:
                self.abandoned.append(abandoned)
            if counted:
                self._drops += 1
            self._lock.notify_all()
        if counted:
            self.dropped()
