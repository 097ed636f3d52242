"""The example project's app: finished uploads are recorded from
``upload_finished`` and listed with download links that fetch the object."""

from __future__ import annotations

import re
from html import unescape

import pytest
import requests
from django.test import Client

from example_project.uploads.models import FinishedUpload
from rindle_tus import signals

from .conftest import S3, MiB, TusClient, payload, session_for, sha256

# upload_finished is sent once the transaction commits: let it commit.
pytestmark = pytest.mark.usefixtures("transactional_db")


def download_links(html: str) -> list[str]:
    return [unescape(href) for href in re.findall(r'<a href="([^"]+)" download>', html)]


def test_finished_upload_is_recorded_with_key_size_and_filename(tus: TusClient, s3: S3) -> None:
    data = payload(6 * MiB + 7, seed=1)
    url = tus.upload(data, chunk=2 * MiB, metadata={"filename": b"report.bin", "filetype": b"application/pdf"})
    session = session_for(url)
    assert s3.sha256(session.key) == sha256(data)
    recorded = FinishedUpload.objects.get(session_id=session.id)
    assert (recorded.key, recorded.size, recorded.filename, recorded.content_type) == (
        session.key,
        len(data),
        "report.bin",
        "application/pdf",
    )


def test_unfinished_upload_is_not_recorded(tus: TusClient) -> None:
    url = tus.new(2 * MiB)
    assert tus.patch(url, payload(MiB), 0).status_code == 204
    assert not FinishedUpload.objects.filter(session_id=session_for(url).id).exists()


def test_finished_list_link_downloads_the_uploaded_bytes(tus: TusClient, s3: S3, client: Client) -> None:
    data = payload(5 * MiB + 11, seed=2)
    url = tus.upload(data, metadata={"filename": b"photo.raw"})
    assert s3.sha256(session_for(url).key) == sha256(data)
    response = client.get("/uploads/finished/")
    assert response.status_code == 200
    links = download_links(response.content.decode())
    assert len(links) == 1
    downloaded = requests.get(links[0], timeout=30)
    assert downloaded.status_code == 200
    assert sha256(downloaded.content) == sha256(data)


def test_download_link_names_the_original_file(tus: TusClient, s3: S3, client: Client) -> None:
    data = payload(1234, seed=3)
    url = tus.upload(data, metadata={"filename": b"notes.txt"})
    assert s3.sha256(session_for(url).key) == sha256(data)
    (link,) = download_links(client.get("/uploads/finished/").content.decode())
    downloaded = requests.get(link, timeout=30)
    assert downloaded.headers["Content-Disposition"] == "attachment; filename=\"notes.txt\"; filename*=UTF-8''notes.txt"


def test_home_page_lists_finished_uploads_newest_first(tus: TusClient, s3: S3, client: Client) -> None:
    first, second = payload(100, seed=4), payload(200, seed=5)
    for data, name in ((first, b"first.bin"), (second, b"second.bin")):
        url = tus.upload(data, metadata={"filename": name})
        assert s3.sha256(session_for(url).key) == sha256(data)
    html = client.get("/").content.decode()
    assert html.index("second.bin") < html.index("first.bin")


def test_home_page_points_uppy_at_the_tus_endpoint(client: Client) -> None:
    html = client.get("/").content.decode()
    assert 'data-endpoint="/files/"' in html
    assert 'src="/static/example/upload.js"' in html


def test_a_finished_upload_delivered_twice_is_recorded_once(tus: TusClient, s3: S3) -> None:
    data = payload(300 * 1024, seed=3)
    session = session_for(tus.upload(data, metadata={"filename": b"twice.bin"}))
    assert s3.sha256(session.key) == sha256(data)
    signals.send_finished(session)
    assert FinishedUpload.objects.filter(session_id=session.id).count() == 1
