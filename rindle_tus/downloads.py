"""A finished upload's bytes, for GET: a short-lived URL of the object, or
the bytes themselves streamed through Django."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from .conf import tus_settings
from .exceptions import UploadNotFound
from .models import State, TusSession
from .storage import S3Backend


@dataclass(frozen=True)
class Download:
    """A finished upload's bytes: a short-lived ``url`` of the object, or
    (``RINDLE_TUS_GET_REDIRECT = False``) the ``chunks`` themselves."""

    url: str | None
    chunks: Iterator[bytes] | None
    length: int
    content_type: str
    filename: str


def open_download(session: TusSession) -> Download:
    if session.state != State.COMPLETED:
        raise UploadNotFound("This upload is not finished.")
    backend = S3Backend()
    content_type = session.content_type or "application/octet-stream"
    filename = session.filename or session.id
    length = int(session.length or 0)
    if tus_settings.GET_REDIRECT:
        url = backend.url(session.key, session.filename, tus_settings.GET_URL_EXPIRY)
        return Download(url, None, length, content_type, filename)
    return Download(None, backend.chunks(session.key, tus_settings.READ_CHUNK_SIZE), length, content_type, filename)
