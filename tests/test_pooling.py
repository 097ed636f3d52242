"""A request reading a body holds no pooled database connection (PostgreSQL's
pool, Django 5.1+): a few slow bodies cannot take the pool from the rest of
the site."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import django
import pytest
from django.db import connection

from rindle_tus import pooling
from rindle_tus.body import Body

from .conftest import S3, TusClient, payload, session_for, sha256

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql" or django.VERSION < (5, 1),
        reason="Django's connection pool is PostgreSQL's, from Django 5.1 (the suite's PostgreSQL run has it)",
    ),
]

MiB = 1024 * 1024


@pytest.fixture
def pooled(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A second connection to the test database, through a pool of one, in
    the place of the connection rindle_tus releases."""
    from django.db.backends.postgresql.base import DatabaseWrapper

    pool = {"min_size": 1, "max_size": 1, "timeout": 5}
    wrapper = DatabaseWrapper({**connection.settings_dict, "CONN_MAX_AGE": 0, "OPTIONS": {"pool": pool}}, "pooled")
    monkeypatch.setattr(pooling, "connection", wrapper)
    yield wrapper
    wrapper.close()
    wrapper.close_pool()


def test_release_returns_an_open_pooled_connection_to_its_pool(pooled: Any) -> None:
    pooled.ensure_connection()
    assert pooled.pool.get_stats().get("pool_available", 0) == 0
    pooling.release()
    assert pooled.connection is None
    assert pooled.pool.get_stats()["pool_available"] == 1


def test_release_keeps_the_connection_of_an_open_transaction(pooled: Any) -> None:
    pooled.ensure_connection()
    pooled.in_atomic_block = True  # what transaction.atomic() sets on its connection
    try:
        pooling.release()
        assert pooled.connection is not None
    finally:
        pooled.in_atomic_block = False


def test_release_leaves_a_persistent_connection_open(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pooling, "connection", connection)
    connection.ensure_connection()
    pooling.release()
    assert connection.connection is not None


def test_a_patch_holds_no_pooled_connection_while_it_reads_the_body(
    pooled: Any, tus: TusClient, s3: S3, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.RINDLE_TUS_READ_CHUNK_SIZE = 256 * 1024
    held_at_read: list[bool] = []
    read = Body.read

    def watched(self: Body, size: int) -> bytes:
        held_at_read.append(pooled.connection is not None)
        pooled.ensure_connection()  # as a query between two reads would
        return read(self, size)

    monkeypatch.setattr(Body, "read", watched)
    data = payload(3 * MiB, seed=41)
    url = tus.upload(data, chunk=len(data))
    assert len(held_at_read) >= 12
    assert not any(held_at_read)
    assert s3.sha256(session_for(url).key) == sha256(data)
