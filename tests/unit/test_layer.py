"""The unit layer's own guards: no service fixture, no django_db mark, no network."""

from __future__ import annotations

import socket
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from . import conftest


def _item(path: Path, *fixtures: str, marked: bool = False) -> Any:
    return SimpleNamespace(
        path=path,
        nodeid=f"{path.name}::test",
        fixturenames=["request", "settings", *fixtures],
        get_closest_marker=lambda name: object() if marked and name == "django_db" else None,
    )


@pytest.mark.parametrize("fixture", ["s3", "db", "tus", "live_server", "cluster", "transactional_db"])
def test_a_unit_test_asking_for_a_service_fails_collection(fixture: str) -> None:
    item = _item(conftest.HERE / "test_x.py", fixture)
    with pytest.raises(pytest.UsageError, match=f"test_x.py::test uses {fixture}"):
        conftest.pytest_collection_modifyitems(None, [item])


def test_a_unit_test_with_the_django_db_mark_fails_collection() -> None:
    item = _item(conftest.HERE / "test_x.py", marked=True)
    with pytest.raises(pytest.UsageError, match="the django_db mark"):
        conftest.pytest_collection_modifyitems(None, [item])


def test_tests_outside_the_layer_may_use_services() -> None:
    items = [_item(conftest.HERE.parent / "test_x.py", "s3", "db", marked=True), _item(conftest.HERE / "t.py")]
    conftest.pytest_collection_modifyitems(None, items)


def test_a_network_connection_fails_the_test() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        with pytest.raises(AssertionError, match="belongs outside tests/unit"):
            sock.connect(("127.0.0.1", 9))
        with pytest.raises(AssertionError, match="belongs outside tests/unit"):
            sock.connect_ex(("127.0.0.1", 9))
    with pytest.raises(AssertionError, match="belongs outside tests/unit"):
        socket.create_connection(("127.0.0.1", 9), timeout=1)
