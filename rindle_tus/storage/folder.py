"""The node's upload folder: where an upload's tail and part files are
named (the one place, ``tus_tail_path``), how much they hold, and what a
refusal of the folder by the system means for the client (``on_disk``)."""

from __future__ import annotations

import base64
import errno
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..conf import tus_settings
from ..exceptions import DiskUnavailable, NodeFull

TAIL_DIRNAME = "tus"
TAIL_SUFFIX = ".tail"
PART_SUFFIX = ".part"


def tus_tail_path(session_id: str, *, root: str | os.PathLike[str] | None = None) -> Path:
    """The one place a tail file's name is computed.

    The id is base64url-encoded (no padding), so no character of it, ``/``,
    ``..`` or NUL included, can ever shape the path.
    """
    base = Path(root if root is not None else tus_settings.TMP_DIR)
    name = base64.urlsafe_b64encode(session_id.encode("utf-8")).rstrip(b"=").decode("ascii")
    return base / TAIL_DIRNAME / f"{name}{TAIL_SUFFIX}"


def tus_part_path(session_id: str, number: int, *, root: str | os.PathLike[str] | None = None) -> Path:
    """Where part ``number`` of the tail waits for S3 (write-behind): named
    from ``tus_tail_path``, so whatever finds an upload's tail finds these."""
    tail = tus_tail_path(session_id, root=root)
    return tail.with_name(f"{tail.name}.{number}{PART_SUFFIX}")


def tail_dir(root: str | os.PathLike[str] | None = None) -> Path:
    return tus_tail_path("", root=root).parent


@contextmanager
def on_disk() -> Iterator[None]:
    """A use of this node's upload folder that the system refuses becomes
    the error it means for the client: a full disk is 507 (retry later), any
    other refusal (a folder that cannot be made, read or written) a 500 that
    names the folder, instead of a traceback. A missing tail file is not a
    refusal: the callers handle FileNotFoundError (it means no tail)."""
    try:
        yield
    except FileNotFoundError:
        raise
    except OSError as exc:
        folder = tail_dir()
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise NodeFull(f"The disk holding {folder} is full; retry later.") from exc
        raise DiskUnavailable(
            f"This server cannot write its upload folder {folder} (RINDLE_TUS_TMP_DIR): {exc.strerror or exc}. "
            "The upload can be resumed once that is fixed."
        ) from exc


_usage_lock = threading.Lock()
_usage: tuple[float, int] = (0.0, 0)
# How long one look at the folder's size serves the requests of a process.
USAGE_TTL = 1.0


def tails_usage() -> int:
    """The bytes this node's tail folder holds, looked at most once every
    ``USAGE_TTL`` per process (a folder of thousands of tails is not summed
    on every request)."""
    global _usage
    with _usage_lock:
        looked, used = _usage
        if time.monotonic() - looked > USAGE_TTL:
            used = sum(_size(entry) for entry in _entries(tail_dir()))
            _usage = (time.monotonic(), used)
    return used


def _entries(directory: Path) -> list[os.DirEntry[str]]:
    try:
        return list(os.scandir(directory))
    except FileNotFoundError:
        return []


def _size(entry: os.DirEntry[str]) -> int:
    try:
        return entry.stat(follow_symlinks=False).st_size if entry.is_file(follow_symlinks=False) else 0
    except FileNotFoundError:
        return 0
