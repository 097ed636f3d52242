from __future__ import annotations

import base64
import hashlib
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.test.utils import override_settings

from example_project.s3server import SeaweedS3, ensure_bucket, s3_client

BUCKET = "rindle-test"
LOCATION = "site"
MiB = 1024 * 1024
PART = 5 * MiB

# CI sets this: a test whose service is missing then fails instead of skipping.
REQUIRE_SERVICES = bool(os.environ.get("CI") or os.environ.get("RINDLE_TUS_REQUIRE_SERVICES"))


def service_unavailable(message: str) -> None:
    if REQUIRE_SERVICES:
        pytest.fail(f"required service unavailable: {message}", pytrace=False)
    pytest.skip(message)


def payload(size: int, seed: int = 0) -> bytes:
    """Deterministic bytes that differ at every position and between seeds."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest() * 64
        counter += 1
    return bytes(out[:size])


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class S3:
    endpoint: str
    bucket: str
    client: Any

    def sha256(self, key: str) -> str:
        body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
        digest = hashlib.sha256()
        for chunk in iter(lambda: body.read(MiB), b""):
            digest.update(chunk)
        return digest.hexdigest()

    def exists(self, key: str) -> bool:
        return bool(self.client.list_objects_v2(Bucket=self.bucket, Prefix=key).get("KeyCount"))

    def multipart_uploads(self, prefix: str = "") -> list[dict[str, Any]]:
        response = self.client.list_multipart_uploads(Bucket=self.bucket, Prefix=prefix)
        return list(response.get("Uploads", []))


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    given = os.environ.get("RINDLE_TUS_TEST_S3_ENDPOINT")
    if given:
        try:
            ensure_bucket(given, BUCKET, timeout=15)
        except Exception as exc:  # noqa: BLE001
            service_unavailable(f"S3 at {given}: {exc}")
        yield given
        return
    server = SeaweedS3(tmp_path_factory.mktemp("seaweedfs"))
    try:
        server.start(bucket=BUCKET)
    except Exception as exc:  # noqa: BLE001
        service_unavailable(f"SeaweedFS did not start: {exc}")
    yield server.endpoint
    server.stop()


@pytest.fixture(scope="session")
def s3_storages(s3_endpoint: str) -> Iterator[dict[str, Any]]:
    storages = {
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": BUCKET,
                "endpoint_url": s3_endpoint,
                "access_key": "rindle",
                "secret_key": "rindle-secret",
                "region_name": "us-east-1",
                "addressing_style": "path",
                "location": LOCATION,
            },
        },
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    override = override_settings(STORAGES=storages)
    override.enable()
    yield storages
    override.disable()


@pytest.fixture(scope="session")
def s3(s3_storages: dict[str, Any], s3_endpoint: str) -> S3:
    return S3(s3_endpoint, BUCKET, s3_client(s3_endpoint))


@pytest.fixture
def tail_root(settings: Any, tmp_path: Path) -> Path:
    root = tmp_path / "tails"
    settings.RINDLE_TUS_TMP_DIR = str(root)
    return root


class TusClient:
    """The Django test client speaking tus: every request carries Tus-Resumable."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def request(self, method: str, path: str, data: bytes = b"", headers: dict[str, str] | None = None,
                content_type: str = "application/offset+octet-stream") -> Any:
        all_headers = {"Tus-Resumable": "1.0.0", **(headers or {})}
        # Django's client drops the content type of an empty body; tus clients send it.
        extra = {"CONTENT_TYPE": content_type} if content_type else {}
        return self.client.generic(method, path, data, content_type=content_type, headers=all_headers, **extra)

    def create(self, length: int | None, metadata: dict[str, bytes] | None = None, body: bytes | None = None,
               headers: dict[str, str] | None = None) -> Any:
        h: dict[str, str] = {}
        if length is None:
            h["Upload-Defer-Length"] = "1"
        else:
            h["Upload-Length"] = str(length)
        if metadata:
            h["Upload-Metadata"] = ",".join(
                f"{k} {base64.b64encode(v).decode()}" for k, v in metadata.items()
            )
        h.update(headers or {})
        if body is None:
            return self.request("POST", "/files/", headers=h, content_type="")
        return self.request("POST", "/files/", body, headers=h)

    def new(self, length: int | None, **kwargs: Any) -> str:
        response = self.create(length, **kwargs)
        assert response.status_code == 201, response.content
        return str(response["Location"]).replace("http://testserver", "")

    def patch(self, url: str, data: bytes, offset: int, headers: dict[str, str] | None = None) -> Any:
        return self.request("PATCH", url, data, headers={"Upload-Offset": str(offset), **(headers or {})})

    def head(self, url: str) -> Any:
        return self.request("HEAD", url, content_type="")

    def delete(self, url: str) -> Any:
        return self.request("DELETE", url, content_type="")

    def partial(self, data: bytes) -> str:
        """A finished partial upload of ``data`` (``Upload-Concat: partial``)."""
        url = self.new(len(data), headers={"Upload-Concat": "partial"})
        if data:
            assert self.patch(url, data, 0).status_code == 204
        return url

    def final(self, urls: list[str]) -> Any:
        """The answer to creating the final upload of the partial uploads ``urls``."""
        return self.request("POST", "/files/", headers={"Upload-Concat": "final;" + " ".join(urls)}, content_type="")

    def upload(self, data: bytes, chunk: int | None = None, **kwargs: Any) -> str:
        url = self.new(len(data), **kwargs)
        step = chunk or max(len(data), 1)
        offset = 0
        while offset < len(data):
            response = self.patch(url, data[offset : offset + step], offset)
            assert response.status_code == 204, response.content
            offset = int(response["Upload-Offset"])
        return url


@pytest.fixture
def tus(s3: S3, db: None, tail_root: Path, client: Client) -> TusClient:
    return TusClient(client)


class Gate:
    """Holds every part upload of S3Backend until opened; counts those
    started and those that ended (stored or failed)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.opened = threading.Event()
        self.started: list[int] = []
        self.finished: list[int] = []
        from rindle_tus.storage import S3Backend

        original = S3Backend.upload_part

        def gated(backend: S3Backend, key: str, upload_id: str, number: int, body: Any) -> str:
            self.started.append(number)
            try:
                assert self.opened.wait(60), "the gate was never opened"
                return original(backend, key, upload_id, number, body)
            finally:
                self.finished.append(number)

        monkeypatch.setattr(S3Backend, "upload_part", gated)

    def wait_finished(self, count: int) -> None:
        for _ in range(600):
            if len(self.finished) >= count:
                return
            threading.Event().wait(0.05)
        raise AssertionError(f"only {len(self.finished)} part uploads ended")


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[Gate]:
    gate = Gate(monkeypatch)
    yield gate
    gate.opened.set()


@dataclass
class LeaseWatch:
    """Times every lease renewal, and slows storage calls down, to show
    whether a request kept its lease while a slow call ran."""

    monkeypatch: pytest.MonkeyPatch
    renewals: list[float]
    windows: list[tuple[float, float]]

    def slow_down(self, owner: type, name: str, seconds: float = 2.0) -> None:
        original = getattr(owner, name)

        def slow(*args: Any, **kwargs: Any) -> Any:
            started = time.monotonic()
            time.sleep(seconds)
            result = original(*args, **kwargs)
            self.windows.append((started, time.monotonic()))
            return result

        self.monkeypatch.setattr(owner, name, slow)

    def renewals_during_the_slow_call(self) -> list[float]:
        ((started, ended),) = self.windows
        return [t for t in self.renewals if started < t < ended]


@pytest.fixture
def lease_watch(monkeypatch: pytest.MonkeyPatch) -> LeaseWatch:
    from rindle_tus import heartbeat

    watch = LeaseWatch(monkeypatch, [], [])
    renew = heartbeat.renew

    def timed(leases: list[heartbeat.Kept]) -> None:
        watch.renewals.append(time.monotonic())
        renew(leases)

    monkeypatch.setattr(heartbeat, "renew", timed)
    return watch


def parts_held(session: Any) -> list[int]:
    """The numbers of the parts the row counts: those committed, then those
    still waiting for S3 in part files (write-behind)."""
    first = len(session.parts) + 1
    return [int(p["number"]) for p in session.parts] + list(range(first, first + session.owed_parts))


def session_for(url: str) -> Any:
    from rindle_tus.models import TusSession

    return TusSession.objects.get(pk=url.rstrip("/").rsplit("/", 1)[-1])


@pytest.fixture(scope="session")
def asgi_servers() -> Iterator[dict[str, Any]]:
    """The ASGI servers of ``tests/asgi_server.py``, started on first use."""
    started: dict[str, Any] = {}
    yield started
    for server in started.values():
        server.stop()


@pytest.fixture
def live_tus(request: pytest.FixtureRequest, s3: S3, live_server: Any, tail_root: Path,
             asgi_servers: dict[str, Any]) -> str:
    """The collection URL of a live in-process server, for real clients:
    Django's threaded WSGI server, or (parametrized by ``pytest_generate_tests``)
    an ASGI server serving ``rindle_tus.asgi``. Both share the test's settings
    and database."""
    kind = getattr(request, "param", "wsgi")
    if kind == "wsgi":
        return f"{live_server.url}/files/"
    from .asgi_server import AsgiLiveServer

    if kind not in asgi_servers:
        asgi_servers[kind] = AsgiLiveServer(kind)
    return f"{asgi_servers[kind].url}/files/"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test of a tus client on the wire (the conformance suite, the
    real clients) runs under WSGI and under each ASGI server. The browser
    tests load the page from Django's live server and stay there."""
    from .asgi_server import ASGI_SERVERS

    chosen = any("live_tus" in str(marker.args[0]) for marker in metafunc.definition.iter_markers("parametrize"))
    if "live_tus" in metafunc.fixturenames and not chosen and not metafunc.module.__name__.endswith("test_browser"):
        metafunc.parametrize("live_tus", ["wsgi", *ASGI_SERVERS], indirect=True)


@pytest.fixture(scope="session")
def cluster(s3_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Three gunicorn nodes sharing a database of their own and S3 (tests/cluster.py)."""
    from .cluster import running_cluster

    url = os.environ.get("DATABASE_URL", "sqlite://")
    with running_cluster(s3_endpoint, tmp_path_factory.mktemp("cluster"), url) as running:
        yield running


@pytest.fixture
def nodes(cluster: Any) -> Any:
    """The cluster, with every node up and S3 reachable before the test."""
    cluster.ensure_healthy()
    return cluster
