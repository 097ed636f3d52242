"""What the app reads from an upload's metadata: its content type and its
file name, the two values that end up in headers (the S3 object's
Content-Type, a download's Content-Type and Content-Disposition).

New uploads cannot hold values unfit for a header
(``protocol.check_header_metadata``); uploads created before that check
can, so the values are neutralised here too, where they are read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from .protocol import CONTENT_TYPE_KEYS, FILE_NAME_KEYS, is_media_type, without_controls


def content_type_of(metadata: Mapping[str, Any]) -> str | None:
    """The first valid media type among the content-type keys of an
    upload's decoded metadata: anything else is ignored, as if the uploader
    had named none."""
    for name in CONTENT_TYPE_KEYS:
        value = metadata.get(name)
        if value and is_media_type(str(value)):
            return str(value)
    return None


def filename_of(metadata: Mapping[str, Any]) -> str:
    """The uploader's file name, without control characters; "" if none."""
    for name in FILE_NAME_KEYS:
        value = metadata.get(name)
        cleaned = clean_filename(str(value)) if value else ""
        if cleaned:
            return cleaned
    return ""


def clean_filename(name: str) -> str:
    """A file name fit for a header, however it was stored: no control characters."""
    return without_controls(name)


def content_disposition(filename: str) -> str:
    # Cleaned here as well, whoever passes the name: a CR or LF would make
    # the header (or the presigned URL's ResponseContentDisposition) unsendable.
    name = clean_filename(filename)
    ascii_name = name.encode("ascii", "replace").decode().replace('"', "").replace("\\", "")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}"
