"""Who holds a lease, and whether that process is gone: what lets a request
take an upload over at once from a worker killed on the same machine."""

from __future__ import annotations

import os
import subprocess
import sys

from rindle_tus.holders import _start_time, holder_gone, holder_id


def _holder_of(pid: int) -> str:
    """``holder_id()`` as the process ``pid`` of this machine would give it."""
    node, machine, _pid, _start = holder_id().rsplit(" ", 3)
    return f"{node} {machine} {pid} {_start_time(pid)}"


def test_a_holder_whose_process_ended_is_gone() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    holder = _holder_of(child.pid)
    assert not holder_gone(holder)
    child.kill()
    # Dead but not yet reaped by its parent (WNOWAIT), it is a zombie: gone already.
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)
    assert holder_gone(holder)
    child.wait()
    assert holder_gone(holder)


