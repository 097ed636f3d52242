"""The unit layer: the pure parts of rindle_tus, with no service at all.

No test here may ask for a service fixture (collection fails if one does),
pytest-django refuses database access to tests without the ``django_db``
mark (collection fails on the mark too), and any network connection fails
the test that makes it.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
# Fixtures that start or reach a service (tests/conftest.py, pytest-django).
SERVICE_FIXTURES = frozenset(
    (
        *("s3", "s3_endpoint", "s3_storages", "tus", "live_tus", "live_server", "cluster", "nodes"),
        *("db", "transactional_db", "django_db_reset_sequences", "django_db_serialized_rollback", "django_db_setup"),
        *("client", "admin_client", "admin_user", "django_user_model"),
    )
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    offenders = []
    for item in items:
        if HERE not in item.path.parents:
            continue
        services = sorted(SERVICE_FIXTURES.intersection(getattr(item, "fixturenames", ())))
        if item.get_closest_marker("django_db"):
            services.append("the django_db mark")
        if services:
            offenders.append(f"{item.nodeid} uses {', '.join(services)}")
    if offenders:
        raise pytest.UsageError(
            "tests/unit is for tests that need no service; move these out of it:\n  " + "\n  ".join(offenders)
        )


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """A connection to anything (S3, Redis, a server on this machine) fails the test."""

    def refuse(self: socket.socket, address: Any) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            raise AssertionError(f"a unit test connected to {address!r}; it belongs outside tests/unit")
        original(self, address)

    def refuse_ex(self: socket.socket, address: Any) -> int:
        refuse(self, address)
        return original_ex(self, address)

    original, original_ex = socket.socket.connect, socket.socket.connect_ex
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse_ex)
