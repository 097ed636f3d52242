"""Requests racing on one upload across processes: one holds the lease at a
time, whichever node it reaches; a newer request takes the upload over from
an older one (which keeps what it received, unless the newer one resends it),
and no interleaving corrupts the object or lets two overlapping PATCHes both
succeed."""

from __future__ import annotations

import itertools
import random
import threading
from collections import Counter

import pytest

from .cluster import PART, Cluster, MiB, create, head, open_patch, patch, session_id_of, wait_until
from .conftest import payload

pytestmark = pytest.mark.slow


def test_a_second_patch_from_where_a_paused_one_started_takes_it_over_and_it_keeps_nothing(nodes: Cluster) -> None:
    a, b = nodes["node-a"], nodes["node-b"]
    data = payload(PART + 2 * MiB, seed=31)
    url = create(a.files_url, len(data))
    session_id = session_id_of(url)

    first = open_patch(url, 0, 3 * MiB)
    first.send(data[:MiB])
    wait_until(lambda: nodes.row(session_id)["lease_token"], 30, "the first PATCH to take the lease")
    # The second client believes nothing arrived yet and resends from 0 on
    # another node: the same bytes, so the first (which has stored nothing)
    # keeps nothing and the second takes the upload over from 0.
    second = patch(b.upload_url(session_id), data[:MiB], 0)
    interrupted = first.response()

    assert second.status_code == 204, second.text
    assert second.headers["Upload-Offset"] == str(MiB)
    assert interrupted.status_code == 400 and b"upload_interrupted" in interrupted.body
    assert nodes.row(session_id)["lease_token"] == ""
    assert nodes.row(session_id)["tail_node"] == "node-b"
    assert not a.tail_path(session_id).exists()
    # Its tail is on node-b's disk now: the upload resumes there.
    assert patch(b.upload_url(session_id), data[MiB:], MiB).status_code == 204
    nodes.assert_complete(session_id, data)


def test_a_stale_patch_is_refused_without_disturbing_the_one_streaming(nodes: Cluster) -> None:
    data = payload(4 * PART, seed=32)
    url = create(nodes["node-a"].files_url, len(data))
    session_id = session_id_of(url)

    first = open_patch(url, 0, len(data))
    first.send(data[: 3 * PART + MiB])
    wait_until(lambda: nodes.row(session_id)["parts"], 60, "the first part to be committed")
    holder = nodes.row(session_id)["lease_token"]
    stale = patch(url, data[:MiB], 0)

    assert stale.status_code == 409 and "offset_mismatch" in stale.text
    # A refusal on the offset comes before the lease: the holder was not asked to hand over.
    assert nodes.row(session_id)["lease_token"] == holder
    first.send(data[3 * PART + MiB :])
    assert first.response().status_code == 204
    nodes.assert_complete(session_id, data)


def test_racing_clients_that_follow_the_protocol_produce_one_exact_object(nodes: Cluster) -> None:
    """Four clients push the same bytes at once, each from HEAD's offset, in
    random pieces, on two nodes sharing their tails: each newer request takes
    the upload over (the older answers 400 ``upload_interrupted``) or finds it
    moved on (409); the object is exact."""
    s1, s2 = nodes["node-s1"], nodes["node-s2"]
    data = payload(3 * PART + 777, seed=33)
    url = create(s1.files_url, len(data))
    session_id = session_id_of(url)
    urls = [url, s2.upload_url(session_id)]
    statuses: Counter[int] = Counter()
    stored: list[tuple[int, int]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def client(seed: int) -> None:
        rng = random.Random(seed)
        mine = urls[seed % 2]
        try:
            while True:
                offset = int(head(mine).headers["Upload-Offset"])
                if offset == len(data):
                    return
                size = rng.choice([1, MiB, PART - 1, PART, PART + 1, 2 * MiB + rng.randrange(MiB)])
                response = patch(mine, data[offset : offset + size], offset)
                with lock:
                    statuses[response.status_code] += 1
                    if response.status_code == 204:
                        stored.append((offset, int(response.headers["Upload-Offset"])))
                assert response.status_code in (204, 400, 409, 423), response.text
                if response.status_code == 400:
                    assert "upload_interrupted" in response.text
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []

    # No two requests that succeeded stored the same bytes (an interrupted one
    # keeps what it received, so the ranges need not tile the upload).
    stored.sort()
    assert all(end <= start for (_, end), (start, _) in itertools.pairwise(stored)), stored
    assert stored[-1][1] == len(data)
    nodes.assert_complete(session_id, data)
