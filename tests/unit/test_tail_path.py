"""Where a tail file lives, and what the cross-node guard's error says."""

from __future__ import annotations

from pathlib import Path

import pytest

from rindle_tus.exceptions import TusTailMissing
from rindle_tus.storage import tus_tail_path


def test_tail_missing_error_carries_session_and_nodes() -> None:
    error = TusTailMissing("abc", "node-b", "node-a", "the tail file is absent")
    assert error.status == 503
    assert error.code == "tus_tail_missing"
    assert "node-a" in str(error) and "node-b" in str(error) and "abc" in str(error)


@pytest.mark.parametrize(
    ("session_id", "name"),
    [
        ("abc", "YWJj"),
        ("a/b", "YS9i"),
        ("a+b", "YSti"),
        ("~~~", "fn5-"),
        ("???", "Pz8_"),
        ("../x", "Li4veA"),
        ("a b", "YSBi"),
        ("ü/ß", "w7wvw58"),
        ("\x00", "AA"),
    ],
)
def test_tail_path_exact_form(session_id: str, name: str, tmp_path: Path) -> None:
    path = tus_tail_path(session_id, root=tmp_path)
    assert path == tmp_path / "tus" / f"{name}.tail"
    assert path.parent == tmp_path / "tus"


def test_tail_path_defaults_to_the_tmp_dir_setting(settings: object, tmp_path: Path) -> None:
    settings.RINDLE_TUS_TMP_DIR = str(tmp_path)  # type: ignore[attr-defined]
    assert tus_tail_path("abc") == tmp_path / "tus" / "YWJj.tail"
