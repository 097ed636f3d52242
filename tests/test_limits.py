"""What one client may make the server store: every path into storage obeys
``Tus-Max-Size``, the pre-create hook sees every length that becomes known
(so a quota can be written), and the bounds on unfinished uploads per client,
on the tails a node buffers and on what a refused body leaves in S3."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import OperationalError
from django.db.models import Sum
from django.test import Client

from rindle_tus.exceptions import UploadRejected
from rindle_tus.locking import Lease
from rindle_tus.models import State, TusSession
from rindle_tus.storage import S3Backend, folder

from .conftest import PART, S3, MiB, TusClient, payload, session_for, sha256

# -- Tus-Max-Size on every path --------------------------------------------------


def test_a_deferred_length_upload_stops_at_tus_max_size(tus: TusClient, s3: S3, settings: Any) -> None:
    settings.RINDLE_TUS_MAX_SIZE = 10 * MiB
    data = payload(10 * MiB, seed=1)
    url = tus.new(None)
    assert tus.patch(url, data[: 6 * MiB], 0).status_code == 204

    past = tus.patch(url, payload(6 * MiB, seed=2), 6 * MiB)

    assert past.status_code == 413 and b"largest upload" in past.content
    assert session_for(url).offset == 6 * MiB
    assert tus.patch(url, data[6 * MiB :], 6 * MiB, headers={"Upload-Length": str(12 * MiB)}).status_code == 413
    assert session_for(url).length is None
    done = tus.patch(url, data[6 * MiB :], 6 * MiB, headers={"Upload-Length": str(len(data))})
    assert done.status_code == 204
    assert s3.sha256(session_for(url).key) == sha256(data)




def test_a_final_upload_past_tus_max_size_is_refused_and_creates_nothing(
    tus: TusClient, s3: S3, settings: Any
) -> None:
    settings.RINDLE_TUS_MAX_SIZE = 10 * MiB
    urls = [tus.partial(payload(6 * MiB, seed=n)) for n in (3, 4)]
    rows = TusSession.objects.count()

    refused = tus.final(urls)

    assert refused.status_code == 413
    assert TusSession.objects.count() == rows


def test_a_partial_named_twice_in_one_final_is_refused(tus: TusClient, s3: S3) -> None:
    """Copied server-side, one partial named many times would make an object
    of any size out of a few bytes sent (200 x 5 MiB = 1,000 MiB in one POST)."""
    url = tus.partial(payload(PART, seed=5))
    rows = TusSession.objects.count()

    refused = tus.final([url, url])

    assert refused.status_code == 400 and b"more than once" in refused.content
    assert TusSession.objects.count() == rows


# -- the pre-create hook sees every length ------------------------------------------


def test_the_pre_create_hook_sees_each_length_as_it_becomes_known(tus: TusClient, s3: S3, settings: Any) -> None:
    seen: list[tuple[int | None, bytes | None]] = []
    settings.RINDLE_TUS_PRE_CREATE = lambda request, length, metadata: seen.append((length, metadata.get("name")))
    meta = {"name": b"a.bin"}

    deferred = tus.new(None, metadata=meta)
    assert tus.patch(deferred, b"abc", 0, headers={"Upload-Length": "3"}).status_code == 204
    pieces = [payload(MiB, seed=6), payload(7, seed=7)]
    urls = [tus.partial(piece) for piece in pieces]
    assert tus.final(urls).status_code == 201

    assert seen == [(None, b"a.bin"), (3, b"a.bin"), (MiB, None), (7, None), (MiB + 7, None)]


def per_user_quota(request: Any, length: int | None, metadata: Any) -> None:
    """The README's example: each signed-in user may store 10 MiB in all."""
    if length is None:
        return
    used = TusSession.objects.filter(created_by=request.user).exclude(
        state__in=[State.TERMINATED, State.EXPIRED]
    ).aggregate(total=Sum("length"))["total"] or 0
    if used + length > 10 * MiB:
        raise UploadRejected(f"Your uploads may hold 10 MiB in all; {used} bytes are taken.", status=413)


@pytest.fixture
def alice(db: None) -> TusClient:
    client = Client()
    client.force_login(get_user_model().objects.create_user("alice", password="pw"))
    return TusClient(client)


def test_a_per_user_quota_hook_refuses_what_would_pass_the_quota(
    alice: TusClient, s3: S3, tail_root: Any, settings: Any
) -> None:
    settings.RINDLE_TUS_PRE_CREATE = "tests.test_limits.per_user_quota"
    first = alice.new(6 * MiB)
    data = payload(6 * MiB, seed=8)
    assert alice.patch(first, data, 0).status_code == 204

    assert alice.create(6 * MiB).status_code == 413
    deferred = alice.new(None)
    refused = alice.patch(deferred, b"x" * 10, 0, headers={"Upload-Length": str(5 * MiB)})
    assert refused.status_code == 413 and b"10 MiB in all" in refused.content
    assert session_for(deferred).offset == 0
    assert alice.patch(deferred, b"x" * 10, 0, headers={"Upload-Length": "10"}).status_code == 204
    assert s3.sha256(session_for(first).key) == sha256(data)


# -- unfinished uploads per client --------------------------------------------------


def test_unfinished_uploads_are_bounded_per_signed_out_client(tus: TusClient, s3: S3, settings: Any) -> None:
    settings.RINDLE_TUS_MAX_UNFINISHED = 3
    urls = [tus.new(10) for _ in range(3)]

    refused = tus.create(10)

    assert refused.status_code == 429 and b"too_many_uploads" in refused.content
    assert TusSession.objects.count() == 3
    # Another address has its own allowance; finishing one frees a place.
    other = tus.client.generic(
        "POST", "/files/", headers={"Tus-Resumable": "1.0.0", "Upload-Length": "10"}, REMOTE_ADDR="10.9.9.9"
    )
    assert other.status_code == 201
    assert tus.patch(urls[0], b"0123456789", 0).status_code == 204
    assert s3.sha256(session_for(urls[0]).key) == sha256(b"0123456789")
    assert tus.create(10).status_code == 201


def test_unfinished_uploads_are_bounded_per_user(alice: TusClient, tus: TusClient, settings: Any) -> None:
    settings.RINDLE_TUS_MAX_UNFINISHED = 2
    for _ in range(2):
        alice.new(10)
    assert alice.create(10).status_code == 429
    # Signed-out clients on the same address are counted apart.
    assert tus.create(10).status_code == 201


# -- tails on a node -------------------------------------------------------------------


def test_buffered_tails_on_a_node_are_bounded(
    tus: TusClient, s3: S3, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.RINDLE_TUS_MAX_TAIL_BYTES = 3 * MiB
    monkeypatch.setattr(folder, "USAGE_TTL", 0)
    first, second = tus.new(PART), tus.new(PART)
    assert tus.patch(first, payload(2 * MiB, seed=9), 0).status_code == 204
    assert tus.patch(second, payload(MiB, seed=10), 0).status_code == 204

    refused = tus.patch(second, payload(MiB, seed=11), MiB)

    assert refused.status_code == 507 and b"node_full" in refused.content
    assert session_for(second).offset == MiB
    # Creating, HEAD and completing what needs no more buffering still work.
    assert tus.head(second).status_code == 200


# -- a refused body leaves nothing in S3 ----------------------------------------------


def _sha1(data: bytes) -> str:
    return "sha1 " + base64.b64encode(hashlib.sha1(data).digest()).decode()


def test_a_checksum_mismatch_on_the_first_body_aborts_its_multipart_upload(
    tus: TusClient, s3: S3, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = payload(2 * PART + MiB, seed=12)
    url = tus.new(len(data))
    aborted: list[str] = []
    abort = S3Backend.abort
    monkeypatch.setattr(S3Backend, "abort", lambda self, key, upload_id: aborted.append(upload_id) or abort(
        self, key, upload_id
    ))

    refused = tus.patch(url, data, 0, headers={"Upload-Checksum": _sha1(data + b"x")})

    assert refused.status_code == 460
    session = session_for(url)
    assert (session.offset, session.parts, session.upload_id) == (0, [], "")
    assert len(aborted) == 1 and s3.multipart_uploads(session.key) == []
    assert tus.patch(url, data, 0, headers={"Upload-Checksum": _sha1(data)}).status_code == 204
    assert s3.sha256(session.key) == sha256(data)


def test_a_checksum_mismatch_after_committed_parts_overwrites_its_parts_with_nothing(
    tus: TusClient, s3: S3
) -> None:
    data = payload(4 * PART, seed=14)
    url = tus.new(len(data))
    assert tus.patch(url, data[:PART], 0).status_code == 204
    body = data[PART : 3 * PART + MiB]

    refused = tus.patch(url, body, PART, headers={"Upload-Checksum": _sha1(body + b"x")})

    assert refused.status_code == 460
    session = session_for(url)
    assert (session.offset, len(session.parts)) == (PART, 1)
    listed = s3.client.list_parts(Bucket=s3.bucket, Key=session.key, UploadId=session.upload_id)["Parts"]
    # Parts 2 and 3 were uploaded again, empty (S3 replaces a part so; SeaweedFS also lists the old one).
    assert {(p["PartNumber"], p["Size"]) for p in listed} >= {(1, PART), (2, 0), (3, 0)}, listed
    assert tus.patch(url, data[PART:], PART).status_code == 204
    assert s3.sha256(session.key) == sha256(data)


# -- the database going away ---------------------------------------------------------


def test_a_lost_database_connection_is_a_503_with_a_reason(
    tus: TusClient, s3: S3, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = payload(PART + MiB, seed=13)
    url = tus.new(len(data))
    commit = Lease.commit
    failures = [OperationalError("server closed the connection unexpectedly")]

    def lost(self: Lease, session: Any, **fields: Any) -> None:
        if failures:
            raise failures.pop()
        commit(self, session, **fields)

    monkeypatch.setattr(Lease, "commit", lost)

    answer = tus.patch(url, data, 0)

    assert answer.status_code == 503 and b"database_unavailable" in answer.content
    assert answer["Retry-After"] == "1"
    offset = int(tus.head(url)["Upload-Offset"])
    assert tus.patch(url, data[offset:], offset).status_code == 204
    assert s3.sha256(session_for(url).key) == sha256(data)
