"""An upload folder (RINDLE_TUS_TMP_DIR) this process cannot write: a clear
500 that names it, never a traceback, nothing changed; the upload resumes
once the folder is fixed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .conftest import S3, TusClient, payload, session_for, sha256

pytestmark = pytest.mark.django_db(transaction=True)

MiB = 1024 * 1024


def _break(settings: Any, tmp_path: Path) -> Path:
    """A folder under a plain file: it cannot be made, whoever the user (root too)."""
    (tmp_path / "not-a-folder").write_bytes(b"")
    broken = tmp_path / "not-a-folder" / "uploads"
    settings.RINDLE_TUS_TMP_DIR = str(broken)
    return broken


def _error(response: Any) -> tuple[str, str]:
    code, _, message = response.content.decode().partition(": ")
    return code, message


def test_an_unwritable_upload_folder_is_a_500_naming_it_and_the_upload_resumes(
    tus: TusClient, s3: S3, settings: Any, tmp_path: Path, tail_root: Path
) -> None:
    # The body does not fill a part: it would become the tail file.
    settings.RINDLE_TUS_PART_SIZE = 5 * MiB
    data = payload(7 * MiB, seed=17)
    url = tus.new(len(data))
    broken = _break(settings, tmp_path)

    response = tus.patch(url, data[: 2 * MiB], 0)
    assert response.status_code == 500
    code, message = _error(response)
    assert code == "tmp_dir_unwritable"
    assert str(broken) in message
    assert tus.head(url)["Upload-Offset"] == "0"

    settings.RINDLE_TUS_TMP_DIR = str(tail_root)
    assert tus.patch(url, data, 0).status_code == 204
    assert s3.sha256(session_for(url).key) == sha256(data)
