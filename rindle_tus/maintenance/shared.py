"""What the expired-session step and the operator actions share: releasing
a lease without losing the report, and completing a session whose every
byte arrived but whose completion failed."""

from __future__ import annotations

from ..exceptions import StorageError
from ..locking import Lease
from ..models import State, TusSession
from ..storage.s3 import S3Backend
from ..writer import Writer
from .report import COMPLETE, DONE, FAILED, Report


def _release(session: TusSession, lease: Lease, report: Report, kind: str) -> None:
    try:
        lease.release()
    except Exception as exc:  # noqa: BLE001  (the lease expires by itself)
        report.add(kind, session.pk, FAILED, detail=f"could not release the lease: {exc}")


def _not_completable(session: TusSession) -> str | None:
    if session.completion_pending:
        return None
    if session.state != State.RECEIVING:
        return f"it is {session.state}"
    if session.length is None or session.offset != session.length:
        return f"it holds {session.offset} of {session.length if session.length is not None else '?'} bytes"
    if not session.upload_id or not session.parts:
        return "it has no multipart upload to complete"
    return f"its parts hold {session.committed_bytes} of {session.length} bytes"


def _complete(session: TusSession, lease: Lease, backend: S3Backend, report: Report) -> None:
    """Complete through the writer, as a PATCH or a HEAD would, so the checks
    (NoSuchUpload means done if the object's size is right) stay in one place."""
    try:
        Writer(session, lease, backend).finish_pending()
    except StorageError as exc:
        report.add(COMPLETE, session.pk, FAILED, detail=str(exc))
        return
    report.add(COMPLETE, session.pk, DONE, detail=f"{session.length} bytes at {session.key}")
