"""Download links for finished uploads: presigned URLs from the storage the
uploads went to."""

from __future__ import annotations

from django.core.files.storage import storages

from rindle_tus.conf import tus_settings
from rindle_tus.metadata import clean_filename

from .models import FinishedUpload


def storage_name(key: str, location: str) -> str:
    """The storage-relative name of a full bucket key.

    ``upload_finished`` reports the key in the bucket, which includes the
    storage's ``location``; ``Storage.url()`` adds the location itself.
    """
    location = location.strip("/")
    if location and key.startswith(location + "/"):
        return key[len(location) + 1 :]
    return key


def download_url(upload: FinishedUpload) -> str:
    storage = storages[tus_settings.STORAGE]
    name = storage_name(upload.key, getattr(storage, "location", ""))
    # Records kept from before rindle_tus cleaned file names may hold CR or LF.
    filename = clean_filename(upload.display_name).replace('"', "")
    return str(
        storage.url(name, parameters={"ResponseContentDisposition": f'attachment; filename="{filename}"'})
    )
