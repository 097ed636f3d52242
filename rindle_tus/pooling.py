"""A request reading a client's body gives its pooled database connection back.

With Django's connection pool (PostgreSQL's ``OPTIONS["pool"]``, Django 5.1+,
what Django recommends under ASGI), a connection is taken at a request's first
query and returned only when the request ends. A PATCH spends nearly all its
life waiting for the client, so a few slow bodies would hold the whole pool and
every other request of the process would wait for a connection. Between its
queries, a PATCH holds none: the next query takes one from the pool again,
which costs microseconds, not a new connection.
"""

from __future__ import annotations

from django.db import connection


def release() -> None:
    """Return this thread's connection to its pool, if it is pooled, open and
    not inside a transaction. Without a pool nothing happens: closing would
    throw away a persistent connection and pay for a new one."""
    if getattr(connection, "pool", None) is None or connection.connection is None:
        return
    if connection.in_atomic_block:
        return
    connection.close()
