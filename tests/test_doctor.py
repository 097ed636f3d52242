"""``manage.py rindle_tus_doctor`` and ``check --deploy`` against the real S3:
a working set-up passes and leaves nothing behind; a missing bucket or an
unwritable upload folder fails loudly, naming what to fix; and a PATCH the
bucket refuses logs an error that names the bucket."""

from __future__ import annotations

import copy
import io
import logging
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from .conftest import S3, TusClient

pytestmark = pytest.mark.django_db(transaction=True)


def _doctor() -> tuple[str, str, CommandError | None]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("rindle_tus_doctor", stdout=out, stderr=err)
    except CommandError as exc:
        return out.getvalue(), err.getvalue(), exc
    return out.getvalue(), err.getvalue(), None


@pytest.fixture
def missing_bucket(settings: Any, s3_storages: dict[str, Any]) -> str:
    storages = copy.deepcopy(s3_storages)
    storages["default"]["OPTIONS"]["bucket_name"] = "rindle-no-such-bucket"
    settings.STORAGES = storages
    return "rindle-no-such-bucket"


def test_a_working_set_up_passes_every_step_and_leaves_nothing(s3: S3, tail_root: Path) -> None:
    out, err, failed = _doctor()
    assert failed is None, err
    steps = [line.split(":")[0] for line in out.splitlines()[:-1]]
    assert steps == ["ok    settings", "ok    upload folder", "ok    bucket", "ok    multipart upload",
                     "ok    read", "ok    delete"]
    assert out.splitlines()[-1] == "Uploads can be taken here."
    listed = s3.client.list_objects_v2(Bucket=s3.bucket).get("Contents", [])
    assert [o["Key"] for o in listed if "rindle-tus-doctor" in o["Key"]] == []
    assert [u for u in s3.multipart_uploads() if "rindle-tus-doctor" in u["Key"]] == []


def test_a_missing_bucket_fails_naming_it(s3: S3, tail_root: Path, missing_bucket: str,
                                          caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="rindle_tus"):
        out, err, failed = _doctor()
    assert [r.getMessage() for r in caplog.records] == []  # said once, in the step's line
    assert failed is not None and "bucket" in str(failed)
    assert f"FAIL  bucket: bucket {missing_bucket!r} at {s3.endpoint}" in err
    assert "ok    upload folder" in out
    assert "multipart" not in out + err  # nothing is tried past the first failure


def test_an_unwritable_upload_folder_fails(s3: S3, settings: Any, tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    settings.RINDLE_TUS_TMP_DIR = str(tmp_path / "file" / "uploads")
    _, err, failed = _doctor()
    assert failed is not None and "upload folder" in str(failed)
    assert "rindle_tus.E020" in err


def test_check_deploy_reports_the_missing_bucket(s3: S3, tail_root: Path, missing_bucket: str) -> None:
    from django.core.management.base import SystemCheckError

    with pytest.raises(SystemCheckError) as raised:
        call_command("check", "--deploy", "--tag", "rindle_tus", stdout=io.StringIO(), stderr=io.StringIO())
    assert "rindle_tus.E021" in str(raised.value)
    assert missing_bucket in str(raised.value)


def test_check_deploy_passes_with_a_working_bucket(s3: S3, tail_root: Path) -> None:
    out = io.StringIO()
    call_command("check", "--deploy", "--tag", "rindle_tus", stdout=out, stderr=io.StringIO())
    assert "no issues" in out.getvalue()


def test_a_patch_the_bucket_refuses_is_logged_naming_the_bucket(
    tus: TusClient, missing_bucket: str, caplog: pytest.LogCaptureFixture
) -> None:
    url = tus.new(10)
    with caplog.at_level(logging.ERROR, logger="rindle_tus"):
        response = tus.patch(url, b"0123456789", 0)
    assert response.status_code == 502
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any(repr(missing_bucket) in message and "rindle_tus_doctor" in message for message in errors), errors
    assert tus.head(url)["Upload-Offset"] == "0"
