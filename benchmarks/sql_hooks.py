"""gunicorn hooks that count the SQL statements of each request (``sqlcount.py``).

Loaded as a gunicorn configuration file (``gunicorn -c benchmarks/sql_hooks.py``),
so it imports nothing from the benchmarks package. Every statement that goes
through Django's cursors in a worker is counted by its first keyword, for the
request in flight (the counting client sends one request at a time, so a
statement of any thread, such as the lease heartbeat's, belongs to that request)
or, between requests, as "outside". A request is named by its ``X-Bench-Kind``
header, else by its method. After each request the worker writes all it counted
to ``$BENCH_SQL_COUNT_DIR/<pid>.json``. BEGIN and COMMIT are not counted (the
driver sends them, not a cursor); SAVEPOINTs are.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

KIND_HEADER = "X-BENCH-KIND"  # gunicorn upper-cases header names

_lock = threading.Lock()
_current: list[tuple[str, dict[str, int]] | None] = [None]
_requests: list[tuple[str, dict[str, int]]] = []
_outside: dict[str, int] = {}


def _count(execute: Callable[..., Any], sql: Any, params: Any, many: bool, context: dict[str, Any]) -> Any:
    words = str(sql).lstrip().split(None, 1)
    verb = words[0].upper() if words else "?"
    with _lock:
        current = _current[0]
        counts = current[1] if current is not None else _outside
        counts[verb] = counts.get(verb, 0) + 1
    return execute(sql, params, many, context)


def post_worker_init(worker: Any) -> None:
    from django.db.backends.signals import connection_created

    def install(sender: Any, connection: Any, **kwargs: Any) -> None:
        # Once per connection object (a thread's), which reconnects keep.
        if _count not in connection.execute_wrappers:
            connection.execute_wrappers.append(_count)

    connection_created.connect(install, weak=False, dispatch_uid="rindle-bench-sql-count")


def pre_request(worker: Any, req: Any) -> None:
    kind = next((value for name, value in req.headers if name == KIND_HEADER), req.method)
    with _lock:
        _current[0] = (kind, {})


def post_request(worker: Any, req: Any, environ: Any, resp: Any) -> None:
    with _lock:
        current, _current[0] = _current[0], None
        if current is not None:
            _requests.append(current)
        text = json.dumps({"requests": _requests, "outside": _outside})
    path = Path(os.environ["BENCH_SQL_COUNT_DIR"]) / f"{os.getpid()}.json"
    partial = path.with_suffix(".partial")
    partial.write_text(text)
    partial.replace(path)
