"""Browsers on another origin can speak tus through django-cors-headers."""

from __future__ import annotations

from .conftest import TusClient


def test_preflight_allows_the_tus_request_headers(tus: TusClient) -> None:
    response = tus.client.options(
        "/files/abc",
        headers={
            "Origin": "http://app.example",
            "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": "tus-resumable,upload-offset,upload-checksum,content-type",
        },
    )
    assert response.status_code == 200
    allowed = {h.strip().lower() for h in response["Access-Control-Allow-Headers"].split(",")}
    assert {"tus-resumable", "upload-offset", "upload-checksum", "content-type"} <= allowed
    assert "PATCH" in response["Access-Control-Allow-Methods"]


def test_responses_expose_the_tus_headers(tus: TusClient) -> None:
    url = tus.new(10)
    response = tus.request("HEAD", url, headers={"Origin": "http://app.example"}, content_type="")
    exposed = {h.strip() for h in response["Access-Control-Expose-Headers"].split(",")}
    assert {"Upload-Offset", "Upload-Length", "Upload-Metadata", "Tus-Resumable", "Location"} <= exposed
    assert response["Access-Control-Allow-Origin"] == "http://app.example"
