"""PROTOCOL.md, Termination: DELETE frees the storage and the upload is gone."""

from __future__ import annotations

from rindle_tus.storage import tus_tail_path

from ..conftest import PART, S3, MiB, payload
from .conftest import Tus, session_of


def test_delete_answers_204(server: Tus) -> None:
    """DELETE of an upload answers 204."""
    url = server.new(100)
    assert server.delete(url).status_code == 204


def test_delete_aborts_the_multipart_upload(server: Tus, s3: S3) -> None:
    """DELETE aborts the upload's S3 multipart upload."""
    url = server.new(3 * PART)
    assert server.patch(url, payload(PART + MiB), 0).status_code == 204
    session = session_of(url)
    assert session.upload_id
    assert [u["UploadId"] for u in s3.multipart_uploads(session.key)] == [session.upload_id]
    assert server.delete(url).status_code == 204
    assert s3.multipart_uploads(session.key) == []


def test_delete_removes_the_tail_file(server: Tus) -> None:
    """DELETE removes the upload's buffered tail on this node."""
    url = server.new(3 * PART)
    assert server.patch(url, payload(MiB), 0).status_code == 204
    path = tus_tail_path(session_of(url).id)
    assert path.exists()
    assert server.delete(url).status_code == 204
    assert not path.exists()


def test_delete_of_a_complete_upload_removes_the_object(server: Tus, s3: S3) -> None:
    """DELETE of a finished upload removes its final object."""
    url = server.upload(payload(PART + 5))
    key = session_of(url).key
    assert s3.exists(key)
    assert server.delete(url).status_code == 204
    assert not s3.exists(key)


def test_delete_of_a_small_complete_upload_removes_the_object(server: Tus, s3: S3) -> None:
    """DELETE of a finished upload stored in a single PutObject removes that object too."""
    url = server.upload(b"small")
    key = session_of(url).key
    assert s3.exists(key)
    assert server.delete(url).status_code == 204
    assert not s3.exists(key)


def test_requests_after_delete_are_410(server: Tus) -> None:
    """After DELETE, HEAD, PATCH and DELETE of the upload answer 410 (we know it was terminated)."""
    url = server.new(100)
    assert server.patch(url, b"a" * 10, 0).status_code == 204
    assert server.delete(url).status_code == 204
    head = server.head(url)
    assert head.status_code == 410
    assert "Upload-Offset" not in head.headers
    assert server.patch(url, b"b" * 10, 10).status_code == 410
    assert server.delete(url).status_code == 410


def test_delete_of_an_unknown_upload_is_404(server: Tus) -> None:
    """DELETE of an upload that never existed is 404."""
    assert server.delete(server.collection + "Q" * 32).status_code == 404
