"""Clients racing on one upload across processes: the lease in the row lets
one request write at a time, whichever node it reaches."""

from __future__ import annotations

import random
import threading
from collections import Counter

import pytest

from .cluster import PART, Cluster, MiB, create, head, open_patch, patch, session_id_of, wait_until
from .conftest import payload

pytestmark = pytest.mark.slow


def test_second_patch_while_the_first_streams_is_locked(nodes: Cluster) -> None:
    a, b = nodes["node-a"], nodes["node-b"]
    data = payload(PART + 2 * MiB, seed=31)
    url = create(a.files_url, len(data))
    session_id = session_id_of(url)

    first = open_patch(url, 0, 3 * MiB)
    first.send(data[:MiB])
    wait_until(lambda: nodes.row(session_id)["lease_token"], 30, "the first PATCH to take the lease")
    same_node = patch(url, data[:MiB], 0)
    other_node = patch(b.upload_url(session_id), data[:MiB], 0)
    first.send(data[MiB : 3 * MiB])
    answer = first.response()

    assert same_node.status_code == 423 and "locked" in same_node.text
    assert other_node.status_code == 423 and "locked" in other_node.text
    assert answer.status_code == 204 and answer.headers["upload-offset"] == str(3 * MiB)
    assert patch(url, data[3 * MiB :], 3 * MiB).status_code == 204
    nodes.assert_complete(session_id, data)


def test_second_patch_after_the_first_committed_a_part_is_a_conflict(nodes: Cluster) -> None:
    data = payload(4 * PART, seed=32)
    url = create(nodes["node-a"].files_url, len(data))
    session_id = session_id_of(url)

    first = open_patch(url, 0, len(data))
    first.send(data[: 3 * PART + MiB])
    wait_until(lambda: nodes.row(session_id)["parts"], 60, "the first part to be committed")
    stale = patch(url, data[:MiB], 0)
    for _ in range(3):
        # A second part may commit just after the first: then ask again.
        committed = nodes.row(session_id)["offset"]
        current = patch(url, data[committed : committed + MiB], committed)
        if current.status_code != 409 or nodes.row(session_id)["offset"] == committed:
            break
    first.send(data[3 * PART + MiB :])
    answer = first.response()

    assert stale.status_code == 409 and "offset_mismatch" in stale.text
    assert current.status_code == 423 and "locked" in current.text
    assert answer.status_code == 204
    nodes.assert_complete(session_id, data)


def test_racing_clients_that_follow_the_protocol_produce_one_exact_object(nodes: Cluster) -> None:
    """Four clients push the same bytes at once, each from HEAD's offset, in
    random pieces: all but one are refused at every step, the object is exact."""
    data = payload(3 * PART + 777, seed=33)
    url = create(nodes["node-a"].files_url, len(data))
    session_id = session_id_of(url)
    statuses: Counter[int] = Counter()
    errors: list[BaseException] = []
    lock = threading.Lock()

    def client(seed: int) -> None:
        rng = random.Random(seed)
        try:
            while True:
                offset = int(head(url).headers["Upload-Offset"])
                if offset == len(data):
                    return
                size = rng.choice([1, MiB, PART - 1, PART, PART + 1, 2 * MiB + rng.randrange(MiB)])
                response = patch(url, data[offset : offset + size], offset)
                with lock:
                    statuses[response.status_code] += 1
                assert response.status_code in (204, 409, 423), response.text
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []

    assert statuses[204] >= 1
    assert set(statuses) <= {204, 409, 423}
    nodes.assert_complete(session_id, data)
