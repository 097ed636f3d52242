"""A request that outlived its lease never touches what the newer request owns.

A client whose connection hangs retries on a new one; once the old request's
lease lapses the retry takes the upload over. When the old connection finally
closes, the old request must not write the tail: the retry may have replaced
it since (after cutting a part), and an append at the old position would put
other bytes there.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from rindle_tus.exceptions import LeaseLost
from rindle_tus.locking import Lease
from rindle_tus.receiver import Receiver
from rindle_tus.storage import S3Backend, tus_tail_path

from .conftest import PART, S3, MiB, TusClient, payload, session_for, sha256

LEASE = 0.3


class HangingClient:
    """A body that sends ``first``, hangs past the lease while ``meanwhile``
    runs (the client's retry), then ends early (the old connection closes)."""

    def __init__(self, first: bytes, meanwhile: Any) -> None:
        self.first = first
        self.meanwhile = meanwhile
        self.reads = 0

    def read(self, size: int = -1, /) -> bytes:
        self.reads += 1
        if self.reads == 1:
            return self.first
        time.sleep(LEASE * 2)
        self.meanwhile()
        return b""


def test_a_request_that_hung_past_its_lease_never_writes_the_tail(tus: TusClient, s3: S3, settings: Any) -> None:
    settings.RINDLE_TUS_LEASE_SECONDS = LEASE
    data = payload(PART + 3 * MiB, seed=51)
    url = tus.new(len(data))
    assert tus.patch(url, data[:MiB], 0).status_code == 204
    stale = session_for(url)

    def retry() -> None:
        # The retry cuts part 1 and replaces the tail with the 2 MiB after it.
        response = tus.patch(url, data[MiB : PART + 2 * MiB], MiB)
        assert response.status_code == 204, response.content

    body = HangingClient(data[MiB : MiB + 512 * 1024], retry)
    with pytest.raises(LeaseLost):
        Receiver(stale, Lease.acquire(stale.pk), S3Backend()).receive(body, 2 * MiB, None)

    session = session_for(url)
    assert session.offset == PART + 2 * MiB and len(session.parts) == 1
    assert tus_tail_path(session.pk).read_bytes() == data[PART : PART + 2 * MiB]
    assert tus.patch(url, data[PART + 2 * MiB :], PART + 2 * MiB).status_code == 204
    assert s3.sha256(session.key) == sha256(data)


def test_a_request_that_hung_past_its_lease_never_reads_a_replaced_tail(
    tus: TusClient, s3: S3, settings: Any
) -> None:
    # The old request would fill its first part with the tail it finds on
    # disk; after the retry replaced it, those are other bytes.
    settings.RINDLE_TUS_LEASE_SECONDS = LEASE
    data = payload(2 * PART + 3 * MiB, seed=52)
    url = tus.new(len(data))
    assert tus.patch(url, data[:MiB], 0).status_code == 204
    stale = session_for(url)

    def retry() -> None:
        response = tus.patch(url, data[MiB : PART + 2 * MiB], MiB)
        assert response.status_code == 204, response.content

    class HangsThenSendsTheRest(HangingClient):
        def read(self, size: int = -1, /) -> bytes:
            self.reads += 1
            if self.reads == 1:
                time.sleep(LEASE * 2)
                self.meanwhile()
            sent = self.first[:size]
            self.first = self.first[size:]
            return sent

    body = HangsThenSendsTheRest(data[MiB : PART + 2 * MiB], retry)
    with pytest.raises(LeaseLost):
        Receiver(stale, Lease.acquire(stale.pk), S3Backend()).receive(body, PART + MiB, None)

    session = session_for(url)
    assert session.offset == PART + 2 * MiB and len(session.parts) == 1
    assert tus_tail_path(session.pk).read_bytes() == data[PART : PART + 2 * MiB]
    assert tus.patch(url, data[PART + 2 * MiB :], PART + 2 * MiB).status_code == 204
    assert s3.sha256(session.key) == sha256(data)
