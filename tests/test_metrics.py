"""Prometheus metrics: after real uploads, the scrape's counts are what
happened, in this process and across the worker processes of a gunicorn
node and of a uvicorn node (prometheus_client's multiprocess mode)."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import pytest
import requests
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from .cluster import Cluster, create, open_patch, patch, session_id_of, wait_until
from .conftest import PART, S3, MiB, TusClient, payload, session_for, sha256

pytestmark = pytest.mark.django_db(transaction=True)


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _scrape(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


COUNTS = (
    ("rindle_tus_uploads_created_total", {}),
    ("rindle_tus_uploads_finished_total", {}),
    ("rindle_tus_uploads_terminated_total", {}),
    ("rindle_tus_received_bytes_total", {}),
    ("rindle_tus_requests_total", {"method": "PATCH", "status": "204"}),
    ("rindle_tus_requests_total", {"method": "PATCH", "status": "409"}),
    ("rindle_tus_errors_total", {"code": "offset_mismatch"}),
    ("rindle_tus_s3_request_duration_seconds_count", {"operation": "UploadPart", "outcome": "ok"}),
    ("rindle_tus_s3_request_duration_seconds_count", {"operation": "CompleteMultipartUpload", "outcome": "ok"}),
    ("rindle_tus_part_commit_duration_seconds_count", {}),
    ("rindle_tus_active_patches", {}),
)


def test_the_counts_of_this_process_are_what_the_uploads_did(tus: TusClient, s3: S3, settings: Any) -> None:
    # Each PATCH commits its part before it answers: with write-behind, when the
    # next request commits it depends on S3's pace, and so the commit count.
    settings.RINDLE_TUS_WRITE_BEHIND = 0
    before = {(n, tuple(sorted(labels.items()))): _value(n, **labels) for n, labels in COUNTS}
    data = payload(2 * PART + 1000, seed=31)
    url = tus.upload(data, chunk=PART + 10)  # three PATCHes, two parts and the tail
    assert s3.sha256(session_for(url).key) == sha256(data)
    assert tus.patch(url, b"x", 5).status_code == 409
    other = tus.new(100)
    assert tus.delete(other).status_code == 204
    after = {(n, tuple(sorted(labels.items()))): _value(n, **labels) for n, labels in COUNTS}
    delta = {name + str(dict(labels)): after[(name, labels)] - before[(name, labels)] for name, labels in after}
    assert delta == {
        "rindle_tus_uploads_created_total{}": 2,
        "rindle_tus_uploads_finished_total{}": 1,
        "rindle_tus_uploads_terminated_total{}": 1,
        "rindle_tus_received_bytes_total{}": len(data),
        "rindle_tus_requests_total{'method': 'PATCH', 'status': '204'}": 3,
        "rindle_tus_requests_total{'method': 'PATCH', 'status': '409'}": 1,
        "rindle_tus_errors_total{'code': 'offset_mismatch'}": 1,
        "rindle_tus_s3_request_duration_seconds_count{'operation': 'UploadPart', 'outcome': 'ok'}": 3,
        "rindle_tus_s3_request_duration_seconds_count{'operation': 'CompleteMultipartUpload', 'outcome': 'ok'}": 1,
        "rindle_tus_part_commit_duration_seconds_count{}": 2,
        "rindle_tus_active_patches{}": 0,
    }


def test_the_view_serves_the_exposition(tus: TusClient, client: Any) -> None:
    tus.new(10)
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    scraped = _scrape(response.content.decode())
    assert scraped[("rindle_tus_uploads_created_total", ())] >= 1


def test_the_example_serves_metrics_to_this_machine_and_staff_only(client: Any, db: None) -> None:
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.9").status_code == 403


def test_a_killed_uvicorn_worker_stops_counting_the_body_it_was_reading(nodes: Cluster) -> None:
    """uvicorn has no hook for a worker that dies: the scrape itself forgets
    the live gauges of processes that are gone."""
    node = nodes["node-u"]

    def active() -> float:
        response = requests.get(f"{node.url}/metrics", timeout=30)
        assert response.status_code == 200, response.text
        return _scrape(response.text).get(("rindle_tus_active_patches", ()), 0.0)

    data = payload(3 * MiB, seed=47)
    url = create(node.files_url, len(data))
    session_id = session_id_of(url)
    request = open_patch(url, 0, len(data))
    request.send(data[:MiB])
    row = wait_until(lambda: (r := nodes.row(session_id))["lease_holder"] and r, 30, "the PATCH to take the lease")
    wait_until(lambda: active() >= 1, 30, "the body to count as active")
    os.kill(node.holder_pid(row), signal.SIGKILL)
    request.close()
    wait_until(lambda: active() == 0, 30, "the killed worker's body to stop counting")
    # The upload goes on from what the row kept.
    offset = int(requests.head(url, headers={"Tus-Resumable": "1.0.0"}, timeout=30).headers["Upload-Offset"])
    assert patch(url, data[offset:], offset).status_code == 204
    nodes.assert_complete(session_id, data)


@pytest.mark.parametrize("node_name", ["node-a", "node-u"], ids=["gunicorn", "uvicorn"])
def test_a_nodes_scrape_adds_up_every_worker(nodes: Cluster, node_name: str) -> None:
    node = nodes[node_name]

    def scrape() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        response = requests.get(f"{node.url}/metrics", timeout=30)
        assert response.status_code == 200, response.text
        return _scrape(response.text)

    # A body an earlier test left half-open on this node (its client's side
    # reset) is still being read until the body timeout ends it.
    deadline = time.monotonic() + 90
    while scrape().get(("rindle_tus_active_patches", ()), 0.0) and time.monotonic() < deadline:
        time.sleep(0.5)
    before = scrape()
    assert before.get(("rindle_tus_active_patches", ()), 0.0) == 0
    sizes = [PART + 17, 1000, 2 * PART, 5, 12345, PART - 1]
    sent = 0
    # Separate connections, so the requests spread over the node's two workers.
    for i, size in enumerate(sizes):
        data = payload(size, seed=40 + i)
        url = create(node.files_url, size)
        assert patch(url, data, 0).status_code == 204
        sent += size
        row = nodes.row(url.rsplit("/", 1)[-1])
        assert nodes.object_sha256(row["key"]) == sha256(data)
    stale = create(node.files_url, 10)
    assert patch(stale, b"x", 3).status_code == 409
    after = scrape()

    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert delta("rindle_tus_uploads_created_total") == len(sizes) + 1
    assert delta("rindle_tus_errors_total", code="offset_mismatch") == 1
    assert delta("rindle_tus_uploads_finished_total") == len(sizes)
    assert delta("rindle_tus_received_bytes_total") == sent
    assert delta("rindle_tus_requests_total", method="PATCH", status="204") == len(sizes)
    assert delta("rindle_tus_requests_total", method="POST", status="201") == len(sizes) + 1
    assert after.get(("rindle_tus_active_patches", ()), 0.0) == 0
    pids = {dict(labels).get("pid") for (name, labels) in after if name == "rindle_tus_active_patches"}
    assert pids <= {None}  # livesum: one figure for the node, not one per worker


def test_failed_s3_calls_are_timed_as_errors_and_never_fail_the_call_themselves(s3: S3, tail_root: Any) -> None:
    from rindle_tus import metrics
    from rindle_tus.exceptions import StorageError
    from rindle_tus.storage import S3Backend

    head = ("rindle_tus_s3_request_duration_seconds_count", {"operation": "HeadObject", "outcome": "error"})
    before = _value(head[0], **head[1])
    with pytest.raises(StorageError):
        S3Backend().size("tus/no-such-object")  # S3 answers 404
    assert _value(head[0], **head[1]) == before + 1

    # A call that never got an answer (a cut connection) ends with
    # after-call-error, whose arguments are not after-call's.
    context: dict[str, Any] = {}
    metrics._before_call(context=context, model=type("Model", (), {"name": "UploadPart"})())
    failed = ("rindle_tus_s3_request_duration_seconds_count", {"operation": "UploadPart", "outcome": "error"})
    before = _value(failed[0], **failed[1])
    metrics._after_error(context=context, exception=ConnectionError("cut"))
    assert _value(failed[0], **failed[1]) == before + 1


def test_a_method_the_client_makes_up_adds_no_series(tus: TusClient) -> None:
    # X-HTTP-Method-Override is the client's to choose: counted as "other", never a label of its own.
    before = _value("rindle_tus_requests_total", method="other", status="405")
    response = tus.request("POST", "/files/", headers={"X-HTTP-Method-Override": "BREW-42"}, content_type="")
    assert response.status_code == 405
    assert _value("rindle_tus_requests_total", method="other", status="405") == before + 1
    labels = {s.labels.get("method") for f in REGISTRY.collect() for s in f.samples}
    assert "BREW-42" not in labels
