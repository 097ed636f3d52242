"""Write-behind: a PATCH is answered once its bytes are safe on this node's
disk, while the full parts it cut are still on their way to S3.

The parts a request leaves uploading (``PartPipeline.hand_off``) wait in part
files of the tail (``storage.PartFiles``), fsynced before the row's offset
counts them; the row stays the only authority. What this module keeps is a
hint, per process: the uploads still running or finished but not yet
committed, by upload, so that the next request for the upload in this
process commits their ETags instead of sending the bytes again. A request
elsewhere (another worker of the node, or this one after a restart) finds
no hint and uploads the part files itself: the same bytes under the same
part number, which S3 replaces harmlessly.

A hint is only given once the row counts its part (the commit that moves the
offset past it), and a part's bytes never change once the offset has passed
them, so an ETag from a hint always names the bytes the row means.

Bounds: ``RINDLE_TUS_WRITE_BEHIND`` parts per upload (a request past it
waits for the oldest, as without write-behind), at most that many per body
slot of a process (``RINDLE_TUS_MAX_BODIES``) in flight in the whole process,
each holding its part buffer until S3 has it; the part files count towards
``RINDLE_TUS_MAX_TAIL_BYTES`` like any tail.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future

from .conf import tus_settings

# Body slots assumed for the process bound when RINDLE_TUS_MAX_BODIES is None.
UNBOUNDED_BODIES = 8
# Uploads a process keeps hints for.
MAX_UPLOADS = 10_000


def per_upload() -> int:
    """Parts of one upload that may wait for S3 once a request has answered."""
    return tus_settings.WRITE_BEHIND


def per_process() -> int:
    """Parts of all uploads that may be on their way to S3 past their requests in one process."""
    return per_upload() * (tus_settings.MAX_BODIES or UNBOUNDED_BODIES)


class Hints:
    """Per process: the part uploads requests left running, by upload and part number."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_upload: dict[str, dict[int, Future[str]]] = {}

    def take(self, session_id: str) -> dict[int, Future[str]]:
        """The upload's hints, now the caller's (who holds its lease)."""
        with self._lock:
            return self._by_upload.pop(session_id, {})

    def give(self, session_id: str, futures: dict[int, Future[str]]) -> None:
        """Hints for parts the row now counts, for the upload's next request here."""
        if not futures:
            return
        with self._lock:
            self._by_upload.setdefault(session_id, {}).update(futures)
            # Uploads whose next request never comes here: the oldest go first
            # (a finished hint holds no buffer, only its ETag).
            while len(self._by_upload) > MAX_UPLOADS:
                del self._by_upload[next(iter(self._by_upload))]

    def running(self) -> int:
        with self._lock:
            return sum(not f.done() for hints in self._by_upload.values() for f in hints.values())

    def forget(self, session_id: str) -> None:
        """The upload is gone (terminated, completed elsewhere): its hints mean nothing."""
        with self._lock:
            self._by_upload.pop(session_id, None)


hints = Hints()
