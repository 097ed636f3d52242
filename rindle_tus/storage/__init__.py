"""Where upload bytes live: S3 (``S3Backend``, the only code that talks to
the object store) and the tail stores (node-local files or S3 objects)."""

from __future__ import annotations

from ..conf import tus_settings
from .base import TailMissing, TailStore
from .folder import tus_part_path, tus_tail_path
from .s3 import S3Backend, get_storage, part_size_for
from .shared_tail import S3Tail
from .tail import PartFiles, Tail


def open_tail(session_id: str, backend: S3Backend | None = None) -> TailStore:
    """An upload's tail in the configured store (``RINDLE_TUS_TAIL_STORE``)."""
    if tus_settings.TAIL_STORE == "s3":
        return S3Tail(session_id, backend)
    return Tail(session_id)


__all__ = [
    "PartFiles",
    "S3Backend",
    "S3Tail",
    "Tail",
    "TailMissing",
    "TailStore",
    "get_storage",
    "open_tail",
    "part_size_for",
    "tus_part_path",
    "tus_tail_path",
]
