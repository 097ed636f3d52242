"""GET of an upload (beyond tus 1.0.0): a finished upload redirects to its
object; an unfinished one is not there yet."""

from __future__ import annotations

import requests

from ..conftest import PART, payload, sha256
from .conftest import Tus

REDIRECTS = (302, 303, 307)


def test_get_of_a_finished_upload_redirects_to_its_bytes(server: Tus) -> None:
    """GET of a finished upload redirects (302/303/307) to a URL from which the object's bytes download."""
    data = payload(PART + 99, seed=41)
    url = server.upload(data, metadata="filename cmVwb3J0LnBkZg==")
    response = server.get(url)
    assert response.status_code in REDIRECTS, response.status_code
    target = response.headers["Location"]
    assert target.startswith(("http://", "https://"))
    # A plain client, no tus headers: the signed URL stands on its own.
    downloaded = requests.get(target, timeout=120)
    assert downloaded.status_code == 200
    assert sha256(downloaded.content) == sha256(data)


def test_get_of_a_small_finished_upload_redirects_to_its_bytes(server: Tus) -> None:
    """GET works alike for an upload stored in a single PutObject."""
    data = b"hello, world"
    response = server.get(server.upload(data))
    assert response.status_code in REDIRECTS
    assert requests.get(response.headers["Location"], timeout=120).content == data


def test_get_of_an_unfinished_upload_is_404(server: Tus) -> None:
    """GET of an upload still receiving bytes is 404: there is no object yet."""
    url = server.new(100)
    assert server.patch(url, b"a" * 10, 0).status_code == 204
    response = server.get(url)
    assert response.status_code == 404
    assert "Location" not in response.headers


def test_get_of_an_unknown_upload_is_404(server: Tus) -> None:
    """GET of an upload that never existed is 404."""
    assert server.get(server.collection + "G" * 32).status_code == 404
