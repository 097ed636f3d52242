"""The lease handover in a real cluster: a PATCH whose client went silent
(its connection left open, as a phone changing networks leaves it) holds the
upload until a newer request for it arrives, on any node; the silent one then
stops, keeps what it received and releases, and the newer one proceeds.
A holder that died (SIGKILL) frees the upload as fast.

Every node runs the default lease settings; every resume is one HEAD and one
PATCH, with no retry.
"""

from __future__ import annotations

import os
import signal

import pytest
import requests

from .cluster import (
    BUCKET,
    HTTP_TIMEOUT,
    PART,
    TUS,
    Cluster,
    MiB,
    RawRequest,
    StickyProxy,
    create,
    head,
    offset_of,
    open_patch,
    patch,
    resume,
    session_id_of,
    wait_until,
)
from .conftest import payload

pytestmark = pytest.mark.slow


def stall(nodes: Cluster, url: str, data: bytes, sent: int, parts: int) -> RawRequest:
    """A PATCH of all of ``data`` that sends ``sent`` bytes and then goes
    silent, once S3 holds ``parts`` parts of it (so the server has read that
    far; the rest of what was sent is in its socket's buffer)."""
    request = open_patch(url, 0, len(data))
    request.send(data[:sent])
    session_id = session_id_of(url)

    def uploaded() -> bool:
        row = nodes.row(session_id)
        if not row["upload_id"]:
            return parts == 0
        listed = nodes.s3.list_parts(Bucket=BUCKET, Key=row["key"], UploadId=row["upload_id"])
        return len(listed.get("Parts", [])) >= parts

    wait_until(lambda: nodes.row(session_id)["lease_token"], 30, "the PATCH to take the lease")
    wait_until(uploaded, 60, f"{parts} parts to reach S3")
    return request


def assert_handed_over(nodes: Cluster, session_id: str, stalled: RawRequest) -> None:
    """The silent request stopped because it was asked to, and let go."""
    answer = stalled.response()
    assert answer.status_code == 400 and b"upload_interrupted" in answer.body, answer
    assert nodes.row(session_id)["lease_token"] == ""


@pytest.mark.parametrize("node_name", ["node-a", "node-y"], ids=["gthread", "sync"])
def test_head_during_a_stalled_patch_answers_what_it_received(nodes: Cluster, node_name: str) -> None:
    node = nodes[node_name]
    data = payload(2 * PART + 3 * MiB, seed=71)
    url = create(node.files_url, len(data))
    session_id = session_id_of(url)
    stalled = stall(nodes, url, data, PART + MiB, parts=1)

    answer = head(url)

    assert answer.status_code == 200
    # Every byte it received, not only the part committed before the HEAD.
    assert answer.headers["Upload-Offset"] == str(PART + MiB)
    assert_handed_over(nodes, session_id, stalled)
    assert node.tail_path(session_id).read_bytes() == data[PART : PART + MiB]
    assert resume(url, data).status_code == 204
    nodes.assert_complete(session_id, data)


def test_a_resend_from_where_a_stalled_patch_started_takes_over_and_it_keeps_nothing(nodes: Cluster) -> None:
    node = nodes["node-a"]
    data = payload(3 * PART + 5, seed=72)
    url = create(node.files_url, len(data))
    session_id = session_id_of(url)
    stalled = stall(nodes, url, data, 2 * MiB + 7, parts=0)

    # A client that skips HEAD and resends from the offset it last saw, where
    # the silent request started: that request has stored nothing yet, and the
    # resend carries the same bytes, so it keeps nothing and the resend goes on.
    first = patch(url, data, 0)

    assert first.status_code == 204, first.text
    assert_handed_over(nodes, session_id, stalled)
    nodes.assert_complete(session_id, data)


def test_delete_during_a_stalled_patch_terminates_it_and_leaves_nothing(nodes: Cluster) -> None:
    node = nodes["node-a"]
    data = payload(3 * PART, seed=73)
    url = create(node.files_url, len(data))
    session_id = session_id_of(url)
    stalled = stall(nodes, url, data, PART + 2 * MiB, parts=1)
    key = nodes.row(session_id)["key"]

    answer = requests.delete(url, headers=TUS, timeout=HTTP_TIMEOUT)

    assert answer.status_code == 204
    assert_handed_over(nodes, session_id, stalled)
    assert nodes.row(session_id)["state"] == "terminated"
    assert nodes.s3.list_multipart_uploads(Bucket=BUCKET, Prefix=key).get("Uploads", []) == []
    assert nodes.s3.list_objects_v2(Bucket=BUCKET, Prefix=key).get("KeyCount") == 0
    assert not node.tail_path(session_id).exists()
    assert head(url).status_code == 410


def test_a_retry_on_another_node_takes_over_with_the_shared_tail_store(nodes: Cluster) -> None:
    s1, s2 = nodes["node-s1"], nodes["node-s2"]
    data = payload(2 * PART + 3 * MiB, seed=74)
    session_id = session_id_of(create(s1.files_url, len(data)))
    stalled = stall(nodes, s1.upload_url(session_id), data, PART + MiB, parts=1)

    assert offset_of(s2.upload_url(session_id)) == PART + MiB
    assert_handed_over(nodes, session_id, stalled)
    assert resume(s2.upload_url(session_id), data).status_code == 204
    nodes.assert_complete(session_id, data)


def test_a_retry_through_the_sticky_proxy_takes_over_the_stalled_request(nodes: Cluster) -> None:
    """With local tails the retry must reach the node holding the tail: the
    sticky proxy routes it there, and that node hands over to it."""
    proxy = StickyProxy([nodes["node-a"], nodes["node-b"], nodes["node-f"]])
    try:
        data = payload(2 * PART + 3 * MiB, seed=75)
        url = create(f"{proxy.url}/files/", len(data))
        session_id = session_id_of(url)
        stalled = stall(nodes, url, data, PART + MiB, parts=1)

        assert offset_of(url) == PART + MiB
        wait_until(lambda: nodes.row(session_id)["lease_token"] == "", 30, "the stalled request to let go")
        assert resume(url, data).status_code == 204
    finally:
        stalled.close()
        proxy.close()
    nodes.assert_complete(session_id, data)
    assert nodes.row(session_id)["tail_node"] == proxy.routes[session_id]


def test_sigkill_of_the_worker_holding_the_patch_frees_the_upload_at_once(nodes: Cluster) -> None:
    """The other worker of the node serves the resume; the dead one's lease is
    recognised as gone (its process no longer runs) instead of lapsing."""
    node = nodes["node-f"]
    data = payload(3 * PART + MiB, seed=76)
    url = create(node.files_url, len(data))
    session_id = session_id_of(url)
    stalled = stall(nodes, url, data, 2 * PART + MiB, parts=1)

    pid = node.holder_pid(nodes.row(session_id))
    os.kill(pid, signal.SIGKILL)
    stalled.close()

    assert node.running
    wait_until(lambda: pid not in node.worker_pids(), 30, "the master to reap the killed worker")
    # Parts that reached S3 while the read was blocked were not committed yet:
    # the client sends them again.
    assert nodes.assert_consistent(session_id, node) in (0, PART, 2 * PART)
    assert resume(url, data).status_code == 204
    nodes.assert_complete(session_id, data)
    # Taken over because the holder was gone, not because its lease lapsed.
    assert f"upload {session_id}: took over the lease of node-f, process {pid}, which is gone" in node.log_text()
