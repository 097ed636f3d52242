"""Download links for finished uploads: presigned URLs from the storage the
uploads went to."""

from __future__ import annotations

from rindle_tus.storage import S3Backend

from .models import FinishedUpload


def download_url(upload: FinishedUpload, expire: int = 300) -> str:
    # S3Backend.url turns the bucket key ``upload_finished`` reported into
    # the storage's name and cleans the file name for the header.
    return S3Backend().url(upload.key, upload.display_name, expire)
