"""tuspy, the Python tus client, against a live server: every upload ends as
an S3 object with the sent bytes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tusclient.client import TusClient
from tusclient.exceptions import TusCommunicationError

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


@pytest.fixture
def token_auth(settings: Any, django_user_model: Any) -> tuple[Any, str]:
    """The example project's bearer tokens, under a permission that refuses anonymous clients."""
    from example_project.uploads.tokens import issue

    settings.RINDLE_TUS_AUTHENTICATE = "example_project.uploads.tokens.authenticate"
    settings.RINDLE_TUS_PERMISSION = "rindle_tus.hooks.owner_only"
    user = django_user_model.objects.create_user("phone", password="not-used-here")
    return user, issue(user, "tuspy test")


def test_tuspy_uploads_with_a_bearer_token_as_its_user(live_tus: str, s3: S3, tmp_path: Path,
                                                      token_auth: tuple[Any, str]) -> None:
    user, token = token_auth
    path, data = write_file(tmp_path, PART + 4321, seed=8)
    uploader = TusClient(live_tus, headers={"Authorization": f"Bearer {token}"}).uploader(
        str(path), chunk_size=ODD_CHUNK
    )
    uploader.upload()
    session = session_for(uploader.url)
    assert (session.state, session.created_by_id) == (State.COMPLETED, user.pk)
    assert s3.sha256(session.key) == sha256(data)


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer not-a-token"}], ids=["no-token", "wrong-token"])
def test_tuspy_without_a_valid_token_is_refused_with_401(live_tus: str, tmp_path: Path,
                                                         token_auth: tuple[Any, str], headers: dict[str, str]) -> None:
    from rindle_tus.models import TusSession

    path, _ = write_file(tmp_path, 1000, seed=9)
    with pytest.raises(TusCommunicationError) as refused:
        TusClient(live_tus, headers=headers).uploader(str(path)).upload()
    assert refused.value.status_code == 401
    assert TusSession.objects.count() == 0
