"""The local S3 the demo, the tests and the benchmarks start (``example_project.s3server``).

Its ports are found free and then bound by weed: another process may take
one in between (seen in CI: "Filer listener error: bind: address already in
use", and the worker's whole run failed). weed then exits, and the start
tries again on new ports instead of waiting out its timeout."""

from __future__ import annotations

import socket
from pathlib import Path

from example_project.s3server import SeaweedS3, s3_client


def test_a_port_taken_before_weed_binds_it_means_a_start_on_new_ports(tmp_path: Path) -> None:
    server = SeaweedS3(tmp_path / "s3")
    taken = server.ports["filer"]
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", taken))
        squatter.listen()
        server.start(bucket="started")
        try:
            assert server.ports["filer"] != taken
            assert "address already in use" in (tmp_path / "s3" / "weed.log").read_text()
            client = s3_client(server.endpoint)
            client.put_object(Bucket="started", Key="k", Body=b"served")
            assert client.get_object(Bucket="started", Key="k")["Body"].read() == b"served"
        finally:
            server.stop()
