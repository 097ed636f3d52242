"""Real clients of the IETF draft "Resumable Uploads for HTTP" against live
servers: tus-js-client 4.3.1 under Node with ``protocol`` 'ietf-draft-03'
(``Upload-Draft-Interop-Version: 5``) and 'ietf-draft-05' (version 6), on its
own file reader, HTTP stack and default retry delays; and the raw client of
the newest version (8) in ``tests/draft_client.py``. Every upload ends as an
S3 object with exactly the bytes sent, its row completed and recording the
protocol of the request that created it (``TusSession.protocol``).

Interruptions: tus-js-client's network failing once mid-PATCH (``dropAfterBytes``
with ``dropOnce``) in-process; ``ClientRelay`` resetting the client and leaving
the server's side open and silent mid-PATCH on the cluster's gunicorn and
uvicorn nodes, as tests/test_client_faults.py does for tus (the retry's HEAD
must have the cut request hand the upload over); the raw client's connection
closed mid-body; and uploads begun in one protocol and finished in the other.
Nothing here shortens a server setting or retries on a client's behalf.

A quirk of tus-js-client 4.3.1 the server must live with: its Node file
source marks a slice ``done`` only when the slice is the whole file, so a
chunked or resumed upload sends ``Upload-Complete: ?0`` on its last PATCH too
(the response events record ``sentComplete``). The server completes an upload
whose offset reaches the ``Upload-Length`` it was given.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests

from rindle_tus.models import State

from .cluster import OFFSET_TYPE, TUS, Cluster, RawRequest, session_id_of
from .conftest import PART, S3, MiB, payload, session_for, sha256
from .draft_client import PARTIAL_UPLOAD, DraftClient, ProtocolError, Response, parse_sf_boolean, parse_sf_integer
from .relay import ClientRelay
from .test_client_tus_js import ODD_CHUNK, outcome, patches, run_client, write_file

pytestmark = pytest.mark.slow

# tus-js-client's protocol option -> what the row records (its interop version).
TUS_JS_PROTOCOLS = {"ietf-draft-03": "ietf-draft-5", "ietf-draft-05": "ietf-draft-6"}
SIZES = {
    "empty": 0,
    "one-byte": 1,
    "part-minus-one": PART - 1,
    "several-parts": 12 * MiB + 7,
}
CHUNKS = {"one-request": None, "3000000-byte-chunks": ODD_CHUNK}
# Larger than the several parts above, for the interruptions.
SIZE = 4 * PART + 12345
HTTP_TIMEOUT = 120


def responses(events: list[dict[str, Any]], method: str) -> list[dict[str, Any]]:
    return [e for e in events if e["event"] == "response" and e["method"] == method]


def network_retries(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Retries of a request that failed without a response."""
    return [e for e in events if e["event"] == "retry" and e["status"] is None and e["retry"]]


def assert_arrived(s3: S3, url: str, data: bytes, protocol: str) -> Any:
    """The row of ``url`` is completed with ``data`` and says ``protocol``; the S3 object is ``data``."""
    session = session_for(url)
    assert session.state == State.COMPLETED, (session.state, session.offset, session.last_error)
    assert session.offset == len(data)
    assert session.protocol == protocol
    assert s3.sha256(session.key) == sha256(data)
    return session


def cluster_protocol(nodes: Cluster, session_id: str) -> str:
    rows = nodes.database._query("SELECT protocol FROM rindle_tus_tussession WHERE id = ?", (session_id,))
    return str(rows[0][0])


def sent_partially(url: str, headers: dict[str, str], body: bytes, sent: int) -> None:
    """A PATCH announcing all of ``body`` whose connection is closed after ``sent`` bytes of it."""
    request = RawRequest(url, "PATCH", {**headers, "Content-Length": str(len(body))})
    request.send(body[:sent])
    request.close()


def draft_append_headers(offset: int, complete: bool) -> dict[str, str]:
    return {
        "Upload-Draft-Interop-Version": "8",
        "Content-Type": PARTIAL_UPLOAD,
        "Upload-Offset": str(offset),
        "Upload-Complete": "?1" if complete else "?0",
    }


def successes(log: list[Response | BaseException], method: str) -> list[Response]:
    return [r for r in log if isinstance(r, Response) and r.method == method]


# -- tus-js-client, draft protocols --------------------------------------------------------


@pytest.mark.parametrize("chunk_size", list(CHUNKS.values()), ids=list(CHUNKS))
@pytest.mark.parametrize("size", list(SIZES.values()), ids=list(SIZES))
@pytest.mark.parametrize("protocol", list(TUS_JS_PROTOCOLS))
def test_tus_js_client_draft_upload_arrives_whole(live_tus: str, s3: S3, tmp_path: Path, protocol: str, size: int,
                                                  chunk_size: int | None) -> None:
    path, data = write_file(tmp_path, size)
    events = run_client(
        endpoint=live_tus,
        file=str(path),
        chunkSize=chunk_size,
        protocol=protocol,
        metadata={"filename": path.name, "filetype": "application/octet-stream"},
    )
    url = outcome(events)["url"]
    assert_arrived(s3, url, data, TUS_JS_PROTOCOLS[protocol])
    (post,) = responses(events, "POST")
    assert post["status"] == 201 and post["offset"] == 0, post
    expected_patches = 0 if size == 0 else -(-size // (chunk_size or size))
    sent = patches(events)
    assert len(sent) == expected_patches, events
    # Interop versions 5 and 6 answer an append with 201; the last one says the upload is complete.
    assert all(p["status"] == 201 for p in sent), sent
    if sent:
        assert sent[-1]["offset"] == size and sent[-1]["complete"] == "?1", sent[-1]
        # The quirk of the module docstring: a last PATCH that is not the whole file says ?0,
        # so the server completed the upload on reaching its Upload-Length.
        assert sent[-1]["sentComplete"] == ("?1" if len(sent) == 1 else "?0"), sent


@pytest.mark.parametrize("protocol", list(TUS_JS_PROTOCOLS))
def test_tus_js_client_draft_upload_resumes_after_the_network_failed_once(
    live_tus: str, s3: S3, tmp_path: Path, protocol: str
) -> None:
    """The network fails 7 MiB into the one PATCH (the client reads no answer),
    then works again; tus-js-client, on its default retry delays, asks HEAD
    and sends the rest from its offset by itself."""
    path, data = write_file(tmp_path, SIZE, seed=11)
    events = run_client(
        endpoint=live_tus, file=str(path), chunkSize=None, protocol=protocol, dropAfterBytes=7 * MiB, dropOnce=True
    )
    url = outcome(events)["url"]
    assert "PATCH" in network_retries(events)[0]["message"], events
    assert len(responses(events, "POST")) == 1
    heads = [e for e in responses(events, "HEAD") if e["status"] == 204]
    assert heads, events
    # What reached the server was kept, or part of it if the HEAD overtook the cut request.
    assert 0 <= heads[0]["offset"] < 7 * MiB, heads
    print(f"[resume] HEAD answered {heads[0]['offset']} of the < {7 * MiB} bytes sent; events: "
          f"{[(e['method'], e['status'], e['offset']) for e in events if e['event'] == 'response']}")
    assert_arrived(s3, url, data, TUS_JS_PROTOCOLS[protocol])


@pytest.mark.parametrize("after", [MiB, 3 * PART + MiB], ids=["inside-the-first-part", "after-three-parts"])
@pytest.mark.parametrize("name", ["node-a", "node-u"], ids=["gunicorn", "uvicorn"])
@pytest.mark.parametrize("protocol", list(TUS_JS_PROTOCOLS))
def test_tus_js_client_draft_upload_dropped_by_the_relay_completes(
    nodes: Cluster, tmp_path: Path, protocol: str, name: str, after: int
) -> None:
    """As ``test_tus_js_client_one_request_dropped_completes`` for tus: the
    relay resets the client mid-PATCH and leaves the server's side open and
    silent; the client's retry (default delays) asks HEAD, which must have the
    cut request hand the upload over, and goes on from its offset."""
    node = nodes[name]
    path, data = write_file(tmp_path, SIZE, seed=after + 1)
    with ClientRelay(node.port) as relay:
        relay.drop("PATCH", after=after)
        events = run_client(endpoint=f"{relay.url}/files/", file=str(path), chunkSize=None, protocol=protocol)
        relay.wait_dropped(1, timeout=10)
        assert relay.drops == 1

    session_id = session_id_of(outcome(events)["url"])
    assert "PATCH" in network_retries(events)[0]["message"], events
    heads = [int(e["offset"]) for e in responses(events, "HEAD") if e["status"] == 204]
    assert heads and all(0 <= offset <= after for offset in heads), events
    if heads[-1] != after:
        print(f"[kept] {heads[-1]} of the {after} bytes the relay let through")
    assert next(e["method"] for e in events if e["event"] == "response") == "POST"
    nodes.assert_complete(session_id, data)
    assert nodes.row(session_id)["lease_token"] == ""
    assert cluster_protocol(nodes, session_id) == TUS_JS_PROTOCOLS[protocol]


# -- the raw client of interop version 8 ---------------------------------------------------


@pytest.mark.parametrize("chunk_size", list(CHUNKS.values()), ids=list(CHUNKS))
@pytest.mark.parametrize("size", [0, 1, 12 * MiB + 7], ids=["empty", "one-byte", "several-parts"])
def test_draft_client_upload_arrives_whole(live_tus: str, s3: S3, size: int, chunk_size: int | None) -> None:
    data = payload(size, seed=21)
    with DraftClient(live_tus) as client:
        url = client.upload(data, chunk_size, filename="several.bin")
        (post, *appends) = client.log
        assert isinstance(post, Response) and post.method == "POST", client.log
        assert post.status == 201 and post.location == url, post
        first = min(size, chunk_size or size)
        assert post.offset == first and post.complete is (first == size), post
        assert all(isinstance(r, Response) and r.method == "PATCH" and r.status == 204 for r in appends), client.log
        assert len(appends) == (0 if chunk_size is None else -(-max(size - first, 0) // chunk_size))
        state = client.state(url)
    assert (state.offset, state.complete) == (size, True)
    assert state.length in (None, size)
    assert_arrived(s3, url, data, "ietf-draft-8")


def test_draft_client_cancel(live_tus: str, s3: S3) -> None:
    data = payload(PART + MiB, seed=22)
    with DraftClient(live_tus) as client:
        created = client.create(data[:MiB], complete=False, length=len(data))
        assert created.status == 201 and created.location, created
        assert (created.offset, created.complete) == (MiB, False)
        cancelled = client.cancel(created.location)
        assert cancelled.status == 204, cancelled
        gone = client.offset(created.location)
        assert gone.status in (404, 410), gone


def test_draft_client_upload_closed_mid_body_resumes_with_head_and_patch(live_tus: str, s3: S3) -> None:
    """Creation carries 3,000,000 bytes; the append of the rest is closed by the
    client after PART + MiB of them; ``upload`` with the URL asks HEAD and
    appends the rest from the offset it answers."""
    data = payload(SIZE, seed=23)
    sent = PART + MiB
    with DraftClient(live_tus) as client:
        created = client.create(data[:ODD_CHUNK], complete=False, length=len(data))
        assert created.status == 201 and created.location and created.offset == ODD_CHUNK, created
        url = created.location
        sent_partially(url, draft_append_headers(ODD_CHUNK, True), data[ODD_CHUNK:], sent)
        assert client.upload(data, url=url) == url
        head = client.log[0]
        assert isinstance(head, Response) and head.method == "HEAD" and head.status == 204, client.log
        assert head.offset is not None and ODD_CHUNK <= head.offset <= ODD_CHUNK + sent, head
        assert head.complete is False and head.length in (None, len(data)), head
        print(f"[kept] HEAD answered {head.offset - ODD_CHUNK} of the {sent} bytes sent before the close")
        (last,) = successes(client.log, "PATCH")
        assert (last.status, last.offset, last.complete) == (204, len(data), True), last
    assert_arrived(s3, url, data, "ietf-draft-8")


def test_draft_client_resumes_by_itself_after_the_relay_drops_an_append(nodes: Cluster) -> None:
    """``upload`` on its own: the relay resets its first PATCH 2 MiB in and
    leaves the server's side open; the client waits (0 s), asks HEAD (which
    has the cut request hand over) and appends from there."""
    node = nodes["node-a"]
    data = payload(SIZE, seed=24)
    waits: list[float] = []
    with ClientRelay(node.port) as relay:
        relay.drop("PATCH", after=2 * MiB)
        with DraftClient(f"{relay.url}/files/", sleep=lambda s: waits.append(s)) as client:
            url = client.upload(data, PART + MiB)
        relay.wait_dropped(1, timeout=10)
        assert relay.drops == 1
    log = client.log
    failed = next(i for i, entry in enumerate(log) if isinstance(entry, BaseException))
    head = log[failed + 1]
    assert isinstance(head, Response) and head.method == "HEAD" and head.status == 204, log
    assert head.offset is not None and PART + MiB <= head.offset <= PART + 3 * MiB, head
    assert waits[0] == 0, waits
    print(f"[resume] waits {waits}; log: {log}")
    session_id = session_id_of(url)
    nodes.assert_complete(session_id, data)
    assert cluster_protocol(nodes, session_id) == "ietf-draft-8"


# -- one protocol, then the other ------------------------------------------------------------


# uvicorn left out as in test_client_tus_js.py: the driver's drop ends only the
# sending side, which uvicorn does not tell the app of.
@pytest.mark.parametrize("live_tus", ["wsgi", "hypercorn", "granian"], indirect=True)
def test_upload_created_by_tus_is_finished_by_the_draft_client(live_tus: str, s3: S3, tmp_path: Path) -> None:
    path, data = write_file(tmp_path, SIZE, seed=25)
    # tus-js-client on its default protocol; the network fails 7 MiB in and it gives up.
    first = run_client(endpoint=live_tus, file=str(path), chunkSize=None, dropAfterBytes=7 * MiB, retryDelays=None)
    dropped = first[-1]
    assert dropped["event"] == "error", dropped
    url = dropped["url"]
    with DraftClient(live_tus) as client:
        assert client.upload(data, url=url) == url
        head = client.log[0]
        assert isinstance(head, Response) and head.method == "HEAD" and head.status == 204, client.log
        assert head.offset is not None and 0 <= head.offset < 7 * MiB and head.complete is False, head
        assert head.length == len(data), head
    assert_arrived(s3, url, data, "tus")


def test_upload_created_by_the_draft_client_is_finished_by_tus(live_tus: str, s3: S3) -> None:
    data = payload(SIZE, seed=26)
    with DraftClient(live_tus) as client:
        created = client.create(data[:ODD_CHUNK], complete=False, length=len(data))
    assert created.status == 201 and created.location, created
    url = created.location
    sent_partially(url, draft_append_headers(ODD_CHUNK, True), data[ODD_CHUNK:], PART)
    head = requests.head(url, headers=TUS, timeout=HTTP_TIMEOUT)
    assert head.status_code == 200, head.text
    assert head.headers["Upload-Length"] == str(len(data))
    offset = int(head.headers["Upload-Offset"])
    assert ODD_CHUNK <= offset <= ODD_CHUNK + PART
    done = requests.patch(url, data=data[offset:], timeout=HTTP_TIMEOUT,
                          headers={**TUS, "Upload-Offset": str(offset), "Content-Type": OFFSET_TYPE})
    assert done.status_code == 204, done.text
    assert done.headers["Upload-Offset"] == str(len(data))
    assert_arrived(s3, url, data, "ietf-draft-8")


# -- the raw client's Structured Field parsing (no server) -----------------------------------


@pytest.mark.parametrize(("value", "expected"), [("0", 0), ("12582919", 12582919), (" 7 ", 7), ("7;a=1;b", 7),
                                                 ("-3", -3), ('5;x="y"', 5)])
def test_draft_client_parses_sf_integer(value: str, expected: int) -> None:
    assert parse_sf_integer(value) == expected


@pytest.mark.parametrize("value", ["", "5.0", "5, 6", "abc", "+5", "1234567890123456", "5;A=1", "?1", "5 x"])
def test_draft_client_refuses_what_is_no_sf_integer(value: str) -> None:
    with pytest.raises(ProtocolError):
        parse_sf_integer(value)


@pytest.mark.parametrize(("value", "expected"), [("?1", True), ("?0", False), ("?1;p=2", True), (" ?0", False)])
def test_draft_client_parses_sf_boolean(value: str, expected: bool) -> None:
    assert parse_sf_boolean(value) is expected


@pytest.mark.parametrize("value", ["", "1", "0", "true", "?2", "?1, ?0", "?"])
def test_draft_client_refuses_what_is_no_sf_boolean(value: str) -> None:
    with pytest.raises(ProtocolError):
        parse_sf_boolean(value)
