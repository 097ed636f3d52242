"""Typed, lazily read settings. Every value is read on access so that
``override_settings`` takes effect immediately."""

from __future__ import annotations

import os
import socket
import tempfile
from datetime import timedelta
from typing import Any

from django.conf import settings

MiB = 1024 * 1024
# S3's own limits: the smallest non-final part, the most parts, the largest object.
S3_MIN_PART_SIZE = 5 * MiB
S3_MAX_PART_SIZE = 5 * 1024 * MiB
S3_MAX_PARTS = 10_000
S3_MAX_OBJECT_SIZE = 5 * 1024 * 1024 * MiB


class Settings:
    def _get(self, name: str, default: Any) -> Any:
        return getattr(settings, f"RINDLE_TUS_{name}", default)

    @property
    def STORAGE(self) -> str:
        return str(self._get("STORAGE", "default"))

    @property
    def KEY_PREFIX(self) -> str:
        return str(self._get("KEY_PREFIX", "tus/"))

    @property
    def TMP_DIR(self) -> str:
        return str(self._get("TMP_DIR", os.path.join(tempfile.gettempdir(), "rindle_tus")))

    @property
    def NODE_NAME(self) -> str:
        return str(self._get("NODE_NAME", socket.gethostname()))

    @property
    def MAX_SIZE(self) -> int | None:
        value = self._get("MAX_SIZE", None)
        return None if value is None else int(value)

    @property
    def PART_SIZE(self) -> int:
        return int(self._get("PART_SIZE", 8 * MiB))

    @property
    def MAX_MEMORY_PART(self) -> int:
        """Largest part buffered in memory (never below PART_SIZE); larger parts wait in a file."""
        return int(self._get("MAX_MEMORY_PART", 16 * MiB))

    @property
    def READ_CHUNK_SIZE(self) -> int:
        return int(self._get("READ_CHUNK_SIZE", 1 * MiB))

    @property
    def UPLOAD_CONCURRENCY(self) -> int:
        """Parts of one request uploading while the next is read (each holds a part buffer)."""
        return max(1, int(self._get("UPLOAD_CONCURRENCY", 2)))

    @property
    def TAIL_STORE(self) -> str:
        """Where tails live: "local" (node disk, sticky routing) or "s3" (shared)."""
        return str(self._get("TAIL_STORE", "local"))

    @property
    def METADATA_MAX_SIZE(self) -> int:
        return int(self._get("METADATA_MAX_SIZE", 8192))

    @property
    def EXPIRATION(self) -> timedelta:
        value = self._get("EXPIRATION", timedelta(hours=24))
        return value if isinstance(value, timedelta) else timedelta(seconds=float(value))

    @property
    def LEASE_SECONDS(self) -> float:
        """Lifetime of a lease; the holder's process renews it every third of this."""
        return float(self._get("LEASE_SECONDS", 6))

    @property
    def LEASE_WAIT(self) -> float:
        """How long a request waits for another request to hand the upload over."""
        return float(self._get("LEASE_WAIT", 8))

    @property
    def BODY_TIMEOUT(self) -> float:
        """A body read that waits this long for a byte, or a window of this
        much reading that brings fewer than ``BODY_MIN_RATE`` bytes a second, ends the body.
        None (or 0) turns the rule off."""
        value = self._get("BODY_TIMEOUT", 30)
        return 0.0 if value is None else float(value)

    @property
    def BODY_MIN_RATE(self) -> float:
        return float(self._get("BODY_MIN_RATE", 1024))

    @property
    def MAX_UNFINISHED(self) -> int | None:
        """Unfinished uploads a user (or, signed out, a client) may hold at once."""
        value = self._get("MAX_UNFINISHED", 100)
        return None if value is None else int(value)

    @property
    def CLIENT_KEY(self) -> Any:
        """Callable or dotted path ``(request) -> str`` naming a signed-out client (default: its address)."""
        return self._get("CLIENT_KEY", None)

    @property
    def MAX_TAIL_BYTES(self) -> int | None:
        """Most bytes the tails on this node's disk may add up to."""
        value = self._get("MAX_TAIL_BYTES", None)
        return None if value is None else int(value)

    @property
    def MAX_BODIES(self) -> int | None:
        """Request bodies one process reads at once (PATCH, POST with a body)."""
        value = self._get("MAX_BODIES", 6)
        return None if value is None else int(value)

    @property
    def PERMISSION(self) -> Any:
        return self._get("PERMISSION", None)

    @property
    def PRE_CREATE(self) -> Any:
        return self._get("PRE_CREATE", None)

    @property
    def GET_REDIRECT(self) -> bool:
        return bool(self._get("GET_REDIRECT", True))

    @property
    def GET_URL_EXPIRY(self) -> int:
        return int(self._get("GET_URL_EXPIRY", 300))

    def _duration(self, name: str, default: timedelta) -> timedelta:
        value = self._get(name, default)
        return value if isinstance(value, timedelta) else timedelta(seconds=float(value))

    @property
    def RETENTION(self) -> timedelta:
        """How long completed, expired and terminated rows are kept before the reaper deletes them."""
        return self._duration("RETENTION", timedelta(days=30))

    @property
    def ORPHAN_AGE(self) -> timedelta:
        """How old an unreferenced multipart upload under the key prefix must be before it is aborted."""
        return self._duration("ORPHAN_AGE", timedelta(days=1))

    @property
    def TAIL_SWEEP_AGE(self) -> timedelta:
        """How old a tail file must be before the sweep deletes it without a finished session to tell.
        Keep it above ``RINDLE_TUS_EXPIRATION``."""
        return self._duration("TAIL_SWEEP_AGE", timedelta(days=2))


tus_settings = Settings()
