"""The deployment guide's nginx configuration (docs/nginx-tus.conf), run as
written in front of two app servers: each upload stays on one node and
completes byte-exact."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from tusclient import client as tus_client

from .cluster import Cluster, free_port, session_id_of, wait_until
from .conftest import PART, MiB, payload, service_unavailable

pytestmark = pytest.mark.slow

CONFIG = Path(__file__).resolve().parent.parent / "docs" / "nginx-tus.conf"


@pytest.fixture
def nginx(nodes: Cluster, tmp_path: Path) -> Iterator[str]:
    binary = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if binary is None:
        service_unavailable("nginx is not installed")
    port = free_port()
    snippet = CONFIG.read_text()
    servers = "\n".join(f"    server {nodes[n].url.split('//')[1]};" for n in ("node-a", "node-b"))
    snippet = re.sub(r"(?m)^    server 10\.0\.0\.\d+:8000;\n", "", snippet)
    snippet = snippet.replace("hash $tus_upload consistent;\n", f"hash $tus_upload consistent;\n{servers}\n")
    snippet = snippet.replace("listen 80;", f"listen 127.0.0.1:{port};")
    (tmp_path / "tus.conf").write_text(snippet)
    (tmp_path / "logs").mkdir()
    (tmp_path / "nginx.conf").write_text(
        "worker_processes 1;\npid nginx.pid;\nerror_log logs/error.log;\nevents {}\n"
        "http {\n  access_log logs/access.log;\n  client_body_temp_path body;\n  proxy_temp_path proxy;\n"
        "  include tus.conf;\n}\n"
    )
    process = subprocess.Popen(
        [binary, "-p", str(tmp_path), "-c", "nginx.conf", "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}/files/"

    def answers() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"nginx exited: {process.stderr.read().decode() if process.stderr else ''}")
        try:
            return requests.options(url, timeout=2).status_code == 204
        except requests.ConnectionError:
            return False

    try:
        wait_until(answers, 20, "nginx to answer")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_nginx_example_keeps_each_upload_on_one_node(nodes: Cluster, nginx: str) -> None:
    """Each upload takes several PATCHes (3,000,000-byte chunks, 5 MiB parts)
    with tails on local disk: a PATCH routed to the other node would be refused
    with tus_tail_missing and the client would fail."""
    sessions = []
    for seed in range(4):
        data = payload(PART + MiB + seed * 99_991, seed=300 + seed)
        uploader = tus_client.TusClient(nginx).uploader(file_stream=io.BytesIO(data), chunk_size=3_000_000)
        uploader.upload()
        session_id = session_id_of(uploader.url)
        sessions.append(session_id)
        assert nodes.row(session_id)["tail_node"] in ("node-a", "node-b")
        nodes.assert_complete(session_id, data)
    # The nodes are shared with other tests, some of which misroute on purpose.
    for name in ("node-a", "node-b"):
        refused = [line for line in nodes[name].log_text().splitlines() if "tus_tail_missing" in line]
        assert not [line for line in refused if any(session_id in line for session_id in sessions)]
