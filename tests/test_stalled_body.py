"""The stalled-body rule, on the live (threaded, in-process) test server.

These tests shorten ``RINDLE_TUS_BODY_TIMEOUT`` because they test that rule
itself: a PATCH whose body stops arriving, or trickles in slower than
``RINDLE_TUS_BODY_MIN_RATE``, is ended with 503 ``body_stalled``; what arrived
is kept, the lease is released and the request's thread is free again.
"""

from __future__ import annotations

import select
import time
from pathlib import Path
from typing import Any

from .cluster import create, head, offset_of, open_patch, patch
from .conftest import PART, S3, MiB, parts_held, payload, session_for, sha256


def test_a_body_that_stops_arriving_is_ended_and_what_arrived_is_kept(
    live_tus: str, s3: S3, settings: Any, tail_root: Path
) -> None:
    settings.RINDLE_TUS_BODY_TIMEOUT = 1
    data = payload(PART + 2 * MiB, seed=81)
    url = create(live_tus, len(data))
    request = open_patch(url, 0, len(data))
    request.send(data[: PART + 123])

    answer = request.response()

    assert answer.status_code == 503, answer
    assert b"body_stalled" in answer.body and answer.headers["retry-after"] == "1"
    session = session_for(url)
    assert (session.offset, parts_held(session), session.lease_token) == (PART + 123, [1], "")
    assert patch(url, data[PART + 123 :], PART + 123).status_code == 204
    assert s3.sha256(session_for(url).key) == sha256(data)


def test_a_body_slower_than_the_minimum_rate_is_ended(live_tus: str, s3: S3, settings: Any, tail_root: Path) -> None:
    settings.RINDLE_TUS_BODY_TIMEOUT = 1
    settings.RINDLE_TUS_BODY_MIN_RATE = 64 * 1024
    data = payload(2 * MiB, seed=82)
    url = create(live_tus, len(data))
    request = open_patch(url, 0, len(data))
    # About 20 KB/s, until the server answers: never silent for a second,
    # but far below the minimum.
    sent = 0
    while sent < len(data) and not select.select([request.sock], [], [], 0.05)[0]:
        request.send(data[sent : sent + 1024])
        sent += 1024

    answer = request.response()

    assert answer.status_code == 503 and b"slower than" in answer.body, answer
    kept = offset_of(url)
    assert 0 < kept <= sent
    assert session_for(url).lease_token == ""
    assert patch(url, data[kept:], kept).status_code == 204
    assert s3.sha256(session_for(url).key) == sha256(data)


def test_a_head_takes_a_stalled_patch_over_on_the_test_server(live_tus: str, s3: S3, tail_root: Path) -> None:
    """Django's own servers expose the client's socket too: the handover ends
    the blocked read there as under gunicorn, without any timeout."""
    data = payload(PART + MiB, seed=83)
    url = create(live_tus, len(data))
    request = open_patch(url, 0, len(data))
    request.send(data[: 2 * MiB])
    while not session_for(url).lease_token:
        time.sleep(0.05)

    answer = head(url)

    assert answer.status_code == 200 and answer.headers["Upload-Offset"] == str(2 * MiB)
    interrupted = request.response()
    assert interrupted.status_code == 400 and b"upload_interrupted" in interrupted.body
    assert patch(url, data[2 * MiB :], 2 * MiB).status_code == 204
    assert s3.sha256(session_for(url).key) == sha256(data)
