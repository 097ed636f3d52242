"""Self-tests of ``tests.relay.ClientRelay`` against a small threaded HTTP server that reads bodies slowly."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.relay import ClientRelay

SILENCE = 1.0  # how long an abandoned upstream connection must stay silent


@dataclass
class Exchange:
    """One request as the upstream server got it."""

    method: str
    path: str
    peer_port: int
    body: bytearray = field(default_factory=bytearray)
    trailers: list[bytes] = field(default_factory=list)
    end: str | None = None  # "done", "eof", "reset" or "error" once the handler stopped reading


class Upstream(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.changed = threading.Condition()
        self.exchanges: list[Exchange] = []

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5) -> None:
        with self.changed:
            assert self.changed.wait_for(predicate, timeout), "upstream: timed out"

    def wait_exchange(self, index: int = 0) -> Exchange:
        self.wait_for(lambda: len(self.exchanges) > index)
        return self.exchanges[index]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 15
    server: Upstream

    def log_message(self, format: str, *args: object) -> None:
        pass

    def serve(self) -> None:
        exchange = Exchange(self.command, self.path, self.client_address[1])
        with self.server.changed:
            self.server.exchanges.append(exchange)
            self.server.changed.notify_all()
        try:
            if "chunked" in self.headers.get("Transfer-Encoding", ""):
                self.read_chunked(exchange)
            else:
                self.read(exchange, int(self.headers.get("Content-Length", 0)))
            end = "done"
        except EOFError:
            end = "eof"
        except ConnectionResetError:
            end = "reset"
        except OSError:
            end = "error"
        with self.server.changed:
            exchange.end = end
            self.server.changed.notify_all()
        if end != "done":
            self.close_connection = True
            return
        reply = f"{self.command} {self.path} {len(exchange.body)}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = serve

    def read(self, exchange: Exchange, size: int) -> None:
        """Read ``size`` body bytes in small pieces, slowly, recording each as it comes."""
        while size:
            piece = self.rfile.read1(min(size, 4096))
            if not piece:
                raise EOFError
            with self.server.changed:
                exchange.body += piece
                self.server.changed.notify_all()
            size -= len(piece)
            time.sleep(0.001)

    def read_chunked(self, exchange: Exchange) -> None:
        while size := int(self.line().split(b";")[0], 16):
            self.read(exchange, size)
            self.line()
        while (trailer := self.line()) != b"\r\n":
            exchange.trailers.append(trailer)

    def line(self) -> bytes:
        line = self.rfile.readline(65536)
        if not line.endswith(b"\n"):
            raise EOFError
        return line


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    server = Upstream()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def relay(upstream: Upstream) -> Iterator[ClientRelay]:
    with ClientRelay(upstream.port) as relay:
        yield relay


def body(size: int, seed: int = 0) -> bytes:
    return bytes((i * 7 + seed) % 251 for i in range(size))


def connect(relay: ClientRelay) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", relay.port), timeout=5)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def head(method: str, path: str, **headers: str | int) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: test"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def chunked(data: bytes, size: int) -> bytes:
    out = b"".join(b"%x\r\n%s\r\n" % (len(data[i : i + size]), data[i : i + size]) for i in range(0, len(data), size))
    return out + b"0\r\n\r\n"


def send_expecting_reset(sock: socket.socket, data: bytes) -> None:
    """Send ``data``, then read: the relay must reset the connection, not end it cleanly or answer."""
    try:
        sock.sendall(data)
        got = sock.recv(1)
    except ConnectionResetError:
        return
    finally:
        sock.close()
    pytest.fail(f"expected a connection reset, got {got!r}")


def assert_stalled(upstream: Upstream, exchange: Exchange, size: int) -> None:
    """The upstream got exactly ``size`` body bytes and its read stays blocked: no more bytes, no EOF, no reset."""
    upstream.wait_for(lambda: len(exchange.body) >= size)
    time.sleep(SILENCE)
    assert len(exchange.body) == size
    assert exchange.end is None


def test_requests_pass_through_unchanged_on_a_keep_alive_connection(upstream: Upstream, relay: ClientRelay) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", relay.port, timeout=5)
    sent = [("POST", "/a", body(200_000)), ("PATCH", "/b", body(70_000, 1)), ("PUT", "/c", b"")]
    for method, path, data in sent:
        conn.request(method, path, body=data)
        response = conn.getresponse()
        assert (response.status, response.read()) == (200, f"{method} {path} {len(data)}".encode())
    pieces = [body(100_000, 2), b"x", body(5000, 3)]
    conn.request("PATCH", "/d", body=iter(pieces))
    assert conn.getresponse().read() == b"PATCH /d 105001"
    conn.close()

    recorded = [(e.method, e.path, bytes(e.body)) for e in upstream.exchanges]
    assert recorded == [*sent, ("PATCH", "/d", b"".join(pieces))]
    assert len({e.peer_port for e in upstream.exchanges}) == 1
    assert relay.requests == [("POST", "/a"), ("PATCH", "/b"), ("PUT", "/c"), ("PATCH", "/d")]
    assert relay.drops == 0


def test_pipelined_requests_with_chunk_extensions_and_trailers_are_delimited(
    upstream: Upstream, relay: ClientRelay
) -> None:
    chunked_body = b"5;ext=1\r\nhello\r\n1;x\r\n!\r\n0\r\nX-Sum: 6\r\nX-More: 1\r\n\r\n"
    requests = (
        head("PATCH", "/one", transfer_encoding="chunked")
        + chunked_body
        + head("POST", "/two", content_length=3)
        + b"abc"
        + head("GET", "/three")
    )
    relay.drop("GET", 0, path_contains="/nowhere")
    with connect(relay) as sock:
        sock.sendall(requests)
        replies = b""
        while replies.count(b"HTTP/1.1 200") < 3 or not replies.endswith(b"GET /three 0"):
            replies += sock.recv(65536)
    assert [(e.method, e.path, bytes(e.body)) for e in upstream.exchanges] == [
        ("PATCH", "/one", b"hello!"),
        ("POST", "/two", b"abc"),
        ("GET", "/three", b""),
    ]
    assert upstream.exchanges[0].trailers == [b"X-Sum: 6\r\n", b"X-More: 1\r\n"]
    assert relay.requests == [("PATCH", "/one"), ("POST", "/two"), ("GET", "/three")]


def test_drop_after_n_bytes_resets_the_client_and_leaves_the_server_waiting(
    upstream: Upstream, relay: ClientRelay
) -> None:
    relay.drop("PATCH", 150_000)
    send_expecting_reset(connect(relay), head("PATCH", "/files/x", content_length=300_000) + body(300_000))
    relay.wait_dropped()
    assert_stalled(upstream, upstream.wait_exchange(), 150_000)
    assert bytes(upstream.exchanges[0].body) == body(150_000)
    assert len(relay.abandoned) == 1


def test_drop_inside_a_chunk_forwards_exactly_the_payload_before_it(upstream: Upstream, relay: ClientRelay) -> None:
    relay.drop("PATCH", 5000)
    data = body(3 * 4096)
    send_expecting_reset(connect(relay), head("PATCH", "/files/x", transfer_encoding="chunked") + chunked(data, 4096))
    relay.wait_dropped()
    assert_stalled(upstream, upstream.wait_exchange(), 5000)
    assert bytes(upstream.exchanges[0].body) == data[:5000]


def test_drop_after_zero_forwards_the_head_and_no_body_byte(upstream: Upstream, relay: ClientRelay) -> None:
    relay.drop("PATCH")
    send_expecting_reset(connect(relay), head("PATCH", "/files/x", content_length=1000) + body(1000))
    relay.wait_dropped()
    exchange = upstream.wait_exchange()
    assert (exchange.method, exchange.path) == ("PATCH", "/files/x")
    assert_stalled(upstream, exchange, 0)


def test_drop_hits_only_the_matching_method_on_an_open_connection(upstream: Upstream, relay: ClientRelay) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", relay.port, timeout=5)
    conn.request("HEAD", "/files/x")
    conn.getresponse().read()
    relay.drop("PATCH", 10)
    conn.request("HEAD", "/files/x")
    conn.getresponse().read()
    conn.request("POST", "/files", body=body(100))
    assert conn.getresponse().read() == b"POST /files 100"
    with pytest.raises(ConnectionError) as error:
        conn.request("PATCH", "/files/x", body=body(100))
        conn.getresponse()
    assert not isinstance(error.value, http.client.RemoteDisconnected), "the relay closed instead of resetting"
    relay.wait_dropped()
    upstream.wait_for(lambda: len(upstream.exchanges) == 4 and len(upstream.exchanges[3].body) == 10)
    recorded = [(e.method, len(e.body)) for e in upstream.exchanges]
    assert recorded == [("HEAD", 0), ("HEAD", 0), ("POST", 100), ("PATCH", 10)]


def test_drop_matches_path_contains(upstream: Upstream, relay: ClientRelay) -> None:
    relay.drop("PATCH", 1, path_contains="/files/b")
    conn = http.client.HTTPConnection("127.0.0.1", relay.port, timeout=5)
    conn.request("PATCH", "/files/a", body=b"abc")
    assert conn.getresponse().read() == b"PATCH /files/a 3"
    with pytest.raises(ConnectionError):
        conn.request("PATCH", "/files/b", body=b"abc")
        conn.getresponse()
    relay.wait_dropped()
    upstream.wait_for(lambda: len(upstream.exchanges) == 2 and len(upstream.exchanges[1].body) == 1)


def test_drop_stays_armed_past_a_body_shorter_than_after(upstream: Upstream, relay: ClientRelay) -> None:
    relay.drop("PATCH", 100)
    conn = http.client.HTTPConnection("127.0.0.1", relay.port, timeout=5)
    conn.request("PATCH", "/short", body=body(99))
    assert conn.getresponse().read() == b"PATCH /short 99"
    conn.request("PATCH", "/short", body=b"")
    assert conn.getresponse().read() == b"PATCH /short 0"
    assert relay.drops == 0
    send_expecting_reset(connect(relay), head("PATCH", "/long", content_length=1000) + body(1000))
    relay.wait_dropped()
    upstream.wait_for(lambda: len(upstream.exchanges) == 3 and len(upstream.exchanges[2].body) == 100)


def test_arming_replaces_a_drop_that_has_not_fired(relay: ClientRelay) -> None:
    relay.drop("POST", 0)
    relay.drop("PATCH", 0)
    conn = http.client.HTTPConnection("127.0.0.1", relay.port, timeout=5)
    conn.request("POST", "/files", body=b"abc")
    assert conn.getresponse().read() == b"POST /files 3"
    with pytest.raises(ConnectionError):
        conn.request("PATCH", "/files/x", body=b"abc")
        conn.getresponse()
    relay.wait_dropped()
    assert relay.drops == 1


def test_a_new_connection_works_normally_after_a_drop(upstream: Upstream, relay: ClientRelay) -> None:
    relay.drop("PATCH", 10)
    send_expecting_reset(connect(relay), head("PATCH", "/files/x", content_length=100) + body(100))
    relay.wait_dropped()
    dropped = upstream.wait_exchange()
    upstream.wait_for(lambda: len(dropped.body) == 10)
    conn = http.client.HTTPConnection("127.0.0.1", relay.port, timeout=5)
    conn.request("HEAD", "/files/x")
    conn.getresponse().read()
    conn.request("PATCH", "/files/x", body=body(90, 1))
    assert conn.getresponse().read() == b"PATCH /files/x 90"
    assert [len(e.body) for e in upstream.exchanges] == [10, 0, 90]
    assert dropped.end is None


def test_drop_can_be_armed_again_after_it_fired(relay: ClientRelay) -> None:
    for expected in (1, 2):
        relay.drop("PATCH", 5)
        send_expecting_reset(connect(relay), head("PATCH", "/files/x", content_length=100) + body(100))
        relay.wait_dropped(expected)
    assert relay.drops == 2
    assert len(relay.abandoned) == 2


def test_wait_dropped_fails_on_timeout(relay: ClientRelay) -> None:
    with pytest.raises(AssertionError):
        relay.wait_dropped(timeout=0.1)


def test_reset_clients_resets_every_connection_and_abandons_the_upstream_sides(
    upstream: Upstream, relay: ClientRelay
) -> None:
    clients = [connect(relay) for _ in range(3)]
    for sock in clients:
        sock.sendall(head("PATCH", "/files/x", content_length=1000) + body(10))
    upstream.wait_for(lambda: sum(len(e.body) for e in upstream.exchanges) == 30)
    relay.reset_clients()
    for sock in clients:
        send_expecting_reset(sock, b"")
    assert len(relay.abandoned) == 3
    assert [e.end for e in upstream.exchanges] == [None] * 3
    assert relay.drops == 0


def test_close_closes_the_abandoned_upstream_sockets(upstream: Upstream, relay: ClientRelay) -> None:
    relay.drop("PATCH", 10)
    send_expecting_reset(connect(relay), head("PATCH", "/files/x", content_length=100) + body(100))
    relay.wait_dropped()
    exchange = upstream.wait_exchange()
    upstream.wait_for(lambda: len(exchange.body) == 10)
    assert exchange.end is None
    relay.close()
    upstream.wait_for(lambda: exchange.end is not None)
    assert exchange.end in ("eof", "reset")
    assert relay.abandoned == []
    relay.close()


def test_many_concurrent_connections_pass_through(upstream: Upstream, relay: ClientRelay) -> None:
    failures: list[BaseException] = []

    def client(seed: int) -> None:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", relay.port, timeout=10)
            for i in range(3):
                conn.request("POST", f"/c{seed}/{i}", body=body(20_000, seed))
                assert conn.getresponse().read() == f"POST /c{seed}/{i} 20000".encode()
            conn.close()
        except (AssertionError, OSError) as exc:
            failures.append(exc)

    threads = [threading.Thread(target=client, args=(seed,)) for seed in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert len(upstream.exchanges) == 60
    assert all(bytes(e.body) == body(20_000, int(e.path[2:].split("/")[0])) for e in upstream.exchanges)


def test_rewrite_replaces_only_the_upstream_origin(relay: ClientRelay) -> None:
    port = relay.upstream_port
    assert relay.rewrite(f"http://127.0.0.1:{port}/files/abc") == f"{relay.url}/files/abc"
    assert relay.rewrite(f"http://127.0.0.1:{port}0/files") == f"http://127.0.0.1:{port}0/files"
    assert relay.url == f"http://127.0.0.1:{relay.port}"
