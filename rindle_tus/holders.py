"""Who holds an upload's lease, and until when.

A holder is named by its node, its machine (this boot, and the process id
namespace), its process id and that process's start time, so that a holder
that died on this machine is recognised at once (``holder_gone``) and one
elsewhere by its lease lapsing. Whether a row is free is decided by the
database's clock (``free``, the one definition), never by a node's.
"""

from __future__ import annotations

import functools
import os
import secrets
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.db.models import DateTimeField, ExpressionWrapper, Q
from django.db.models.expressions import CombinedExpression
from django.db.models.functions import Now
from django.utils import timezone

from .conf import tus_settings
from .models import TusSession


def new_token() -> str:
    return secrets.token_hex(16)


def free() -> Q:
    """Rows nobody holds: never leased, released, or lapsed by the database's clock."""
    return Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lte=Now())


def is_leased(session: TusSession, now: datetime | None = None) -> bool:
    """Whether a loaded row looked held, by this node's clock: for display and
    dry runs only. Decisions are taken by the database, through ``free()``."""
    return session.lease_expires_at is not None and session.lease_expires_at > (now or timezone.now())


def expiry(seconds: float) -> ExpressionWrapper[CombinedExpression]:
    """A lease's end, ``seconds`` from now by the database's clock."""
    return ExpressionWrapper(Now() + timedelta(seconds=seconds), output_field=DateTimeField())


def holding(token: str, seconds: float) -> dict[str, Any]:
    """The row fields of a lease held by this process under ``token``."""
    return {
        "lease_token": token,
        "lease_expires_at": expiry(seconds),
        "lease_holder": holder_id(),
        "lease_release_requested": False,
        "lease_release_offset": None,
    }


# -- the holder's name -----------------------------------------------------------


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot, or "" if it is
    not running (no such process, or a zombie its parent has not reaped)."""
    stat = _read(f"/proc/{pid}/stat")
    # The command name (field 2) may hold spaces and parentheses; it ends at the last ")".
    fields = stat.rpartition(")")[2].split()
    if len(fields) <= 19 or fields[0] in ("Z", "X"):
        return ""
    return fields[19]


@functools.lru_cache(maxsize=1)
def _machine() -> str:
    """This boot of this machine, and the process id namespace: two processes
    with the same value see each other's process ids."""
    boot = _read("/proc/sys/kernel/random/boot_id")
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""
    return f"{boot}/{namespace}" if boot else ""


def holder_id() -> str:
    """Who holds a lease: node name, machine, process id and start time."""
    return f"{tus_settings.NODE_NAME} {_process(os.getpid())}"


@functools.lru_cache(maxsize=4)
def _process(pid: int) -> str:
    return f"{_machine()} {pid} {_start_time(pid)}"


def holder_gone(holder: str) -> bool:
    """Whether ``holder`` was a process of this machine that no longer runs.
    A holder elsewhere cannot be seen; its lease lapses instead."""
    # Parsed from the right: a node name may hold spaces.
    parts = holder.rsplit(" ", 3)
    if len(parts) != 4 or not parts[1] or parts[1] != _machine() or not parts[2].isdigit() or not parts[3]:
        return False
    return _start_time(int(parts[2])) != parts[3]


def describe_holder(holder: str) -> str:
    parts = holder.rsplit(" ", 3)
    return f"{parts[0]}, process {parts[2]}" if len(parts) == 4 else holder
