"""What a request costs the database: the statements of the everyday
requests, pinned on every database the suite runs on.

The leases here are taken outside any transaction (``transactional_db``), as
in production, so the heartbeat's renewals run on its own connection and are
not counted: only the request's own statements are. Connection health checks
(``CONN_HEALTH_CHECKS``) do not pass through the cursor Django counts, and
cost one round trip per request on top where they are on; what the host's
signal receivers do is the host's.
"""

from __future__ import annotations

from typing import Any

import pytest

from rindle_tus import signals, uploads
from rindle_tus.body import Body
from rindle_tus.exceptions import OffsetMismatch
from rindle_tus.models import State

from .conftest import PART, S3, MiB, TusClient, payload, session_for, sha256

pytestmark = pytest.mark.usefixtures("transactional_db", "only_our_statements")


@pytest.fixture
def only_our_statements(monkeypatch: pytest.MonkeyPatch) -> None:
    """The host's receivers of the upload signals (the example project's
    records its finished uploads) are the host's statements, not ours."""
    for signal in (signals.upload_created, signals.upload_finished, signals.upload_terminated):
        monkeypatch.setattr(signal, "receivers", [])
        monkeypatch.setattr(signal, "sender_receivers_cache", {})

KiB = 1024


def test_a_small_upload_whole_in_its_post_costs_three_statements(
    tus: TusClient, s3: S3, django_assert_max_num_queries: Any
) -> None:
    """The client's unfinished uploads counted (``MAX_UNFINISHED``), the row
    inserted already held, and its completion written with the release."""
    data = payload(256 * KiB)
    with django_assert_max_num_queries(3):
        response = tus.create(len(data), body=data)
    assert response.status_code == 201
    assert response["Upload-Offset"] == str(len(data))
    session = session_for(str(response["Location"]))
    assert session.state == State.COMPLETED
    assert s3.sha256(session.key) == sha256(data)


def test_a_patch_that_completes_no_part_costs_two_statements(
    tus: TusClient, s3: S3, django_assert_max_num_queries: Any
) -> None:
    """The row read as the lease is taken (``Lease.take_where``), and the
    new offset written with the release."""
    chunk = 512 * KiB
    data = payload(PART + 4 * chunk)
    url = tus.new(len(data))
    offset = 0
    # The first PATCH (which starts the multipart upload), later ones, and
    # those after a part was committed.
    while offset + chunk < len(data):
        completes_a_part = (offset + chunk) // PART != offset // PART
        if completes_a_part:
            response = tus.patch(url, data[offset : offset + chunk], offset)
        else:
            with django_assert_max_num_queries(2):
                response = tus.patch(url, data[offset : offset + chunk], offset)
        assert response.status_code == 204
        offset += chunk
        assert response["Upload-Offset"] == str(offset)
        assert session_for(url).offset == offset
    assert tus.patch(url, data[offset:], offset).status_code == 204
    session = session_for(url)
    assert session.state == State.COMPLETED
    assert s3.sha256(session.key) == sha256(data)


def test_a_head_costs_at_most_two_statements(
    tus: TusClient, s3: S3, django_assert_max_num_queries: Any
) -> None:
    data = payload(MiB + 7)
    url = tus.new(len(data))
    assert tus.patch(url, data[:MiB], 0).status_code == 204
    with django_assert_max_num_queries(2):
        response = tus.head(url)
    assert response["Upload-Offset"] == str(MiB)
    assert tus.patch(url, data[MiB:], MiB).status_code == 204
    # A completed upload's HEAD only reads it.
    with django_assert_max_num_queries(6):
        response = tus.head(url)
    assert response["Upload-Offset"] == str(len(data))
    assert s3.sha256(session_for(url).key) == sha256(data)


def test_a_patch_the_row_changed_under_still_reads_it_again(tus: TusClient, s3: S3) -> None:
    """The one-statement way in holds only for a row unchanged since the
    view read it; otherwise the request reads it again and answers from it."""
    data = payload(MiB)
    url = tus.new(len(data))
    stale = session_for(url)
    assert tus.patch(url, data[: 100 * KiB], 0).status_code == 204

    class Bytes:
        def __init__(self, blob: bytes) -> None:
            self.blob = blob

        def read(self, size: int = -1, /) -> bytes:
            out, self.blob = self.blob[:size], self.blob[size:]
            return out

    with pytest.raises(OffsetMismatch):
        # The view checked the offset on its stale copy (0); under the lease
        # the row says 100 KiB, so nothing of this body is applied.
        uploads.apply_body(stale, Body(Bytes(data[:KiB]), KiB), None, offset=0)
    assert session_for(url).offset == 100 * KiB
    assert tus.patch(url, data[100 * KiB :], 100 * KiB).status_code == 204
    assert s3.sha256(session_for(url).key) == sha256(data)


def test_with_a_permission_hook_a_patch_reads_the_row_before_the_lease(
    tus: TusClient, s3: S3, settings: Any, django_assert_max_num_queries: Any
) -> None:
    """A hook sees the row first, so a request it refuses never takes the
    upload's place in line (``lease_epoch``): it cannot make a request of
    the upload's own client give way. That costs one statement more."""
    settings.RINDLE_TUS_PERMISSION = "tests.test_query_counts.refuse_second_half"
    data = payload(MiB)
    url = tus.new(len(data))
    with django_assert_max_num_queries(3):
        assert tus.patch(url, data[: 512 * KiB], 0).status_code == 204
    epoch = session_for(url).lease_epoch
    response = tus.patch(url, data[512 * KiB :], 512 * KiB, headers={"X-Half": "second"})
    # Refused (401: the test client is not signed in).
    assert response.status_code == 401
    row = session_for(url)
    assert (row.lease_epoch, row.lease_token, row.offset) == (epoch, "", 512 * KiB)
    assert tus.patch(url, data[512 * KiB :], 512 * KiB).status_code == 204
    assert s3.sha256(session_for(url).key) == sha256(data)


def refuse_second_half(request: Any, action: str, session: Any) -> bool:
    return request.headers.get("X-Half") != "second"


@pytest.mark.parametrize(
    ("headers", "status"),
    [({"Content-Type": "text/plain"}, 415), ({"Upload-Length": "12"}, 400), ({"Upload-Checksum": "md5 x"}, 400)],
)
def test_a_patch_refused_after_its_lease_was_taken_gives_it_back(
    tus: TusClient, s3: S3, headers: dict[str, str], status: int
) -> None:
    """Without a hook the lease comes with the row; a refusal after that
    (a header the view checks) releases it, and nothing of the row changes."""
    data = payload(MiB)
    url = tus.new(len(data))
    assert tus.patch(url, data[:KiB], 0).status_code == 204
    before = session_for(url)
    content_type = headers.pop("Content-Type", "application/offset+octet-stream")
    response = tus.request(
        "PATCH", url, data[KiB:], headers={"Upload-Offset": str(KiB), **headers}, content_type=content_type
    )
    assert response.status_code == status, response.content
    row = session_for(url)
    assert (row.lease_token, row.lease_expires_at, row.offset, row.parts) == ("", None, KiB, before.parts)
    assert tus.patch(url, data[KiB:], KiB).status_code == 204
    assert s3.sha256(session_for(url).key) == sha256(data)
