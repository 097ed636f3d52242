"""ASGI servers in the test process, like pytest-django's live server: the
same settings (``settings`` overrides apply) and the same test database, so
every test written against the live server runs under ASGI unchanged.

The application is the project's (``rindle_tus.asgi.get_asgi_application``);
uvicorn and hypercorn each serve it from a thread with its own event loop.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

# The servers the suite runs the live-server tests under, besides Django's WSGI one.
ASGI_SERVERS = ("uvicorn", "hypercorn", "granian")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SharedConnections:
    """Hands an in-memory SQLite test database's connection to the request,
    as Django's live server does for its threads: the asgiref Local that
    holds connections follows the request's context into the view's thread."""

    def __init__(self, app: Any) -> None:
        from django.db import connections

        self.app = app
        self.overrides = {
            conn.alias: conn for conn in connections.all() if conn.vendor == "sqlite" and conn.is_in_memory_db()
        }

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        from django.db import connections

        for alias, conn in self.overrides.items():
            connections[alias] = conn
        await self.app(scope, receive, send)


class AsgiLiveServer:
    def __init__(self, kind: str) -> None:
        from rindle_tus.asgi import get_asgi_application

        self.kind = kind
        self.port = _free_port()
        self.app = SharedConnections(get_asgi_application())
        self._stop: Callable[[], None] = lambda: None
        self._thread = threading.Thread(target=self._run, name=f"asgi-{kind}", daemon=True)
        self._error: BaseException | None = None
        for conn in self.app.overrides.values():
            conn.inc_thread_sharing()
        self._thread.start()
        self._wait_ready()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _run(self) -> None:
        try:
            {"uvicorn": self._run_uvicorn, "hypercorn": self._run_hypercorn, "granian": self._run_granian}[self.kind]()
        except BaseException as exc:  # noqa: BLE001  (reported by _wait_ready)
            self._error = exc

    def _run_uvicorn(self) -> None:
        import uvicorn

        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, lifespan="off", log_level="warning", access_log=False
        )
        server = uvicorn.Server(config)
        self._stop = lambda: setattr(server, "should_exit", True)
        server.run()

    def _run_hypercorn(self) -> None:
        from hypercorn.asyncio import serve
        from hypercorn.config import Config

        config = Config()
        config.bind = [f"127.0.0.1:{self.port}"]
        config.accesslog = None
        config.errorlog = None
        loop = asyncio.new_event_loop()
        stopped = asyncio.Event()
        self._stop = lambda: loop.call_soon_threadsafe(stopped.set)
        loop.run_until_complete(serve(self.app, config, shutdown_trigger=stopped.wait))  # type: ignore[arg-type]
        loop.close()

    def _run_granian(self) -> None:
        # Granian's embedded server: its Rust HTTP stack on this thread's
        # event loop (ASGINL: Django has no lifespan protocol).
        from granian.constants import Interfaces
        from granian.server.embed import Server

        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        server = Server(self.app, address="127.0.0.1", port=self.port, interface=Interfaces.ASGINL,
                        log_enabled=False)
        self._stop = lambda: loop.call_soon_threadsafe(server.stop)
        loop.run_until_complete(server.serve())
        loop.close()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self._error is not None:
                raise RuntimeError(f"{self.kind} did not start") from self._error
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"{self.kind} did not listen on port {self.port}")

    def stop(self) -> None:
        self._stop()
        self._thread.join(timeout=10)
        for conn in self.app.overrides.values():
            conn.dec_thread_sharing()
