"""A request that outlived its lease never touches what the newer request owns.

A client whose connection hangs retries on a new one; once the old request's
lease lapses the retry takes the upload over. When the old connection finally
closes, the old request must not write the tail: the retry may have replaced
it since (after cutting a part), and an append at the old position would put
other bytes there.

The lease is shortened here (and the old request's reads hang without a
heartbeat to keep it: the test holds it inside a transaction) because the
lapse itself is what is tested.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from rindle_tus.body import Body
from rindle_tus.exceptions import LeaseLost
from rindle_tus.locking import Lease
from rindle_tus.receiver import Receiver
from rindle_tus.storage import S3Backend, tus_tail_path
from rindle_tus.writer import Writer

from .conftest import PART, S3, MiB, TusClient, parts_held, payload, session_for, sha256

LEASE = 0.3


class HangingClient:
    """Sends ``body`` as asked; at read number ``hang_at`` it hangs past the
    lease while ``meanwhile`` runs (the client's retry on a new connection),
    then, with ``hang_up``, ends early (the old connection closes) instead of
    sending the rest."""

    def __init__(self, body: bytes, hang_at: int, hang_up: bool, meanwhile: Callable[[], None]) -> None:
        self.body = body
        self.hang_at = hang_at
        self.hang_up = hang_up
        self.meanwhile = meanwhile
        self.reads = 0

    def read(self, size: int = -1, /) -> bytes:
        self.reads += 1
        if self.reads == self.hang_at:
            time.sleep(LEASE * 2)
            self.meanwhile()
            if self.hang_up:
                return b""
        sent, self.body = self.body[:size], self.body[size:]
        return sent


@pytest.mark.parametrize(
    ("sent", "hang_at", "hang_up"),
    [
        # It sent 512 KiB, hung, and hung up: it would append them to the
        # tail at its old position, inside the tail the retry wrote.
        (512 * 1024, 2, True),
        # It hung before its first byte, then sent a part's worth: it would
        # fill that part with the tail it finds, which the retry replaced.
        (PART + MiB, 1, False),
    ],
    ids=["hung-up-mid-body", "resumed-after-the-retry"],
)
def test_a_request_that_hung_past_its_lease_never_touches_the_newer_tail(
    tus: TusClient, s3: S3, settings: Any, monkeypatch: pytest.MonkeyPatch, sent: int, hang_at: int, hang_up: bool
) -> None:
    settings.RINDLE_TUS_LEASE_SECONDS = LEASE
    data = payload(2 * PART + 3 * MiB, seed=51)
    # Every part S3 receives, from either request, must hold the upload's
    # bytes at its place (the store may keep a part that no commit names, so
    # the final object alone would not show a wrong one).
    upload_part = S3Backend.upload_part
    wrong_parts = []

    def checked(self: S3Backend, key: str, upload_id: str, number: int, body: Any) -> str:
        if bytes(body) != data[(number - 1) * PART : number * PART][: len(body)]:
            wrong_parts.append(number)
        return upload_part(self, key, upload_id, number, body)

    monkeypatch.setattr(S3Backend, "upload_part", checked)
    url = tus.new(len(data))
    assert tus.patch(url, data[:MiB], 0).status_code == 204
    stale = session_for(url)

    def retry() -> None:
        # The retry cuts part 1 and replaces the tail with the 2 MiB after it.
        response = tus.patch(url, data[MiB : PART + 2 * MiB], MiB)
        assert response.status_code == 204, response.content

    body = HangingClient(data[MiB : MiB + sent], hang_at, hang_up, retry)
    declared = 2 * MiB if hang_up else sent
    lease = Lease.acquire(stale.pk)
    with pytest.raises(LeaseLost):
        Receiver(Writer(stale, lease, S3Backend())).receive(Body(body, declared), None)
    lease.release()

    assert wrong_parts == []
    session = session_for(url)
    assert session.offset == PART + 2 * MiB and parts_held(session) == [1]
    assert tus_tail_path(session.pk).read_bytes() == data[PART : PART + 2 * MiB]
    assert tus.patch(url, data[PART + 2 * MiB :], PART + 2 * MiB).status_code == 204
    assert s3.sha256(session.key) == sha256(data)
