"""Orphan multipart uploads: those under the app's key prefix that no
receiving session references (crashes, or another tus server's leftovers),
aborted once older than ``RINDLE_TUS_ORPHAN_AGE``."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from django.db import connection
from django.utils import timezone

from ..conf import tus_settings
from ..exceptions import StorageError
from ..models import State, TusSession
from ..storage.s3 import S3Backend
from .report import ABORT_ORPHAN, DONE, FAILED, GONE, SKIPPED, STEP, WOULD, Report


@contextmanager
def _only_one(name: str) -> Iterator[bool]:
    """Whether this process is the only one running ``name`` right now.

    S3 cannot tell a second abort of the same upload from the first, so on
    PostgreSQL a session advisory lock (no transaction held) keeps a second
    orphan reaper out. Other databases run one reaper at a time in practice.
    """
    if connection.vendor != "postgresql":
        yield True
        return
    key = zlib.crc32(f"rindle_tus.{name}".encode())
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
        got = bool(cursor.fetchone()[0])
    try:
        yield got
    finally:
        if got:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [key])


def reap_orphans(*, dry_run: bool = False, backend: S3Backend | None = None, now: datetime | None = None) -> Report:
    """Abort multipart uploads under the app's key prefix that are older than
    ``RINDLE_TUS_ORPHAN_AGE`` and that no receiving session references."""
    report = Report(dry_run=dry_run)
    if dry_run:
        _find_orphans(backend or S3Backend(), now, report)
        return report
    with _only_one("reap_orphans") as alone:
        if not alone:
            report.add(STEP, "orphans", SKIPPED, detail="another reaper is aborting orphans right now")
            return report
        _find_orphans(backend or S3Backend(), now, report)
    return report


def _find_orphans(backend: S3Backend, now: datetime | None, report: Report) -> None:
    dry_run = report.dry_run
    cutoff = (now or timezone.now()) - tus_settings.ORPHAN_AGE
    for uploads in backend.multipart_uploads():
        old = [u for u in uploads if u["Initiated"] < cutoff]
        referenced = set(
            TusSession.objects.filter(
                state=State.RECEIVING, upload_id__in=[u["UploadId"] for u in old]
            ).values_list("upload_id", flat=True)
        )
        for upload in old:
            key, upload_id = upload["Key"], upload["UploadId"]
            if upload_id in referenced:
                continue
            detail = f"upload id {upload_id}, initiated {upload['Initiated'].isoformat()}"
            if dry_run:
                report.add(ABORT_ORPHAN, key, WOULD, detail=detail)
                continue
            try:
                aborted = backend.abort_existing(key, upload_id)
            except StorageError as exc:
                # The store's own words, not the client-facing "can be resumed".
                report.add(ABORT_ORPHAN, key, FAILED, detail=f"{detail}: {exc.__cause__ or exc}")
            else:
                report.add(ABORT_ORPHAN, key, DONE if aborted else GONE, detail=detail)
