"""tus-js-client, run by Node.js with its own file reader and HTTP stack,
against a live server: every upload ends as an S3 object with the sent bytes."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from rindle_tus.models import State

from .conftest import PART, S3, MiB, payload, service_unavailable, session_for, sha256

CLIENTS = Path(__file__).parent / "clients"
SCRIPT = CLIENTS / "upload.mjs"
# Does not divide the 5 MiB part size, so parts and requests never line up.
ODD_CHUNK = 3_000_000
SIZES = {
    "empty": 0,
    "one-byte": 1,
    "part-minus-one": PART - 1,
    "one-part": PART,
    "forty-mib": 40 * MiB + 7,
}

pytestmark = pytest.mark.slow


def run_client(**options: Any) -> list[dict[str, Any]]:
    """Run upload.mjs once; return its events. Without a ``retryDelays`` option
    the client retries on tus-js-client's default delays."""
    node = shutil.which("node")
    if node is None:
        service_unavailable("Node.js is not installed")
    if not (CLIENTS / "node_modules" / "tus-js-client").is_dir():
        service_unavailable("tus-js-client is not installed: run `npm ci` in tests/clients")
    done = subprocess.run(
        [str(node), str(SCRIPT), json.dumps(options)],
        cwd=CLIENTS,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert events, f"no events; exit {done.returncode}; stderr:\n{done.stderr}"
    return events


def outcome(events: list[dict[str, Any]]) -> dict[str, Any]:
    last = events[-1]
    assert last["event"] == "success", last
    return last


def write_file(tmp_path: Path, size: int, seed: int = 0) -> tuple[Path, bytes]:
    data = payload(size, seed)
    path = tmp_path / f"upload-{size}.bin"
    path.write_bytes(data)
    return path, data


def patches(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e["event"] == "response" and e["method"] == "PATCH"]


@pytest.mark.parametrize("chunk_size", [None, ODD_CHUNK], ids=["one-request", "3000000-byte-chunks"])
@pytest.mark.parametrize("size", list(SIZES.values()), ids=list(SIZES))
def test_tus_js_client_upload_arrives_whole(live_tus: str, s3: S3, tmp_path: Path, size: int,
                                            chunk_size: int | None) -> None:
    path, data = write_file(tmp_path, size)
    events = run_client(
        endpoint=live_tus,
        file=str(path),
        chunkSize=chunk_size,
        metadata={"filename": path.name, "filetype": "application/octet-stream"},
    )
    url = outcome(events)["url"]
    session = session_for(url)
    assert session.state == State.COMPLETED
    assert session.offset == size
    assert session.metadata["filename"] == path.name
    expected_patches = 0 if size == 0 else -(-size // (chunk_size or size))
    assert len(patches(events)) == expected_patches
    assert s3.sha256(session.key) == sha256(data)


# uvicorn is left out here (hypercorn and granian report it): it tells the app nothing of a
# half-closed connection (the driver's drop ends only the sending side), so
# the cut request waits until the new process's HEAD has it hand over, a
# path the cluster's node-u and tests/test_asgi.py cover with real
# processes; the in-process server shares one SQLite connection between
# threads, which the handover's heartbeat cannot rely on.
@pytest.mark.parametrize("live_tus", ["wsgi", "hypercorn", "granian"], indirect=True)
def test_tus_js_client_resumes_a_dropped_upload_from_its_stored_url(live_tus: str, s3: S3, tmp_path: Path) -> None:
    path, data = write_file(tmp_path, 2 * PART + 12345, seed=1)
    storage = tmp_path / "tus-urls.json"
    # The connection fails 7 MiB into the one PATCH: the server keeps a part and a tail.
    # No retries (the driver otherwise runs on tus-js-client's default delays): this process gives up.
    first = run_client(
        endpoint=live_tus, file=str(path), chunkSize=None, urlStorage=str(storage), dropAfterBytes=7 * MiB,
        retryDelays=None,
    )
    dropped = first[-1]
    assert dropped["event"] == "error", dropped
    url = dropped["url"]
    assert [e["method"] for e in first if e["event"] == "response"] in (["POST", "PATCH"], ["POST"])

    # A new process finds the upload by the file's fingerprint and carries on.
    second = run_client(
        endpoint=live_tus,
        file=str(path),
        chunkSize=None,
        urlStorage=str(storage),
        resume=True,
        retryDelays=[50, 200, 500, 1000, 2000, 4000],
    )
    assert outcome(second)["url"] == url
    heads = [e for e in second if e["event"] == "response" and e["method"] == "HEAD" and e["status"] == 200]
    assert heads, second
    # Every body byte that reached the server was kept (the rest of the 7 MiB were headers).
    assert 7 * MiB - 2048 < heads[0]["offset"] < 7 * MiB
    assert not [e for e in second if e.get("method") == "POST"]
    session = session_for(url)
    assert session.state == State.COMPLETED
    assert s3.sha256(session.key) == sha256(data)


def test_tus_js_client_creation_with_upload(live_tus: str, s3: S3, tmp_path: Path) -> None:
    path, data = write_file(tmp_path, PART + MiB + 3, seed=2)
    events = run_client(
        endpoint=live_tus, file=str(path), chunkSize=ODD_CHUNK, uploadDataDuringCreation=True
    )
    posts = [e for e in events if e["event"] == "response" and e["method"] == "POST"]
    assert [(p["status"], p["offset"]) for p in posts] == [(201, ODD_CHUNK)]
    session = session_for(outcome(events)["url"])
    assert session.state == State.COMPLETED
    assert s3.sha256(session.key) == sha256(data)


def test_tus_js_client_parallel_uploads_concatenate(live_tus: str, s3: S3, tmp_path: Path) -> None:
    """parallelUploads sends partial uploads and joins them with Upload-Concat: final."""
    path, data = write_file(tmp_path, 2 * PART + 4321, seed=3)
    events = run_client(endpoint=live_tus, file=str(path), parallelUploads=2)
    session = session_for(outcome(events)["url"])
    assert session.concat == "final"
    assert session.state == State.COMPLETED
    assert s3.sha256(session.key) == sha256(data)
