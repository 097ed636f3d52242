"""Freeing an upload's storage: one rule for the DELETE path
(``Writer.terminate``) and the reaper (``maintenance``), which reports each
step."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .conf import tus_settings
from .exceptions import StorageError
from .models import State, TusSession
from .storage import PartFiles, S3Backend, S3Tail, tus_tail_path

ABORT = "abort_upload"
DELETE_OBJECT = "delete_object"
DELETE_TAIL = "delete_tail"


@dataclass(frozen=True)
class CleanupStep:
    kind: str
    target: str
    run: Callable[[S3Backend], None]
    detail: str = ""

    def attempt(self, backend: S3Backend) -> Exception | None:
        """Run the step; the error if it failed (the caller records it)."""
        try:
            self.run(backend)
        except (StorageError, OSError) as exc:
            return exc
        return None


def _unlinker(path: Path) -> Callable[[S3Backend], None]:
    return lambda backend: path.unlink(missing_ok=True)


def cleanup_steps(session: TusSession, backend: S3Backend) -> list[CleanupStep]:
    """What freeing a terminated or expired upload's storage takes.

    - Its multipart upload, unless completed: aborted (one already gone counts).
    - Its object, when terminated: deleted. A completed upload's object is
      the file the client asked to delete; a failed one's is assembled with
      the wrong size; one created by a single PutObject has no multipart
      upload at all. Deleting a key that holds nothing succeeds, so the rule
      needs no guess about which of these it was. An expired upload never
      completed and has no object.
    - Its tails: the file on this node if there is one, with the part
      files of parts that waited there for S3 (write-behind), and the shared
      tail object once the upload could have one.
    """
    steps: list[CleanupStep] = []
    key, upload_id = session.key, session.upload_id
    if upload_id and session.completed_at is None:
        steps.append(CleanupStep(ABORT, key, lambda b: b.abort(key, upload_id), f"upload id {upload_id}"))
    if session.state == State.TERMINATED:
        steps.append(CleanupStep(DELETE_OBJECT, key, lambda b: b.delete(key)))
    path = tus_tail_path(session.pk)
    if path.is_symlink() or path.exists():
        steps.append(CleanupStep(DELETE_TAIL, str(path), lambda b: path.unlink(missing_ok=True)))
    for part_path in PartFiles(session.pk).paths():
        steps.append(CleanupStep(DELETE_TAIL, str(part_path), _unlinker(part_path), "part file"))
    if tus_settings.TAIL_STORE == "s3" and upload_id:
        shared = S3Tail(session.pk, backend)
        steps.append(CleanupStep(DELETE_TAIL, shared.key, lambda b: shared.delete(), "shared tail"))
    return steps
