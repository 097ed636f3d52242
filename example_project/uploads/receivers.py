from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from rindle_tus.models import TusSession
from rindle_tus.signals import upload_finished

from .models import FinishedUpload


@receiver(upload_finished, dispatch_uid="example_project.uploads.record_finished_upload")
def record_finished_upload(sender: type[TusSession], session: TusSession, key: str, size: int, **kwargs: Any) -> None:
    # One INSERT ... ON CONFLICT: a signal delivered twice must not record the
    # upload twice, and a finished upload costs one statement, not a transaction.
    fields = {
        "key": key,
        "size": size,
        "filename": session.filename[:255],
        "content_type": (session.content_type or "")[:255],
        "created_by_id": session.created_by_id,
        "client": session.client,
    }
    FinishedUpload.objects.bulk_create(
        [FinishedUpload(session_id=session.id, **fields)],
        update_conflicts=True,
        unique_fields=["session_id"],
        update_fields=list(fields),
    )
