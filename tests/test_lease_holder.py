"""Who holds a lease, and whether that process is gone: what lets a request
take an upload over at once from a worker killed on the same machine."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

from rindle_tus.locking import _start_time, describe_holder, holder_gone, holder_id


def _holder_of(pid: int) -> str:
    """``holder_id()`` as the process ``pid`` of this machine would give it."""
    node, machine, _pid, _start = holder_id().rsplit(" ", 3)
    return f"{node} {machine} {pid} {_start_time(pid)}"


def test_a_running_holder_is_not_gone(settings: Any) -> None:
    settings.RINDLE_TUS_NODE_NAME = "web 1"  # a node name may hold spaces
    holder = holder_id()
    assert not holder_gone(holder)
    assert describe_holder(holder).startswith("web 1, process ")


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


def test_a_holder_on_another_machine_is_never_taken_for_gone() -> None:
    node, _machine, pid, start = holder_id().rsplit(" ", 3)
    assert not holder_gone(f"{node} another-boot/pid:[1] {pid} {start}")
    assert not holder_gone(f"{node} another-boot/pid:[1] 999999999 1")
    assert not holder_gone("garbage")
