"""Fast bulk writes for the hot bulk paths (case import, phone registry sync).

Django's `bulk_create` and `bulk_update` spend most of their time in Python building SQL: per value they
walk the field's preparation chain, and `bulk_update` builds a `CASE WHEN pk=… THEN …` expression per
row and field, which made re-importing 100,000 cases take minutes. These helpers send the same values
(prepared by the same field methods, so what lands in the database is identical) through
`cursor.executemany` with one plain statement per row shape. They skip what the bulk paths do not use:
signals, `pre_save` (no auto_now fields are written here) and reading back primary keys.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from django.db import connection, models

# Fields whose Python values the database drivers take as they are (Django's preparation returns them
# unchanged); every other field (datetimes, JSON, ...) goes through `get_db_prep_save`.
_PASS_THROUGH = {
    "AutoField",
    "BigAutoField",
    "BigIntegerField",
    "BooleanField",
    "CharField",
    "ForeignKey",
    "IntegerField",
    "PositiveIntegerField",
    "SlugField",
    "SmallIntegerField",
    "TextField",
}
_CHUNK = 1000


class _Preparer:
    """Prepares values for one field; datetimes repeat within a batch (one `now`), so they are memoized."""

    def __init__(self, field: models.Field):
        self.field = field
        self.pass_through = field.get_internal_type() in _PASS_THROUGH
        self.memo: dict[Any, Any] = {}

    def __call__(self, value: Any) -> Any:
        if value is None or (self.pass_through and isinstance(value, str | int | bool)):
            return value
        if isinstance(value, dict | list):  # JSON: unhashable, prepared every time
            return self.field.get_db_prep_save(value, connection)
        try:
            return self.memo[value]
        except KeyError:
            prepared = self.memo[value] = self.field.get_db_prep_save(value, connection)
            return prepared
        except TypeError:  # unhashable value of some other kind
            return self.field.get_db_prep_save(value, connection)


def insert_rows(model: type[models.Model], rows: Sequence[Mapping[str, Any]]) -> None:
    """INSERT one row per mapping of {attname: value}; missing fields get the field's default."""
    if not rows:
        return
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    preparers = [_Preparer(f) for f in fields]
    # What Model() would set for a field the row does not name; a callable default (a fresh id) is
    # called per row.
    defaults = [f.get_default if callable(f.default) else f.get_default() for f in fields]
    table = connection.ops.quote_name(model._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    sql = f"INSERT INTO {table} ({columns}) VALUES ({', '.join(['%s'] * len(fields))})"
    params: list[list[Any]] = []
    for row in rows:
        values = []
        for f, prep, default in zip(fields, preparers, defaults, strict=True):
            if f.attname in row:
                value = row[f.attname]
            else:
                value = default() if callable(default) else default
            values.append(prep(value))
        params.append(values)
    with connection.cursor() as cur:
        for i in range(0, len(params), _CHUNK):
            cur.executemany(sql, params[i : i + _CHUNK])


def update_rows(objs: Iterable[models.Model], field_names: Sequence[str]) -> None:
    """UPDATE these fields of each object, by primary key (what `bulk_update` does, minus its cost)."""
    objs = list(objs)
    if not objs:
        return
    meta = objs[0]._meta
    fields = [meta.get_field(n) for n in field_names]
    preparers = [_Preparer(f) for f in fields]
    table = connection.ops.quote_name(meta.db_table)
    sets = ", ".join(f"{connection.ops.quote_name(f.column)} = %s" for f in fields)
    sql = f"UPDATE {table} SET {sets} WHERE {connection.ops.quote_name(meta.pk.column)} = %s"
    params = [
        [prep(getattr(obj, f.attname)) for f, prep in zip(fields, preparers, strict=True)] + [obj.pk] for obj in objs
    ]
    with connection.cursor() as cur:
        for i in range(0, len(params), _CHUNK):
            cur.executemany(sql, params[i : i + _CHUNK])
