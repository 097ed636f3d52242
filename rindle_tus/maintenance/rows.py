"""Old rows: finished sessions past ``RINDLE_TUS_RETENTION`` leave the
database, and completed partial uploads take their object with them."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from ..conf import tus_settings
from ..exceptions import StorageError
from ..holders import free
from ..models import ConcatKind, State, TusSession
from ..storage.s3 import S3Backend
from .report import DELETE_OBJECT, DELETE_ROW, DONE, FAILED, GONE, WOULD, Report

_FINISHED = (State.COMPLETED, State.EXPIRED, State.TERMINATED)


def delete_old_rows(
    *, dry_run: bool = False, now: datetime | None = None, batch_size: int = 500, backend: S3Backend | None = None
) -> Report:
    """Delete completed, expired and terminated rows untouched for ``RINDLE_TUS_RETENTION``.

    Rows whose clean-up is still pending (``last_error``) stay until it
    succeeds; failed rows stay for the operator. Objects of finished uploads
    are the users' files and are never deleted here, except those of
    completed partial uploads (``Upload-Concat: partial``): they are material
    for final uploads, which hold their own copy, so the object goes with
    the row. If deleting it fails, the row stays and the next run retries.
    """
    report = Report(dry_run=dry_run)
    now = now or timezone.now()
    candidates = TusSession.objects.stale(now - tus_settings.RETENTION).filter(
        free(), state__in=_FINISHED, last_error=""
    )
    partial = {"state": State.COMPLETED, "concat": ConcatKind.PARTIAL}
    partials, rest = candidates.filter(**partial).order_by("pk"), candidates.exclude(**partial)
    if dry_run:
        for pk, key in partials.values_list("pk", "key").iterator():
            report.add(DELETE_OBJECT, pk, WOULD, detail=key)
            report.add(DELETE_ROW, pk, WOULD, detail=State.COMPLETED)
        for pk, state in rest.order_by("pk").values_list("pk", "state").iterator():
            report.add(DELETE_ROW, pk, WOULD, detail=state)
        return report
    # Partial uploads first, one at a time and outside any transaction (no
    # row lock is held across an S3 call): the object, then the row. Deleting
    # an object twice is harmless, so two reapers at once need no lock; the
    # one whose row delete succeeds reports both.
    for pk, key in partials.values_list("pk", "key").iterator():
        backend = backend or S3Backend()
        try:
            backend.delete(key)
        except StorageError as exc:
            report.add(DELETE_OBJECT, pk, FAILED, detail=str(exc))
            continue
        deleted, _ = candidates.filter(pk=pk).delete()
        if deleted:
            report.add(DELETE_OBJECT, pk, DONE, detail=key)
        report.add(DELETE_ROW, pk, DONE if deleted else GONE, detail=State.COMPLETED)
    after = ""
    while True:
        with transaction.atomic():
            rows = list(
                rest.filter(pk__gt=after)
                .order_by("pk")
                .select_for_update(skip_locked=True)
                .values_list("pk", "state")[:batch_size]
            )
            for pk, state in rows:
                deleted, _ = rest.filter(pk=pk).delete()
                report.add(DELETE_ROW, pk, DONE if deleted else GONE, detail=state)
        if not rows:
            return report
        after = rows[-1][0]
