"""``UPDATE ... RETURNING`` for one row: written and read back in one round
trip to the database, which Django's ORM does not offer.

The UPDATE is compiled by Django from a queryset and its values (so
expressions such as ``Now()`` and ``F()`` keep their meaning on every
database), then asked for every column of the model, and the row comes back
as a model instance, converted as a SELECT would convert it.

PostgreSQL and SQLite (3.35 and later) have it; elsewhere ``supported`` is
False and the caller writes and reads in two statements.
"""

from __future__ import annotations

from typing import Any, TypeVar, cast

from django.db import connections
from django.db.models import Model, QuerySet
from django.db.models.sql import UpdateQuery

M = TypeVar("M", bound=Model)


def supported(using: str) -> bool:
    connection = connections[using]
    if connection.vendor == "postgresql":
        return True
    # SQLite's RETURNING came with 3.35, as for INSERT (MySQL and MariaDB have none for UPDATE).
    return connection.vendor == "sqlite" and bool(connection.features.can_return_columns_from_insert)


def update_returning(rows: QuerySet[M], pk: Any, values: dict[str, Any]) -> M | None:
    """Write ``values`` to the row of primary key ``pk``, if it meets the
    conditions of ``rows`` too, and return it as it now is; None if it does
    not (or is not there). Only where ``supported``."""
    rows = rows.filter(pk=pk)
    model = rows.model
    connection = connections[rows.db]
    query = cast(UpdateQuery, rows.query.chain(UpdateQuery))
    query.add_update_values(values)
    sql, params = query.get_compiler(rows.db).as_sql()
    fields = model._meta.concrete_fields
    quote = connection.ops.quote_name
    # A concrete field always has its column.
    columns = ", ".join(quote(cast(str, field.column)) for field in fields)
    with connection.cursor() as cursor:
        cursor.execute(f"{sql} RETURNING {columns}", params)
        found = cursor.fetchone()
    if found is None:
        return None
    values_read = []
    for field, value in zip(fields, found, strict=True):
        column = field.get_col(model._meta.db_table)
        for convert in (*connection.ops.get_db_converters(column), *column.get_db_converters(connection)):
            value = convert(value, column, connection)
        values_read.append(value)
    return model.from_db(rows.db, [field.attname for field in fields], values_read)
