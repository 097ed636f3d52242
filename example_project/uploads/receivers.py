from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from rindle_tus.models import TusSession
from rindle_tus.signals import upload_finished

from .models import FinishedUpload


@receiver(upload_finished, dispatch_uid="example_project.uploads.record_finished_upload")
def record_finished_upload(sender: type[TusSession], session: TusSession, key: str, size: int, **kwargs: Any) -> None:
    # update_or_create: a signal delivered twice must not record the upload twice.
    FinishedUpload.objects.update_or_create(
        session_id=session.id,
        defaults={
            "key": key,
            "size": size,
            "filename": session.filename[:255],
            "content_type": (session.content_type or "")[:255],
            "created_by_id": session.created_by_id,
            "client": session.client,
        },
    )
