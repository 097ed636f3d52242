"""The processes a benchmark run starts: one SeaweedFS S3, a fresh database,
rindle_tus under gunicorn and the @tus/server peer under Node."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from example_project.s3server import SeaweedS3, s3_client

REPO = Path(__file__).resolve().parent.parent
PEER_DIR = Path(__file__).resolve().parent / "peer"
MiB = 1024 * 1024


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[Any], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with code {process.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on port {port} within {timeout:.0f} s")


def stop_group(process: subprocess.Popen[Any] | None, timeout: float = 15.0) -> None:
    """SIGTERM the process group started for ``process``, SIGKILL if it lingers."""
    if process is None or process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=timeout)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()


class S3:
    """The one SeaweedFS of a run, and the checks made against it."""

    def __init__(self, data_dir: Path, bucket: str) -> None:
        self.bucket = bucket
        self.server = SeaweedS3(data_dir)

    def start(self) -> S3:
        self.server.start(bucket=self.bucket)
        self.client: Any = s3_client(self.server.endpoint)
        return self

    @property
    def endpoint(self) -> str:
        return self.server.endpoint

    def transfer_client(self, connections: int) -> Any:
        """A client whose connection pool is not what limits ``connections`` concurrent requests."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id="rindle",
            aws_secret_access_key="rindle-secret",
            region_name="us-east-1",
            config=Config(
                s3={"addressing_style": "path"},
                max_pool_connections=max(10, connections),
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )

    def sha256(self, key: str) -> str:
        body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
        digest = hashlib.sha256()
        for chunk in body.iter_chunks(MiB):
            digest.update(chunk)
        return digest.hexdigest()

    def delete(self, *keys: str) -> None:
        for key in keys:
            self.client.delete_object(Bucket=self.bucket, Key=key)

    def vacuum(self) -> None:
        """Reclaim the space of deleted objects now: a full run writes tens of GiB."""
        import urllib.request

        url = f"http://127.0.0.1:{self.server.ports['master']}/vol/vacuum?garbageThreshold=0.01"
        with urllib.request.urlopen(url, timeout=600) as response:
            response.read()

    def stop(self) -> None:
        self.server.stop()


class Database:
    """A fresh PostgreSQL database for the run (or a SQLite file), dropped after."""

    def __init__(self, admin_url: str | None, sqlite_path: Path | None = None) -> None:
        self.admin_url = admin_url
        self.sqlite_path = sqlite_path
        self.name = f"rindle_bench_{uuid.uuid4().hex[:10]}"

    @property
    def url(self) -> str:
        if self.admin_url is None:
            assert self.sqlite_path is not None
            return f"sqlite:///{self.sqlite_path}"
        parts = urlsplit(self.admin_url)
        return parts._replace(path=f"/{self.name}").geturl()

    def _admin(self) -> Any:
        import psycopg

        assert self.admin_url is not None
        return psycopg.connect(self.admin_url, autocommit=True)

    def create(self) -> Database:
        if self.admin_url is not None:
            with self._admin() as conn:
                conn.execute(f'CREATE DATABASE "{self.name}"')
        return self

    def drop(self) -> None:
        if self.admin_url is not None:
            with self._admin() as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')

    def describe(self) -> str:
        if self.admin_url is None:
            return "SQLite file"
        with self._admin() as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]
        return f"PostgreSQL {version} (a fresh database)"


@dataclass
class GunicornSettings:
    workers: int
    threads: int
    worker_class: str = "gthread"
    timeout: int = 600
    graceful_timeout: int = 30
    keep_alive: int = 75

    def args(self) -> list[str]:
        return [
            f"--worker-class={self.worker_class}",
            f"--workers={self.workers}",
            f"--threads={self.threads}",
            f"--timeout={self.timeout}",
            f"--graceful-timeout={self.graceful_timeout}",
            f"--keep-alive={self.keep_alive}",
            # Heartbeat files in memory: a busy disk must not make the arbiter kill a worker.
            "--worker-tmp-dir=/dev/shm",
        ]

    def describe(self) -> str:
        return "gunicorn example_project.wsgi " + " ".join(self.args())


class RindleServer:
    name = "rindle"

    def __init__(self, workdir: Path, s3: S3, database: Database, part_size: int, settings: GunicornSettings) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.settings = settings
        self.process: subprocess.Popen[bytes] | None = None
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "example_project.settings",
            "DJANGO_DEBUG": "0",
            "DATABASE_URL": database.url,
            "AWS_S3_ENDPOINT_URL": s3.endpoint,
            "AWS_STORAGE_BUCKET_NAME": s3.bucket,
            "RINDLE_TUS_TMP_DIR": str(workdir / "tails"),
            "RINDLE_TUS_PART_SIZE": str(part_size),
            "EXAMPLE_VAR_DIR": str(workdir / "var"),
            "RINDLE_TUS_LOG_LEVEL": "WARNING",
            # The scenarios fill every thread with uploads (scenario 3: 32 at once on
            # 4 x 8 threads) from one address, and the clients do not retry: the
            # caps meant to keep a site's other pages answering would refuse some.
            "RINDLE_TUS_MAX_BODIES": str(settings.threads),
            "RINDLE_TUS_MAX_UNFINISHED": "none",
            # The same boto3 checksum setting as the limit's client, read by botocore itself.
            "AWS_REQUEST_CHECKSUM_CALCULATION": "when_required",
            "AWS_RESPONSE_CHECKSUM_VALIDATION": "when_required",
        }

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/files/"

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def key_for(self, upload_url: str) -> str:
        # RINDLE_TUS_KEY_PREFIX's default, with no django-storages location.
        return "tus/" + upload_url.rstrip("/").rsplit("/", 1)[-1]

    def extra_keys(self, upload_url: str) -> list[str]:
        return []

    def migrate(self) -> None:
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=REPO,
            env=self.env,
            check=True,
        )

    def command(self, extra_args: list[str]) -> list[str]:
        return [
            sys.executable,
            "-m",
            "gunicorn",
            "example_project.wsgi:application",
            f"--bind=127.0.0.1:{self.port}",
            *self.settings.args(),
            *extra_args,
        ]

    def start(self, extra_args: list[str] | None = None) -> RindleServer:
        command = self.command(extra_args or [])
        if self.env.get("RINDLE_TUS_METRICS", "1") != "0":
            # Metrics as a deployment with several workers counts them: into
            # prometheus_client's multiprocess files (the costlier mode).
            metrics_dir = self.workdir / f"{self.name}-prometheus"
            shutil.rmtree(metrics_dir, ignore_errors=True)
            metrics_dir.mkdir(parents=True)
            self.env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
        log = open(self.workdir / f"{self.name}.log", "ab")
        self.process = subprocess.Popen(
            command,
            cwd=REPO,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        wait_for_port(self.port, self.process, command[2])
        _wait_for_workers(self.process.pid, self.settings.workers)
        return self

    def stop(self) -> None:
        stop_group(self.process)


class NoMetricsRindleServer(RindleServer):
    """rindle under the same gunicorn with ``RINDLE_TUS_METRICS = False``:
    what counting the metrics costs on the hot path (``--metrics``)."""

    name = "rindle-nometrics"

    def __init__(self, workdir: Path, s3: S3, database: Database, part_size: int,
                 settings: GunicornSettings) -> None:
        super().__init__(workdir, s3, database, part_size, settings)
        self.env["RINDLE_TUS_METRICS"] = "0"


class AsgiRindleServer(RindleServer):
    """rindle_tus under uvicorn, as many workers as gunicorn's: through
    ``rindle_tus.asgi`` (``rindle-asgi``), or through Django's own ASGI
    handler (``django-asgi``: what a project gets without it)."""

    APPS = {
        "rindle-asgi": ["example_project.asgi:application"],
        "django-asgi": ["--factory", "django.core.asgi:get_asgi_application"],
    }

    def __init__(self, name: str, workdir: Path, s3: S3, database: Database, part_size: int,
                 settings: GunicornSettings) -> None:
        super().__init__(workdir, s3, database, part_size, settings)
        self.name = name
        # Both handlers on the pool example_project/asgi.py sets for its own
        # (persistent connections run PostgreSQL out of them under ASGI), so
        # that the handler is the only difference.
        self.env["DATABASE_POOL"] = "16"
        # uvicorn's workers take connections unevenly (scenario 3 once put 9 of
        # 32 uploads on one), so a cap per process refuses some that gunicorn,
        # whose threads only accept what they can serve, spreads out.
        self.env["RINDLE_TUS_MAX_BODIES"] = "none"

    def describe(self) -> str:
        return f"uvicorn {' '.join(self.APPS[self.name])} --workers={self.settings.workers} --timeout-keep-alive=75"

    def command(self, extra_args: list[str]) -> list[str]:
        return [
            sys.executable, "-m", "uvicorn", *self.APPS[self.name],
            "--host=127.0.0.1", f"--port={self.port}", f"--workers={self.settings.workers}",
            "--timeout-keep-alive=75", "--no-access-log", "--log-level=warning", *extra_args,
        ]


def _wait_for_workers(pid: int, count: int, timeout: float = 30.0) -> None:
    import psutil

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(psutil.Process(pid).children()) >= count:
            return
        time.sleep(0.1)


class PeerServer:
    name = "peer"

    def __init__(self, workdir: Path, s3: S3, part_size: int) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.env = {
            **os.environ,
            "PEER_PORT": str(self.port),
            "PEER_PART_SIZE": str(part_size),
            "AWS_S3_ENDPOINT_URL": s3.endpoint,
            "AWS_STORAGE_BUCKET_NAME": s3.bucket,
            # @tus/s3-store buffers each part in a temporary file.
            "TMPDIR": str(workdir / "peer-tmp"),
        }
        (workdir / "peer-tmp").mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/files"

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def key_for(self, upload_url: str) -> str:
        return upload_url.rstrip("/").rsplit("/", 1)[-1]

    def extra_keys(self, upload_url: str) -> list[str]:
        # Its upload metadata, and the incomplete part it keeps while fewer than partSize bytes
        # are pending (which termination leaves behind).
        key = self.key_for(upload_url)
        return [key + ".info", key + ".part"]

    def start(self) -> PeerServer:
        log = open(self.workdir / "peer.log", "ab")
        self.process = subprocess.Popen(
            ["node", "server.mjs"],
            cwd=PEER_DIR,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        wait_for_port(self.port, self.process, "the peer (node server.mjs)")
        return self

    def stop(self) -> None:
        stop_group(self.process)


def node_version() -> str:
    return subprocess.run(["node", "--version"], capture_output=True, text=True, check=True).stdout.strip()


def npm_package_version(name: str) -> str:
    import json

    path = PEER_DIR / "node_modules" / name / "package.json"
    try:
        return str(json.loads(path.read_text())["version"])
    except (OSError, ValueError, KeyError):
        return "?"
