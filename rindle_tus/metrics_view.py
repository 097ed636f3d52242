"""The Prometheus scrape: the counts of ``rindle_tus.metrics`` as text.

Mount ``metrics_view`` where only the scraper reaches it (it tells upload
counts and node names)::

    from rindle_tus.metrics_view import metrics_view
    urlpatterns = [..., path("metrics", metrics_view)]
"""

from __future__ import annotations

import contextlib
import os
import re
from typing import Any

from django.http import HttpRequest, HttpResponse

prometheus_client: Any
multiprocess: Any
try:
    import prometheus_client
    from prometheus_client import multiprocess
except ImportError:  # the metrics extra is not installed
    prometheus_client = multiprocess = None


def metrics_view(request: HttpRequest) -> HttpResponse:
    """The Prometheus text exposition of this process, or of every process
    that writes to ``PROMETHEUS_MULTIPROC_DIR`` when that is set. Mount it
    where only the scraper reaches it (it tells upload counts and node names)."""
    if prometheus_client is None:
        return HttpResponse("prometheus_client is not installed (pip install 'rindle-tus[metrics]').\n",
                            status=501, content_type="text/plain; charset=utf-8")
    registry = prometheus_client.REGISTRY
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        _forget_dead_processes(folder)
        registry = prometheus_client.CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    return HttpResponse(prometheus_client.generate_latest(registry), content_type=prometheus_client.CONTENT_TYPE_LATEST)


_LIVE_FILE = re.compile(r"gauge_live[a-z]*_(\d+)\.db")


def _forget_dead_processes(folder: str) -> None:
    """The live gauges (``rindle_tus_active_patches``) of a worker process
    that is gone stop counting. gunicorn's ``child_exit`` hook does this as a
    worker exits; uvicorn has none, and a killed worker's last figures would
    count for ever. The folder is this machine's, so its pids are too."""
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return
    for pid in {int(match[1]) for match in map(_LIVE_FILE.fullmatch, names) if match}:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            # Two scrapes at once may both find it: the second finds nothing to remove.
            with contextlib.suppress(FileNotFoundError):
                multiprocess.mark_process_dead(pid, folder)
        except PermissionError:
            pass  # alive, another user's
