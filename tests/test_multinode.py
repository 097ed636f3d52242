"""Several app server processes behind one database and one S3: a resume that
reaches the wrong node fails loudly and harms nothing; sticky routing works.

The ``tail_missing`` signal is sent inside the refusing process, so it is
tested in-process elsewhere; here the refusal is observed over HTTP, in the
node's log and in the stored state.
"""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor

import pytest
from tusclient import client as tus_client

from .cluster import (
    PART,
    Cluster,
    MiB,
    StickyProxy,
    create,
    patch,
    resume,
    session_id_of,
    upload_id_of,
    wait_until,
)
from .conftest import payload

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    "first",
    [
        pytest.param(MiB, id="tail-only"),
        pytest.param(PART, id="part-boundary"),
        pytest.param(PART + MiB, id="part-and-tail"),
    ],
)
def test_resume_on_another_node_is_refused_with_tus_tail_missing(nodes: Cluster, first: int) -> None:
    a, b = nodes["node-a"], nodes["node-b"]
    data = payload(2 * PART + 3 * MiB, seed=first)
    url_a = create(a.files_url, len(data))
    session_id = session_id_of(url_a)
    assert patch(url_a, data[:first], 0).status_code == 204
    before = nodes.row(session_id)
    tail_before = a.tail_path(session_id).read_bytes()
    assert before["offset"] == first and before["tail_node"] == "node-a"
    # Whole parts are committed, or (write-behind) still wait in part files on node-a.
    owed = (first - len(before["parts"]) * PART) // PART
    assert len(before["parts"]) + owed == first // PART
    assert tail_before[: first % PART] == data[first - first % PART : first]

    refused = patch(b.upload_url(session_id), data[first:], first)

    assert refused.status_code == 503
    assert "tus_tail_missing" in refused.text
    assert session_id in refused.text
    line = f"tus_tail_missing: session={session_id} node=node-b tail_node=node-a"
    wait_until(lambda: line in b.log_text(), 10, "node-b to log the refusal")
    after = nodes.row(session_id)
    assert (after["offset"], after["parts"], after["upload_id"], after["tail_node"]) == (
        before["offset"], before["parts"], before["upload_id"], before["tail_node"]
    )
    assert after["lease_token"] == ""
    assert a.tail_path(session_id).read_bytes() == tail_before
    assert not b.tail_path(session_id).exists()

    assert resume(url_a, data).status_code == 204
    nodes.assert_complete(session_id, data)


def test_sticky_proxy_completes_uploads_across_nodes_byte_exact(nodes: Cluster) -> None:
    proxy = StickyProxy([nodes["node-a"], nodes["node-b"], nodes["node-f"]])
    sizes = [1, PART - 1, PART, PART + 1, 2 * PART + 123, 2 * MiB + 17, 3 * MiB, 7 * MiB, 11 * MiB]
    datas = [payload(size, seed=100 + i) for i, size in enumerate(sizes)]

    def upload(data: bytes) -> str:
        client = tus_client.TusClient(f"{proxy.url}/files/")
        uploader = client.uploader(file_stream=io.BytesIO(data), chunk_size=2 * MiB + 17,
                                   metadata={"filename": "sticky.bin"})
        uploader.upload()
        return str(uploader.url)

    try:
        with ThreadPoolExecutor(max_workers=3) as pool:
            urls = list(pool.map(upload, datas))
    finally:
        proxy.close()

    for url, data in zip(urls, datas, strict=True):
        assert url.startswith(proxy.url)
        session_id = session_id_of(url)
        nodes.assert_complete(session_id, data)
        if len(data) > 2 * MiB + 17:
            # Every PATCH went to the node the proxy pinned the upload to.
            assert nodes.row(session_id)["tail_node"] == proxy.routes[session_id]
    assert {upload_id_of(u) for u in urls} <= set(proxy.routes)
    # Nine random ids over three nodes: all on one node once in 6,500 runs.
    assert len(set(proxy.routes.values())) >= 2


def test_shared_tail_store_resumes_on_whichever_node_a_patch_reaches(nodes: Cluster) -> None:
    s1, s2 = nodes["node-s1"], nodes["node-s2"]
    data = payload(2 * PART + 3 * MiB + 5, seed=41)
    session_id = session_id_of(create(s1.files_url, len(data)))
    offset, turn = 0, 0
    while offset < len(data):
        node = (s1, s2)[turn % 2]
        response = patch(node.upload_url(session_id), data[offset : offset + 3 * MiB + 1], offset)
        assert response.status_code == 204, response.text
        offset, turn = int(response.headers["Upload-Offset"]), turn + 1
        if offset < len(data):
            assert nodes.tail_size(session_id, s1) >= offset % PART
    assert not s1.tail_path(session_id).exists() and not s2.tail_path(session_id).exists()
    nodes.assert_complete(session_id, data)
