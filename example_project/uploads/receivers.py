from __future__ import annotations

from contextlib import nullcontext
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.dispatch import receiver

from rindle_tus.models import TusSession
from rindle_tus.signals import upload_finished

from .models import FinishedUpload


@receiver(upload_finished, dispatch_uid="example_project.uploads.record_finished_upload")
def record_finished_upload(sender: type[TusSession], session: TusSession, key: str, size: int, **kwargs: Any) -> None:
    record = FinishedUpload(
        session_id=session.id,
        key=key,
        size=size,
        filename=session.filename[:255],
        content_type=(session.content_type or "")[:255],
        created_by_id=session.created_by_id,
        client=session.client,
    )
    # One INSERT: upload_finished comes once the upload's row is written, outside
    # any transaction, so it costs one statement. Inside one (a test's), a
    # savepoint keeps a duplicate from breaking it.
    try:
        with transaction.atomic() if connection.in_atomic_block else nullcontext():
            record.save(force_insert=True)
    except IntegrityError:
        # The signal was delivered twice: the upload is recorded already.
        pass
