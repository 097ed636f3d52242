"""Prometheus metrics (the optional ``metrics`` extra: ``prometheus_client``).

Every count the app keeps is defined here, and recorded from the one place
its event already happens: the view's dispatch (requests, errors), the
receiver (bytes, active bodies), the writer (part commits), the S3 client's
own call events (durations by operation), the signals (created, finished,
terminated, tail missing), the lease (handovers) and the reaper's report
(actions, expiries). Without ``prometheus_client`` (or with
``RINDLE_TUS_METRICS = False``) each recorder is a no-op.

Several processes (gunicorn's workers, uvicorn's) each count their own; set
``PROMETHEUS_MULTIPROC_DIR`` to an empty folder before they start, and
``rindle_tus.metrics_view`` aggregates them (prometheus_client's multiprocess mode; see
docs/operations.md for gunicorn's ``child_exit`` hook).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from .conf import tus_settings

if TYPE_CHECKING:
    from .models import TusSession

prometheus_client: Any
try:
    import prometheus_client
except ImportError:  # the extra is not installed
    prometheus_client = None

PREFIX = "rindle_tus"
# Seconds: a part commit is a row update; an S3 call goes up to a 5 GiB part.
_COMMIT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_S3_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


class _Metrics:
    def __init__(self, pc: Any) -> None:
        counter, histogram = pc.Counter, pc.Histogram
        self.requests = counter(f"{PREFIX}_requests", "tus requests answered, by method and status",
                                ["method", "status"])
        self.errors = counter(f"{PREFIX}_errors", "tus requests refused or failed, by error code", ["code"])
        self.received = counter(f"{PREFIX}_received_bytes", "Body bytes read from clients")
        self.created = counter(f"{PREFIX}_uploads_created", "Uploads created")
        self.finished = counter(f"{PREFIX}_uploads_finished", "Uploads finished whole in S3")
        self.terminated = counter(f"{PREFIX}_uploads_terminated", "Uploads terminated by their client (DELETE)")
        self.expired = counter(f"{PREFIX}_uploads_expired", "Uploads the reaper expired")
        self.active = pc.Gauge(f"{PREFIX}_active_patches", "Request bodies being read now",
                               multiprocess_mode="livesum")
        self.s3 = histogram(f"{PREFIX}_s3_request_duration_seconds", "S3 calls, by operation",
                            ["operation", "outcome"], buckets=_S3_BUCKETS)
        self.commits = histogram(f"{PREFIX}_part_commit_duration_seconds", "Commits of parts to the row",
                                 buckets=_COMMIT_BUCKETS)
        self.tail_missing = counter(f"{PREFIX}_tail_missing", "Resumes refused with tus_tail_missing, by node",
                                    ["node"])
        self.handovers = counter(f"{PREFIX}_lease_handovers", "Requests that asked another to hand an upload over")
        self.reaper = counter(f"{PREFIX}_reaper_actions", "Reaper and operator actions, by kind and result",
                              ["kind", "result"])


_metrics: _Metrics | None = None


def _get() -> _Metrics | None:
    global _metrics
    if prometheus_client is None or not tus_settings.METRICS:
        return None
    if _metrics is None:
        _metrics = _Metrics(prometheus_client)
    return _metrics


def available() -> bool:
    return _get() is not None


# -- recorders -------------------------------------------------------------------


# The methods a label may name. The method is the client's (X-HTTP-Method-Override
# too): any other is counted as "other", or each new one would add a series,
# and memory (and, in multiprocess mode, disk) the client chose.
METHODS = frozenset({"OPTIONS", "POST", "HEAD", "PATCH", "DELETE", "GET"})


def request(method: str, status: int, code: str | None) -> None:
    m = _get()
    if m is not None:
        m.requests.labels(method if method in METHODS else "other", str(status)).inc()
        if code is not None:
            m.errors.labels(code).inc()


def received(count: int) -> None:
    m = _get()
    if m is not None and count:
        m.received.inc(count)


def body_started() -> None:
    m = _get()
    if m is not None:
        m.active.inc()


def body_ended() -> None:
    m = _get()
    if m is not None:
        m.active.dec()


def part_commit(seconds: float) -> None:
    m = _get()
    if m is not None:
        m.commits.observe(seconds)


def handover_asked() -> None:
    m = _get()
    if m is not None:
        m.handovers.inc()


def reaper_action(kind: str, result: str, *, expired: bool = False) -> None:
    """A reaper or operator action (``maintenance.report``); ``expired``: it expired an upload."""
    m = _get()
    if m is not None:
        m.reaper.labels(kind, result).inc()
        if expired:
            m.expired.inc()


# -- S3 call durations, from the boto3 client's own events -----------------------------


def instrument(client: Any) -> None:
    """Time every call of ``client`` (the storage's shared boto3 client), by
    operation, whoever makes it: rindle_tus's backend or the storage itself."""
    if _get() is None:
        return
    events = client.meta.events
    events.register("before-call.s3", _before_call, unique_id="rindle_tus.metrics.before")
    events.register("after-call.s3", _after_call, unique_id="rindle_tus.metrics.after")
    events.register("after-call-error.s3", _after_error, unique_id="rindle_tus.metrics.error")


# Handlers take only keywords, with defaults: botocore passes each event its
# own set (after-call-error has no model), and a handler that raises would
# turn the S3 call it times into a failure of the request.


def _before_call(context: dict[str, Any] | None = None, model: Any = None, **kwargs: Any) -> None:
    if context is not None:
        context["rindle_tus_call"] = (getattr(model, "name", "unknown"), time.perf_counter())


def _observe(context: dict[str, Any] | None, outcome: str) -> None:
    call = context.pop("rindle_tus_call", None) if context is not None else None
    m = _get()
    if m is not None and call is not None:
        operation, started = call
        m.s3.labels(operation, outcome).observe(time.perf_counter() - started)


def _after_call(context: dict[str, Any] | None = None, http_response: Any = None, **kwargs: Any) -> None:
    status = getattr(http_response, "status_code", 200)
    _observe(context, "ok" if status < 400 else "error")


def _after_error(context: dict[str, Any] | None = None, **kwargs: Any) -> None:
    _observe(context, "error")


# -- the signals ------------------------------------------------------------------


def _on_created(sender: Any, session: TusSession, **kwargs: Any) -> None:
    m = _get()
    if m is not None:
        m.created.inc()


def _on_finished(sender: Any, session: TusSession, **kwargs: Any) -> None:
    m = _get()
    if m is not None:
        m.finished.inc()


def _on_terminated(sender: Any, session: TusSession, **kwargs: Any) -> None:
    m = _get()
    if m is not None:
        m.terminated.inc()


def _on_tail_missing(sender: Any, session: TusSession, node: str, **kwargs: Any) -> None:
    m = _get()
    if m is not None:
        m.tail_missing.labels(node).inc()


def connect_signals() -> None:
    from . import signals

    signals.upload_created.connect(_on_created, dispatch_uid="rindle_tus.metrics.created")
    signals.upload_finished.connect(_on_finished, dispatch_uid="rindle_tus.metrics.finished")
    signals.upload_terminated.connect(_on_terminated, dispatch_uid="rindle_tus.metrics.terminated")
    signals.tail_missing.connect(_on_tail_missing, dispatch_uid="rindle_tus.metrics.tail_missing")
