"""PROTOCOL.md, Concatenation: partial uploads joined into a final one."""

from __future__ import annotations

import requests

from ..conftest import PART, S3, payload, sha256
from .conftest import Tus, assert_bad_request, session_count, session_of


def partial(server: Tus, data: bytes) -> str:
    """A finished partial upload of ``data``."""
    response = server.create(len(data), headers={"Upload-Concat": "partial"})
    assert response.status_code == 201, response.text
    url = response.headers["Location"]
    if data:
        assert server.patch(url, data, 0).status_code == 204
    return url


def final(server: Tus, *urls: str) -> requests.Response:
    return server.create(headers={"Upload-Concat": "final;" + " ".join(urls)})


def test_concatenation_is_listed_in_tus_extension(server: Tus) -> None:
    """OPTIONS lists concatenation in Tus-Extension."""
    assert "concatenation" in server.options().headers["Tus-Extension"].split(",")


def test_upload_concat_partial_creates_a_partial_upload(server: Tus) -> None:
    """POST with Upload-Concat: partial and Upload-Length creates an upload whose HEAD echoes Upload-Concat: partial."""
    response = server.create(100, headers={"Upload-Concat": "partial"})
    assert response.status_code == 201
    head = server.head(response.headers["Location"])
    assert head.headers["Upload-Concat"] == "partial"
    assert head.headers["Upload-Length"] == "100"
    assert head.headers["Upload-Offset"] == "0"


def test_partial_upload_takes_patches_like_any_upload(server: Tus) -> None:
    """A partial upload receives PATCHes and reports its offset."""
    response = server.create(100, headers={"Upload-Concat": "partial"})
    url = response.headers["Location"]
    assert server.patch(url, b"a" * 40, 0).status_code == 204
    assert server.offset(url) == 40


def test_final_upload_joins_finished_partials_in_order(server: Tus, s3: S3) -> None:
    """Upload-Concat: final;<url> <url> is 201; its object is the partials' bytes in the order named."""
    first, second = payload(PART + 3, seed=21), payload(1000, seed=22)
    a, b = partial(server, first), partial(server, second)
    response = final(server, a, b)
    assert response.status_code == 201, response.text
    url = response.headers["Location"]
    assert s3.sha256(session_of(url).key) == sha256(first + second)


def test_final_upload_length_is_the_sum_of_its_partials(server: Tus) -> None:
    """HEAD of a final upload answers Upload-Length, the sum of the partials, and once assembled the same offset."""
    first, second = payload(PART + 3, seed=23), payload(1000, seed=24)
    url = final(server, partial(server, first), partial(server, second)).headers["Location"]
    head = server.head(url)
    assert head.status_code in (200, 204)
    total = str(len(first) + len(second))
    assert head.headers["Upload-Length"] == total
    assert head.headers["Upload-Offset"] == total


def test_head_of_a_final_upload_echoes_upload_concat(server: Tus) -> None:
    """HEAD of a final upload echoes Upload-Concat: final;<the urls as sent>."""
    a, b = partial(server, payload(PART, seed=25)), partial(server, payload(10, seed=26))
    url = final(server, a, b).headers["Location"]
    assert server.head(url).headers["Upload-Concat"] == f"final;{a} {b}"


def test_final_upload_accepts_the_paths_of_its_partials(server: Tus, s3: S3) -> None:
    """The partials may be named by path instead of absolute URL; HEAD echoes them as sent."""
    first, second = payload(PART + 1, seed=27), payload(77, seed=28)
    a, b = server.path_of(partial(server, first)), server.path_of(partial(server, second))
    response = final(server, a, b)
    assert response.status_code == 201, response.text
    url = response.headers["Location"]
    assert server.head(url).headers["Upload-Concat"] == f"final;{a} {b}"
    assert s3.sha256(session_of(url).key) == sha256(first + second)


def test_final_upload_with_upload_length_is_400(server: Tus) -> None:
    """A final upload takes its length from its partials: it carries no Upload-Length."""
    a = partial(server, payload(10, seed=29))
    before = session_count()
    response = server.create(10, headers={"Upload-Concat": f"final;{a}"})
    assert_bad_request(response, "Upload-Length")
    assert session_count() == before


def test_patch_to_a_final_upload_is_403(server: Tus) -> None:
    """A final upload cannot be patched: 403."""
    a, b = partial(server, payload(PART, seed=30)), partial(server, payload(5, seed=31))
    url = final(server, a, b).headers["Location"]
    assert server.patch(url, b"x", 0).status_code == 403
    assert server.patch(url, b"", PART + 5).status_code == 403


def test_final_naming_an_unfinished_partial_is_400(server: Tus) -> None:
    """A final upload naming a partial upload that is not finished is 400 with a reason."""
    done = partial(server, payload(PART, seed=32))
    response = server.create(100, headers={"Upload-Concat": "partial"})
    unfinished = response.headers["Location"]
    assert server.patch(unfinished, b"a" * 10, 0).status_code == 204
    before = session_count()
    response = final(server, done, unfinished)
    assert response.status_code == 400
    assert response.text.strip()
    assert session_count() == before


def test_final_naming_an_unknown_upload_is_400(server: Tus) -> None:
    """A final upload naming an upload that does not exist is 400 with a reason."""
    done = partial(server, payload(PART, seed=33))
    before = session_count()
    response = final(server, done, server.collection + "Z" * 32)
    assert response.status_code == 400
    assert response.text.strip()
    assert session_count() == before


def test_final_naming_an_upload_that_is_not_partial_is_400(server: Tus) -> None:
    """A final upload naming a finished upload that was not created as partial is 400 with a reason."""
    done = partial(server, payload(PART, seed=34))
    plain = server.upload(payload(10, seed=35))
    before = session_count()
    response = final(server, done, plain)
    assert response.status_code == 400
    assert response.text.strip()
    assert session_count() == before
