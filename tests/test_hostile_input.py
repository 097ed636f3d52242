"""Hostile input on every header the protocol reads, on upload ids and on
bodies: each is answered with a 4xx carrying its reason (never a 500), no
stored state changes (rows, S3, files) and no file outside the tail root is
touched. Most run in-process; the forms only a real HTTP server sees
(repeated headers, raw paths, chunked bodies) run against a gunicorn node.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from rindle_tus.models import TusSession

from . import cluster as live
from .conftest import PART, S3, MiB, TusClient, payload, session_for, sha256

OFFSET_TYPE = "application/offset+octet-stream"

# Values no non-negative decimal header may take. None equals an offset or
# length used below.
BAD_INTEGERS = [
    "-1", "-0", "+1", "1.0", "1e3", "0x10", "0o7", "1_000", " ", "\t", "abc", "NaN", "inf", "-inf",
    "9223372036854775808", "18446744073709551616", "99999999999999999999", "1" * 100, "1" * 5000,
    "\uff11\uff12", "\u0661\u0662", "\u00b2", "1,1", "1, 1", "1 2", "1\x00", "\x00", "0\r\n", "1;", "\u202e1",
    "\U0001d7cf",
]
BAD_VERSIONS = [
    "", "1.0", "0.2.2", "1.0.0.0", "1.0.1", "2.0.0", "1.0.0,1.0.0", "\uff11.0.0", "1.0.0\x00", "\u202e1.0.0",
    "1.0.0;q=1", "v1.0.0", "1" * 5000,
]
BAD_DEFER = ["0", "2", "true", "yes", "1.0", "-1", "1,1", "01", "\uff11", "", "1\x00", "9" * 40]
BAD_METADATA = [
    "key !!!!", "key YQ", "key YQ=", "key YQ===", "key Y Q==", "key YQ== extra", " , ", "a YQ==,a Yg==", "a,a",
    "k\x00ey YQ==", "\u043a\u043b\u044e\u0447 YQ==", "key\tYQ==", ",", ",,", "a YQ==,", "key YQ==\x00",
    "key \uff39\uff31==", "\U0001f511 YQ==", "k " + base64.b64encode(b"x" * 9000).decode(), "k" * 9000,
    "a YQ==," * 3000,
]
MALFORMED_CHECKSUMS = [
    "sha1", "sha1 ", "md4 YQ==", "sha1 !!!", "sha1 YQ", "SHA1 x", "sha1 YQ== extra", "", " ", "sha1\tYQ==",
    "\uff53\uff48\uff41\uff11 YQ==", "sha1 YQ==\x00", "crc32 " + "=" * 8,
]
# Well-formed, but not the digest of the body sent.
WRONG_CHECKSUMS = [
    "crc32 AAAAAA==", "sha1 " + base64.b64encode(hashlib.sha1(b"other").digest()).decode(),
    "sha256 " + base64.b64encode(hashlib.sha256(b"other").digest()).decode(),
    "md5 " + base64.b64encode(b"\x00" * 16).decode(), "sha1 " + "A" * 10000,
]
BAD_CONCAT = [
    "", "partia", "Partial", "PARTIAL", "final", "final;", "final; ", "final;/files/nope", "partial;final",
    "partial,partial", "final;/files/../../etc/passwd", "final;http://evil.example/files/abcdefghijklmnopqrst",
    "final;/files/%2e%2e%2f%2e%2e%2fetc%2fpasswd", "final;file:///etc/passwd",
    "final;/admin/", "final;" + "/files/x " * 2000, "\uff50\uff41\uff52\uff54\uff49\uff41\uff4c",
]
BAD_OVERRIDES = [
    "TRACE", "CONNECT", "PUT", "FOO", "P ATCH", "PATCH\x00", "\uff30\uff21\uff34\uff23\uff28", "\x00",
    "PATCH,DELETE", "X" * 5000,
]
BAD_CONTENT_TYPES = [
    "", "application/octet-stream", "text/plain", "application/offset+octet-stream+x", "application/offset",
    "multipart/form-data; boundary=x", "application/x-www-form-urlencoded", "application/offset+octet-stream\x00",
    "application/offset-octet-stream", "*/*",
    "\uff41\uff50\uff50\uff4c\uff49\uff43\uff41\uff54\uff49\uff4f\uff4e/offset+octet-stream",
]
BAD_CONTENT_LENGTHS = [*(v for v in BAD_INTEGERS if v.strip()), "9223372036854775807", str(10 * PART)]


def _bad_ids(real: str) -> list[str]:
    return [
        "..", "../", "../../etc/passwd", "%2e%2e", "%2e%2e%2f%2e%2e%2fetc%2fpasswd", "a%2Fb", "a/b", "%00",
        "abc%00def", "\u00e9" * 20, "\U0001f4a5" * 16, "A" * 65, "A" * 15, "A" * 10000, f"{real}/", f"{real}/..",
        f"{real}%00", f"{real}%2F..", f"/{real}", f"{real}%20", f"..%2F{real}", f"{real}/../{real}", f"{real[:-1]}.",
        f"{real[:-1]}{'A' if real[-1] != 'A' else 'B'}", "%252e%252e", "\\..\\..\\windows", "~root", "$(id)",
        "%ff%fe", "%c0%ae%c0%ae",
    ]


def _digest(path: Path) -> bytes:
    return hashlib.sha256(path.read_bytes()).digest()


@dataclass
class Probe:
    """Sends one hostile request and checks what it left behind."""

    tus: TusClient
    s3: S3
    root: Path
    tried: int = 0
    failures: list[str] = field(default_factory=list)

    # The state after the last check: the next one starts from it unless the
    # rows or files differ (the test itself wrote between the two), which
    # saves listing the bucket twice a request.
    last: tuple[Any, ...] | None = None

    def local_state(self) -> tuple[Any, ...]:
        # Every field but the lease's epoch, which moves on with each request
        # that takes the lease (so that an older request cannot take it after).
        fields = [f.name for f in TusSession._meta.concrete_fields if f.name != "lease_epoch"]
        rows = list(TusSession.objects.order_by("pk").values(*fields))
        files = sorted(
            (str(p.relative_to(self.root)), p.stat().st_size, p.stat().st_mtime_ns, _digest(p))
            for p in self.root.rglob("*")
            if p.is_file()
        )
        dirs = sorted(str(p.relative_to(self.root)) for p in self.root.rglob("*") if p.is_dir())
        return rows, files, dirs

    def state(self, local: tuple[Any, ...] | None = None) -> tuple[Any, ...]:
        client, bucket = self.s3.client, self.s3.bucket
        objects = sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", []))
        uploads = sorted(u["UploadId"] for u in self.s3.multipart_uploads())
        return (*(local or self.local_state()), objects, uploads)

    def state_before(self) -> tuple[Any, ...]:
        local = self.local_state()
        if self.last is not None and self.last[:3] == local:
            return self.last
        return self.state(local)

    def check(self, label: str, method: str, path: str, headers: dict[str, str], body: bytes = b"",
              content_type: str = OFFSET_TYPE, **environ: str) -> None:
        self.tried += 1
        before = self.state_before()
        self.last = None
        try:
            response = self.tus.client.generic(method, path, body, content_type=content_type, headers=headers,
                                               **environ)
        except Exception as exc:  # noqa: BLE001
            self.failures.append(f"{label}: raised {exc!r}")
            return
        status = response.status_code
        text = response.content.decode("utf-8", "replace")
        if not 400 <= status < 500:
            self.failures.append(f"{label}: {status} {text[:200]!r}")
        elif method != "HEAD" and not text.strip():
            self.failures.append(f"{label}: {status} without a reason")
        self.last = self.state()
        if self.last != before:
            self.failures.append(f"{label}: {status} changed the stored state")

    def assert_clean(self) -> None:
        assert self.failures == [], "\n".join(self.failures)


@pytest.fixture
def probe(tus: TusClient, s3: S3, tail_root: Path) -> Probe:
    # Something outside the tail root that nothing may touch.
    outside = tail_root.parent / "outside"
    outside.mkdir()
    (outside / "sentinel").write_bytes(b"keep")
    return Probe(tus, s3, tail_root.parent)


@dataclass
class InFlight:
    """An upload under way: a multipart upload, 1 MiB in the tail."""

    tus: TusClient
    s3: S3
    url: str
    data: bytes

    def assert_completes_byte_exact(self) -> None:
        """After all the hostile input, the upload still finishes exactly."""
        offset = int(self.tus.head(self.url)["Upload-Offset"])
        assert offset == MiB
        assert self.tus.patch(self.url, self.data[offset:], offset).status_code == 204
        assert self.s3.sha256(session_for(self.url).key) == sha256(self.data)


@pytest.fixture
def upload(tus: TusClient, s3: S3) -> InFlight:
    data = payload(PART + 3 * MiB)
    url = tus.new(len(data))
    assert tus.patch(url, data[:MiB], 0).status_code == 204
    return InFlight(tus, s3, url, data)


def _tus(**headers: str) -> dict[str, str]:
    return {"Tus-Resumable": "1.0.0", **headers}


def test_hostile_tus_resumable_is_refused_and_changes_nothing(probe: Probe, upload: InFlight) -> None:
    for value in BAD_VERSIONS:
        probe.check(f"POST {value!r}", "POST", "/files/", {"Tus-Resumable": value, "Upload-Length": "10"},
                    content_type="")
        probe.check(f"PATCH {value!r}", "PATCH", upload.url, {"Tus-Resumable": value, "Upload-Offset": str(MiB)}, b"x")
        probe.check(f"DELETE {value!r}", "DELETE", upload.url, {"Tus-Resumable": value}, content_type="")
        probe.check(f"HEAD {value!r}", "HEAD", upload.url, {"Tus-Resumable": value}, content_type="")
    probe.check("missing", "DELETE", upload.url, {}, content_type="")
    probe.assert_clean()
    upload.assert_completes_byte_exact()


def test_hostile_upload_offset_is_refused_and_changes_nothing(probe: Probe, upload: InFlight) -> None:
    for value in [*BAD_INTEGERS, str(MiB - 1), str(MiB + 1), "0", "9223372036854775807"]:
        probe.check(f"{value!r}", "PATCH", upload.url, _tus(**{"Upload-Offset": value}), b"x" * 1000)
    probe.check("missing", "PATCH", upload.url, _tus(), b"x" * 1000)
    probe.assert_clean()
    upload.assert_completes_byte_exact()


def test_hostile_upload_length_on_creation_creates_nothing(probe: Probe) -> None:
    for value in [*BAD_INTEGERS, "9223372036854775807", str(5 * 1024**4 + 1)]:
        probe.check(f"{value!r}", "POST", "/files/", _tus(**{"Upload-Length": value}), content_type="")
    probe.check("with defer", "POST", "/files/", _tus(**{"Upload-Length": "10", "Upload-Defer-Length": "1"}),
                content_type="")
    probe.check("neither", "POST", "/files/", _tus(), content_type="")
    probe.assert_clean()


def test_hostile_upload_length_on_patch_changes_nothing(probe: Probe, upload: InFlight, tus: TusClient) -> None:
    deferred = tus.new(None)
    assert tus.patch(deferred, payload(MiB), 0).status_code == 204
    for value in BAD_INTEGERS:
        headers = _tus(**{"Upload-Offset": str(MiB), "Upload-Length": value})
        probe.check(f"fixed {value!r}", "PATCH", upload.url, headers, b"x")
        probe.check(f"deferred {value!r}", "PATCH", deferred, headers, b"x")
    probe.check("changed", "PATCH", upload.url, _tus(**{"Upload-Offset": str(MiB), "Upload-Length": "12345678"}), b"x")
    probe.check("below offset", "PATCH", deferred, _tus(**{"Upload-Offset": str(MiB), "Upload-Length": "10"}), b"x")
    probe.assert_clean()
    upload.assert_completes_byte_exact()


def test_hostile_upload_defer_length_creates_nothing(probe: Probe) -> None:
    for value in BAD_DEFER:
        probe.check(f"{value!r}", "POST", "/files/", _tus(**{"Upload-Defer-Length": value}), content_type="")
    probe.assert_clean()


def test_hostile_upload_metadata_creates_nothing(probe: Probe) -> None:
    for value in BAD_METADATA:
        probe.check(f"{value[:40]!r}", "POST", "/files/", _tus(**{"Upload-Length": "10", "Upload-Metadata": value}),
                    content_type="")
    probe.assert_clean()


def test_hostile_upload_checksum_on_patch_keeps_nothing(probe: Probe, upload: InFlight) -> None:
    for value in MALFORMED_CHECKSUMS + WRONG_CHECKSUMS:
        headers = _tus(**{"Upload-Offset": str(MiB), "Upload-Checksum": value})
        probe.check(f"{value[:40]!r}", "PATCH", upload.url, headers, b"y" * 1000)
    probe.assert_clean()
    upload.assert_completes_byte_exact()


def test_malformed_upload_checksum_on_creation_with_upload_creates_nothing(probe: Probe) -> None:
    for value in MALFORMED_CHECKSUMS:
        probe.check(f"{value[:40]!r}", "POST", "/files/", _tus(**{"Upload-Length": "10", "Upload-Checksum": value}),
                    b"0123456789")
    probe.assert_clean()


def test_wrong_upload_checksum_on_creation_with_upload_creates_nothing(probe: Probe) -> None:
    for value in WRONG_CHECKSUMS:
        probe.check(f"{value[:40]!r}", "POST", "/files/", _tus(**{"Upload-Length": "10", "Upload-Checksum": value}),
                    b"0123456789")
    probe.assert_clean()


def test_hostile_upload_concat_creates_nothing(probe: Probe, upload: InFlight) -> None:
    not_partial = f"final;{upload.url}"
    for value in [*BAD_CONCAT, not_partial, f"{not_partial} {upload.url}"]:
        headers = _tus(**{"Upload-Concat": value})
        probe.check(f"{value[:40]!r}", "POST", "/files/", headers, content_type="")
        probe.check(f"{value[:40]!r} with length", "POST", "/files/", {**headers, "Upload-Length": "10"},
                    content_type="")
    probe.assert_clean()
    upload.assert_completes_byte_exact()


def test_upload_concat_naming_an_id_with_nul_is_refused(probe: Probe) -> None:
    for value in ["final;/files/\x00", "final;/files/%00", "final;/files/abcdefghijklmnop%00qrstuvwxyz"]:
        probe.check(f"{value!r}", "POST", "/files/", _tus(**{"Upload-Concat": value}), content_type="")
    probe.assert_clean()


def test_hostile_method_override_is_refused_and_changes_nothing(probe: Probe, upload: InFlight) -> None:
    for value in BAD_OVERRIDES:
        header = {"X-HTTP-Method-Override": value}
        probe.check(f"upload {value[:20]!r}", "POST", upload.url, _tus(**header, **{"Upload-Offset": str(MiB)}), b"x")
        probe.check(f"collection {value[:20]!r}", "POST", "/files/", _tus(**header, **{"Upload-Length": "10"}),
                    content_type="")
    probe.check("GET on an unfinished upload", "POST", upload.url, _tus(**{"X-HTTP-Method-Override": "GET"}),
                content_type="")
    for value in ("", "POST", "post"):
        probe.check(f"upload {value!r}", "POST", upload.url, _tus(**{"X-HTTP-Method-Override": value}), content_type="")
    probe.assert_clean()
    upload.assert_completes_byte_exact()


def test_hostile_content_type_on_patch_is_refused_and_changes_nothing(probe: Probe, upload: InFlight) -> None:
    for value in BAD_CONTENT_TYPES:
        probe.check(f"{value!r}", "PATCH", upload.url, _tus(**{"Upload-Offset": str(MiB)}), b"z" * 1000,
                    content_type=value, CONTENT_TYPE=value)
    probe.assert_clean()
    upload.assert_completes_byte_exact()


def test_hostile_content_length_is_refused_and_changes_nothing(probe: Probe, upload: InFlight) -> None:
    for value in BAD_CONTENT_LENGTHS:
        probe.check(f"{value[:30]!r}", "PATCH", upload.url, _tus(**{"Upload-Offset": str(MiB)}), b"z" * 1000,
                    CONTENT_LENGTH=value)
    probe.assert_clean()
    upload.assert_completes_byte_exact()


def test_body_past_upload_length_is_refused_and_stores_nothing(probe: Probe, tus: TusClient) -> None:
    small = tus.new(MiB + 10)
    assert tus.patch(small, payload(MiB), 0).status_code == 204
    probe.check("PATCH 11 of 10", "PATCH", small, _tus(**{"Upload-Offset": str(MiB)}), b"z" * 11)
    probe.check("PATCH a part past", "PATCH", small, _tus(**{"Upload-Offset": str(MiB)}), b"z" * (PART + 10))
    probe.assert_clean()


def test_creation_with_upload_past_upload_length_creates_nothing(probe: Probe) -> None:
    probe.check("POST 11 of 10", "POST", "/files/", _tus(**{"Upload-Length": "10"}), b"z" * 11)
    probe.check("POST a part past", "POST", "/files/", _tus(**{"Upload-Length": str(PART)}), b"z" * (PART + 1))
    probe.assert_clean()


def test_hostile_upload_ids_are_not_found_and_touch_no_file(probe: Probe, upload: InFlight) -> None:
    real = session_for(upload.url).id
    for bad in _bad_ids(real):
        path = f"/files/{bad}"
        probe.check(f"HEAD {bad[:40]!r}", "HEAD", path, _tus(), content_type="")
        probe.check(f"PATCH {bad[:40]!r}", "PATCH", path, _tus(**{"Upload-Offset": str(MiB)}), b"x")
        probe.check(f"DELETE {bad[:40]!r}", "DELETE", path, _tus(), content_type="")
        probe.check(f"GET {bad[:40]!r}", "GET", path, _tus(), content_type="")
    probe.assert_clean()
    upload.assert_completes_byte_exact()


# -- over HTTP, against a gunicorn node ------------------------------------------------------


@dataclass
class LiveProbe:
    cluster: live.Cluster
    node: live.Node
    tried: int = 0
    failures: list[str] = field(default_factory=list)

    def state(self) -> tuple[Any, ...]:
        root = self.node.tail_root
        files = sorted((str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns)
                       for p in root.rglob("*") if p.is_file())
        return self.cluster.database.count(), files

    def check(self, label: str, session_id: str, target: str, method: str, headers: list[tuple[str, str]],
              body: bytes = b"") -> None:
        self.tried += 1
        before, row = self.state(), self.cluster.row(session_id)
        request = live.RawRequest(self.node.url, method, headers, target=target)
        try:
            request.send(body)
            response = request.response()
        except OSError as exc:
            self.failures.append(f"{label}: connection failed: {exc!r}")
            return
        if not 400 <= response.status_code < 500:
            self.failures.append(f"{label}: {response.status_code} {response.body[:200]!r}")
        elif method != "HEAD" and not response.body.strip():
            self.failures.append(f"{label}: {response.status_code} without a reason")
        if self.state() != before or self.cluster.row(session_id) != row:
            self.failures.append(f"{label}: {response.status_code} changed the stored state")


@pytest.mark.slow
def test_hostile_requests_over_http_are_refused_and_change_nothing(nodes: live.Cluster) -> None:
    node = nodes["node-a"]
    data = payload(MiB + 10)
    url = live.create(node.files_url, len(data))
    session_id = live.session_id_of(url)
    assert live.patch(url, data[:MiB], 0).status_code == 204
    path = f"/files/{session_id}"
    probe = LiveProbe(nodes, node)
    tus = ("Tus-Resumable", "1.0.0")
    ctype = ("Content-Type", OFFSET_TYPE)
    offset = ("Upload-Offset", str(MiB))
    chunked = ("Transfer-Encoding", "chunked")

    def send(label: str, headers: list[tuple[str, str]], body: bytes = b"", method: str = "PATCH",
             target: str = path) -> None:
        probe.check(label, session_id, target, method, headers, body)

    send("repeated Upload-Offset", [tus, ctype, offset, offset, ("Content-Length", "1")], b"x")
    send("repeated Tus-Resumable", [tus, tus], method="DELETE")
    send("repeated Content-Length", [tus, ctype, offset, ("Content-Length", "1"), ("Content-Length", "1")], b"x")
    send("repeated Upload-Length", [tus, ("Upload-Length", "10"), ("Upload-Length", "10")], method="POST",
         target="/files/")
    send("negative Content-Length", [tus, ctype, offset, ("Content-Length", "-1")])
    send("Content-Length and chunked", [tus, ctype, offset, ("Content-Length", "3"), chunked], b"3\r\nabc\r\n0\r\n\r\n")
    send("body past Upload-Length", [tus, ctype, offset, ("Content-Length", "11")], b"z" * 11)
    send("chunked body past Upload-Length", [tus, ctype, offset, chunked], b"b\r\n" + b"z" * 11 + b"\r\n0\r\n\r\n")
    for target in [f"{path}%00", "/files/%00", "/files/..%2f..%2fetc%2fpasswd", f"/files/%2e%2e/{session_id}",
                   f"{path}%2f..", "/files/%c0%ae%c0%ae/", f"{path}/"]:
        send(f"HEAD {target}", [tus], method="HEAD", target=target)
        send(f"DELETE {target}", [tus], method="DELETE", target=target)
        send(f"PATCH {target}", [tus, ctype, offset, ("Content-Length", "1")], b"x", target=target)
    assert probe.failures == [], "\n".join(probe.failures)
    assert live.patch(url, data[MiB:], MiB).status_code == 204
    nodes.assert_complete(session_id, data)
