"""Typed, lazily read settings. Every value is read on access so that
``override_settings`` takes effect immediately.

``DEFAULTS`` is the one home of every setting's default: ``Settings`` and the
system checks (``checks``) both read a setting through ``configured``.
"""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings

MiB = 1024 * 1024
# S3's own limits: the smallest non-final part, the most parts, the largest object.
S3_MIN_PART_SIZE = 5 * MiB
S3_MAX_PART_SIZE = 5 * 1024 * MiB
S3_MAX_PARTS = 10_000
S3_MAX_OBJECT_SIZE = 5 * 1024 * 1024 * MiB


def _default_tmp_dir() -> str:
    return os.path.join(tempfile.gettempdir(), "rindle_tus")


# The default of each ``RINDLE_TUS_<name>`` setting, by name.
DEFAULTS: dict[str, Any] = {
    "STORAGE": "default",
    "KEY_PREFIX": "tus/",
    "MAX_SIZE": None,
    "PART_SIZE": 8 * MiB,
    "MAX_MEMORY_PART": 16 * MiB,
    "READ_CHUNK_SIZE": 1 * MiB,
    "UPLOAD_CONCURRENCY": 2,
    "WRITE_BEHIND": 2,
    "TAIL_STORE": "local",
    "METADATA_MAX_SIZE": 8192,
    "EXPIRATION": timedelta(hours=24),
    "LEASE_SECONDS": 6,
    "LEASE_WAIT": 8,
    "BODY_TIMEOUT": 30,
    "BODY_MIN_RATE": 1024,
    "MAX_UNFINISHED": 100,
    "CLIENT_KEY": None,
    "MAX_TAIL_BYTES": None,
    "MAX_BODIES": 6,
    "MAX_APPEND_SIZE": None,
    "SEND_104": False,
    "AUTHENTICATE": None,
    "PERMISSION": None,
    "PRE_CREATE": None,
    "GET_REDIRECT": True,
    "METRICS": True,
    "GET_URL_EXPIRY": 300,
    "RETENTION": timedelta(days=30),
    "ORPHAN_AGE": timedelta(days=1),
    "TAIL_SWEEP_AGE": timedelta(days=2),
}
# Defaults that depend on the machine, worked out on every read.
COMPUTED_DEFAULTS: dict[str, Callable[[], Any]] = {
    "TMP_DIR": _default_tmp_dir,
    "NODE_NAME": socket.gethostname,
}
_UNSET = object()


def configured(name: str) -> Any:
    """``RINDLE_TUS_<name>`` as the project set it, else its default; not converted."""
    value = getattr(settings, f"RINDLE_TUS_{name}", _UNSET)
    if value is not _UNSET:
        return value
    if name in COMPUTED_DEFAULTS:
        return COMPUTED_DEFAULTS[name]()
    return DEFAULTS[name]


class Settings:
    def _get(self, name: str) -> Any:
        return configured(name)

    @property
    def STORAGE(self) -> str:
        return str(self._get("STORAGE"))

    @property
    def KEY_PREFIX(self) -> str:
        return str(self._get("KEY_PREFIX"))

    @property
    def TMP_DIR(self) -> str:
        return str(self._get("TMP_DIR"))

    @property
    def NODE_NAME(self) -> str:
        return str(self._get("NODE_NAME"))

    @property
    def MAX_SIZE(self) -> int | None:
        value = self._get("MAX_SIZE")
        return None if value is None else int(value)

    @property
    def PART_SIZE(self) -> int:
        return int(self._get("PART_SIZE"))

    @property
    def MAX_MEMORY_PART(self) -> int:
        """Largest part buffered in memory (never below PART_SIZE); larger parts wait in a file."""
        return int(self._get("MAX_MEMORY_PART"))

    @property
    def READ_CHUNK_SIZE(self) -> int:
        return int(self._get("READ_CHUNK_SIZE"))

    @property
    def UPLOAD_CONCURRENCY(self) -> int:
        """Parts of one request uploading while the next is read (each holds a part buffer)."""
        return max(1, int(self._get("UPLOAD_CONCURRENCY")))

    @property
    def WRITE_BEHIND(self) -> int:
        """Parts of one upload that may still be on their way to S3, kept on
        this node's disk, once a PATCH is answered; 0 turns write-behind off."""
        return max(0, int(self._get("WRITE_BEHIND")))

    @property
    def TAIL_STORE(self) -> str:
        """Where tails live: "local" (node disk, sticky routing) or "s3" (shared)."""
        return str(self._get("TAIL_STORE"))

    @property
    def METADATA_MAX_SIZE(self) -> int:
        return int(self._get("METADATA_MAX_SIZE"))

    @property
    def EXPIRATION(self) -> timedelta:
        return self._duration("EXPIRATION")

    @property
    def LEASE_SECONDS(self) -> float:
        """Lifetime of a lease; the holder's process renews it every third of this."""
        return float(self._get("LEASE_SECONDS"))

    @property
    def LEASE_WAIT(self) -> float:
        """How long a request waits for another request to hand the upload over."""
        return float(self._get("LEASE_WAIT"))

    @property
    def BODY_TIMEOUT(self) -> float:
        """A body read that waits this long for a byte, or a window of this
        much reading that brings fewer than ``BODY_MIN_RATE`` bytes a second, ends the body.
        None (or 0) turns the rule off."""
        value = self._get("BODY_TIMEOUT")
        return 0.0 if value is None else float(value)

    @property
    def BODY_MIN_RATE(self) -> float:
        return float(self._get("BODY_MIN_RATE"))

    @property
    def MAX_UNFINISHED(self) -> int | None:
        """Unfinished uploads a user (or, signed out, a client) may hold at once."""
        value = self._get("MAX_UNFINISHED")
        return None if value is None else int(value)

    @property
    def CLIENT_KEY(self) -> Any:
        """Callable or dotted path ``(request) -> str`` naming a signed-out client (default: its address)."""
        return self._get("CLIENT_KEY")

    @property
    def MAX_TAIL_BYTES(self) -> int | None:
        """Most bytes the tails on this node's disk may add up to."""
        value = self._get("MAX_TAIL_BYTES")
        return None if value is None else int(value)

    @property
    def MAX_BODIES(self) -> int | None:
        """Request bodies one process reads at once (PATCH, POST with a body)."""
        value = self._get("MAX_BODIES")
        return None if value is None else int(value)

    @property
    def MAX_APPEND_SIZE(self) -> int | None:
        """The largest body one PATCH or POST may carry: set it to what a proxy
        in front allows (nginx's ``client_max_body_size``), so that draft
        clients learn it as ``max-append-size`` and split their uploads."""
        value = self._get("MAX_APPEND_SIZE")
        return None if value is None else int(value)

    @property
    def SEND_104(self) -> bool:
        """Send ``104 (Upload Resumption Supported)`` to draft creations where
        the server lets one be sent (gunicorn over HTTP/1.1)."""
        return bool(self._get("SEND_104"))

    @property
    def AUTHENTICATE(self) -> Any:
        """Callable or dotted path ``(request) -> user or None``, for clients
        without Django's session cookie (a token in a header)."""
        return self._get("AUTHENTICATE")

    @property
    def PERMISSION(self) -> Any:
        return self._get("PERMISSION")

    @property
    def PRE_CREATE(self) -> Any:
        return self._get("PRE_CREATE")

    @property
    def GET_REDIRECT(self) -> bool:
        return bool(self._get("GET_REDIRECT"))

    @property
    def METRICS(self) -> bool:
        """Count into Prometheus metrics (when ``prometheus_client`` is installed)."""
        return bool(self._get("METRICS"))

    @property
    def GET_URL_EXPIRY(self) -> int:
        return int(self._get("GET_URL_EXPIRY"))

    def _duration(self, name: str) -> timedelta:
        value = self._get(name)
        return value if isinstance(value, timedelta) else timedelta(seconds=float(value))

    @property
    def RETENTION(self) -> timedelta:
        """How long completed, expired and terminated rows are kept before the reaper deletes them."""
        return self._duration("RETENTION")

    @property
    def ORPHAN_AGE(self) -> timedelta:
        """How old an unreferenced multipart upload under the key prefix must be before it is aborted."""
        return self._duration("ORPHAN_AGE")

    @property
    def TAIL_SWEEP_AGE(self) -> timedelta:
        """How old a tail file must be before the sweep deletes it without a finished session to tell.
        Keep it above ``RINDLE_TUS_EXPIRATION``."""
        return self._duration("TAIL_SWEEP_AGE")


tus_settings = Settings()
