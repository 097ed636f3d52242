"""gunicorn's settings for the example project (``gunicorn -c example_project/gunicorn.conf.py``):
the hook prometheus_client's multiprocess mode needs, so a worker that exits
stops counting in the live gauges (``rindle_tus_active_patches``)."""

import os
from typing import Any


def child_exit(server: Any, worker: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
