"""tuspy, the Python tus client, against a live server: every upload ends as
an S3 object with the sent bytes."""

from __future__ import annotations

from pathlib import Path

import pytest
from tusclient.client import TusClient

from rindle_tus.models import State

from .conftest import PART, S3, MiB, payload, session_for, sha256

# Does not divide the 5 MiB part size, so parts and requests never line up.
ODD_CHUNK = 3_000_000
WHOLE = 2**62
SIZES = {
    "empty": 0,
    "one-byte": 1,
    "part-minus-one": PART - 1,
    "one-part": PART,
    "forty-mib": 40 * MiB + 7,
}

pytestmark = pytest.mark.slow


def write_file(tmp_path: Path, size: int, seed: int = 0) -> tuple[Path, bytes]:
    data = payload(size, seed)
    path = tmp_path / f"upload-{size}.bin"
    path.write_bytes(data)
    return path, data


@pytest.mark.parametrize("chunk_size", [WHOLE, ODD_CHUNK], ids=["one-request", "3000000-byte-chunks-sha1"])
@pytest.mark.parametrize("size", list(SIZES.values()), ids=list(SIZES))
def test_tuspy_upload_arrives_whole(live_tus: str, s3: S3, tmp_path: Path, size: int, chunk_size: int) -> None:
    path, data = write_file(tmp_path, size)
    uploader = TusClient(live_tus).uploader(
        str(path),
        chunk_size=chunk_size,
        metadata={"filename": path.name},
        # The chunked uploads also send Upload-Checksum (sha1) with each request.
        upload_checksum=chunk_size == ODD_CHUNK,
    )
    uploader.upload()
    assert uploader.url is not None
    assert uploader.offset == size
    session = session_for(uploader.url)
    assert session.state == State.COMPLETED
    assert session.offset == size
    assert session.metadata["filename"] == path.name
    assert s3.sha256(session.key) == sha256(data)


def test_tuspy_resumes_a_stopped_upload_from_its_url(live_tus: str, s3: S3, tmp_path: Path) -> None:
    path, data = write_file(tmp_path, 2 * PART + 54321, seed=1)
    client = TusClient(live_tus)
    first = client.uploader(str(path), chunk_size=ODD_CHUNK)
    first.upload(stop_at=2 * ODD_CHUNK)
    assert first.offset == 2 * ODD_CHUNK
    url = first.url
    assert url is not None
    assert session_for(url).state == State.RECEIVING

    # A fresh uploader knows only the URL: it asks the server for the offset.
    second = client.uploader(str(path), url=url, chunk_size=ODD_CHUNK)
    assert second.offset == 2 * ODD_CHUNK
    second.upload()
    assert second.offset == len(data)
    session = session_for(url)
    assert session.state == State.COMPLETED
    assert s3.sha256(session.key) == sha256(data)
