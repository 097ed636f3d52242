"""PROTOCOL.md, Expiration."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import requests

from rindle_tus.maintenance import reap_expired
from rindle_tus.storage import tus_tail_path

from ..conftest import PART, S3, MiB, payload
from .conftest import Tus, session_of

# RFC 9110 section 5.6.7, IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT".
IMF_FIXDATE = re.compile(
    r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
    r"[0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} GMT"
)


def expires_of(response: requests.Response) -> datetime:
    value = response.headers["Upload-Expires"]
    assert IMF_FIXDATE.fullmatch(value), value
    moment = parsedate_to_datetime(value)
    assert moment.tzinfo is not None and moment.utcoffset() == timedelta(0)
    return moment


def test_post_answers_upload_expires_as_an_rfc_9110_gmt_date_in_the_future(server: Tus) -> None:
    """POST responses carry Upload-Expires, an RFC 9110 IMF-fixdate in GMT, while the upload can expire."""
    response = server.create(100)
    assert response.status_code == 201
    assert expires_of(response) > datetime.now(UTC)


def test_patch_answers_upload_expires_as_an_rfc_9110_gmt_date_in_the_future(server: Tus) -> None:
    """PATCH responses carry Upload-Expires, an RFC 9110 IMF-fixdate in GMT, while the upload can expire."""
    url = server.new(100)
    response = server.patch(url, b"a" * 10, 0)
    assert response.status_code == 204
    assert expires_of(response) > datetime.now(UTC)


def test_creation_with_upload_answers_upload_expires(server: Tus) -> None:
    """A POST that carries some of the bytes answers Upload-Expires as well."""
    response = server.create(100, body=b"a" * 10)
    assert response.status_code == 201
    assert expires_of(response) > datetime.now(UTC)


def test_upload_expires_follows_the_configured_expiration(server: Tus, settings: Any) -> None:
    """Upload-Expires lies one RINDLE_TUS_EXPIRATION after the request."""
    settings.RINDLE_TUS_EXPIRATION = timedelta(hours=5)
    before = datetime.now(UTC).replace(microsecond=0)
    expires = expires_of(server.create(100))
    after = datetime.now(UTC)
    assert before + timedelta(hours=5) <= expires <= after + timedelta(hours=5)


def test_upload_expires_slides_with_activity(server: Tus, settings: Any) -> None:
    """Each PATCH moves the expiry forward: it is counted from the last activity."""
    settings.RINDLE_TUS_EXPIRATION = timedelta(hours=1)
    created = server.create(100)
    url = created.headers["Location"]
    settings.RINDLE_TUS_EXPIRATION = timedelta(hours=3)
    patched = server.patch(url, b"a" * 10, 0)
    assert expires_of(patched) >= expires_of(created) + timedelta(hours=2) - timedelta(seconds=1)


def test_completing_patch_answers_no_upload_expires(server: Tus) -> None:
    """A complete upload can no longer expire, so the PATCH that completes it carries no Upload-Expires."""
    url = server.new(10)
    response = server.patch(url, b"a" * 10, 0)
    assert response.status_code == 204
    assert "Upload-Expires" not in response.headers


def test_expired_upload_is_410(server: Tus, settings: Any) -> None:
    """An expired upload answers 410 to HEAD (without Upload-Offset), PATCH and DELETE."""
    settings.RINDLE_TUS_EXPIRATION = timedelta(0)
    url = server.new(100)
    head = server.head(url)
    assert head.status_code == 410
    assert "Upload-Offset" not in head.headers
    assert server.patch(url, b"a" * 10, 0).status_code == 410
    assert server.delete(url).status_code == 410


def test_expired_upload_storage_is_reclaimed_by_the_reaper(server: Tus, s3: S3, settings: Any) -> None:
    """Once expired, the reaper aborts the upload's multipart upload and removes its tail; it stays 410."""
    url = server.new(3 * PART)
    assert server.patch(url, payload(PART + MiB), 0).status_code == 204
    # The next activity sets an expiry of now: the upload has expired once it answers.
    settings.RINDLE_TUS_EXPIRATION = timedelta(0)
    assert server.patch(url, b"a" * 10, PART + MiB).status_code == 204
    assert server.head(url).status_code == 410
    session = session_of(url)
    assert s3.multipart_uploads(session.key) != []
    assert tus_tail_path(session.id).exists()

    reap_expired(ids=[session.id])
    assert s3.multipart_uploads(session.key) == []
    assert not tus_tail_path(session.id).exists()
    assert server.head(url).status_code == 410
