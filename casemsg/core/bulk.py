"""Fast bulk writes for the hot bulk paths (case import, phone registry sync, queueing broadcasts).

Django's `bulk_create` and `bulk_update` spend most of their time in Python building SQL: per value they
walk the field's preparation chain and render a placeholder, and `bulk_update` builds a
`CASE WHEN pk=… THEN …` expression per row and field, which made re-importing 100,000 cases take
minutes. These helpers send the same values, prepared by the same field methods (so what lands in the
database is identical), in one statement per batch: on PostgreSQL through COPY (psycopg formats the rows
in C; its `executemany` measured slower than `bulk_create` there), on SQLite, which runs in-process,
through `executemany`. They skip what the bulk paths do not use: signals,
`pre_save` (refused for auto_now fields) and reading primary keys back.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, cast

from django.db import DEFAULT_DB_ALIAS, connection, connections, models

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
# update_rows on PostgreSQL: up to this many rows in one UPDATE … FROM (VALUES …), more through COPY.
_VALUES_ROWS = 500


class _Preparer:
    """Prepares values for one field; datetimes repeat within a batch (one `now`), so they are memoized."""

    def __init__(self, field: models.Field[Any, Any]):
        self.field = field
        self.pass_through = field.get_internal_type() in _PASS_THROUGH
        self.memo: dict[Any, Any] = {}
        # The connection itself, not the `connection` proxy: each attribute read through the proxy is a
        # thread-local lookup, and JSON values read several per value.
        self.conn = connections[DEFAULT_DB_ALIAS]

    def __call__(self, value: Any) -> Any:
        if value is None or (self.pass_through and isinstance(value, str | int | bool)):
            return value
        if isinstance(value, dict | list):  # JSON: unhashable, prepared every time
            return self.field.get_db_prep_save(value, self.conn)
        try:
            return self.memo[value]
        except KeyError:
            prepared = self.memo[value] = self.field.get_db_prep_save(value, self.conn)
            return prepared
        except TypeError:  # unhashable value of some other kind
            return self.field.get_db_prep_save(value, self.conn)


def _q(name: str | None) -> str:
    assert name is not None  # a table, or a concrete field's column: never None
    return connection.ops.quote_name(name)


def _constant(value: Any) -> Callable[[], Any]:
    return lambda: value


def _insert(
    meta: Any, fields: list[models.Field[Any, Any]], rows: list[list[Any]], ignore_conflicts: bool = False
) -> None:
    table, columns = _q(meta.db_table), ", ".join(_q(f.column) for f in fields)
    with connection.cursor() as cur:
        if connection.vendor == "postgresql" and ignore_conflicts:
            # COPY cannot skip rows that break a unique constraint: copy into a temporary table shaped like
            # the target, then move the rows over with ON CONFLICT DO NOTHING (still one round of COPY).
            # Only the inserted columns: a copy of the whole table (LIKE) would keep the primary key's NOT NULL
            # without its identity default, and refuse every row.
            digest = hashlib.sha1(columns.encode()).hexdigest()[:10]
            tmp = _q(f"_casemsg_ins_{meta.db_table}_{digest}")
            cur.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS {tmp} AS SELECT {columns} FROM {table} WITH NO DATA")
            cur.execute(f"TRUNCATE {tmp}")
            with connection.wrap_database_errors, cur.cursor.copy(f"COPY {tmp} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            cur.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {tmp} ON CONFLICT DO NOTHING")
            return
        if connection.vendor == "postgresql":
            # COPY: psycopg formats the rows in C (array parameters were dumped in Python, slowly). It
            # bypasses Django's cursor wrapper, so errors are translated to Django's exceptions here.
            with connection.wrap_database_errors, cur.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return
        placeholders = ", ".join(["%s"] * len(fields))
        conflict = " ON CONFLICT DO NOTHING" if ignore_conflicts else ""
        for i in range(0, len(rows), _CHUNK):
            cur.executemany(f"INSERT INTO {table} ({columns}) VALUES ({placeholders}){conflict}", rows[i : i + _CHUNK])


def _insert_fields(meta: Any) -> list[models.Field[Any, Any]]:
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    if any(getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False) for f in fields):
        raise ValueError(f"{meta.label} has auto_now fields, which the bulk helpers do not fill in.")
    return fields


def insert_rows(model: type[models.Model], rows: Sequence[Mapping[str, Any]], ignore_conflicts: bool = False) -> None:
    """INSERT one row per mapping of {attname: value}; a field the row does not name gets what Model()
    would give it (its default; a callable default, such as a fresh id, is called per row). With
    `ignore_conflicts`, a row that would break a unique constraint is skipped (ON CONFLICT DO NOTHING)."""
    if not rows:
        return
    fields = _insert_fields(model._meta)
    preparers = [_Preparer(f) for f in fields]
    defaults: list[Callable[[], Any]] = [
        f.get_default if callable(f.default) else _constant(f.get_default()) for f in fields
    ]
    # A field no row names, with a constant default (or an empty list / dict), is prepared once: a queued
    # message names a third of its columns, and preparing the rest per row was most of this function's time.
    named = set().union(*(row.keys() for row in rows))
    template: list[Any] = [None] * len(fields)
    per_row: list[tuple[int, str, _Preparer, Callable[[], Any]]] = []
    for i, (f, prep, default) in enumerate(zip(fields, preparers, defaults, strict=True)):
        if f.attname not in named and (not callable(f.default) or f.default in (list, dict)):
            template[i] = prep(default())
        else:
            per_row.append((i, f.attname, prep, default))
    params = []
    for row in rows:
        values = template.copy()
        for i, name, prep, default in per_row:
            values[i] = prep(row[name] if name in row else default())
        params.append(values)
    _insert(model._meta, fields, params, ignore_conflicts)


def insert_select(
    model: type[models.Model],
    constants: Mapping[str, Any],
    expressions: Mapping[str, str],
    source: str,
    params: Sequence[Any] = (),
    ignore_conflicts: bool = False,
) -> int:
    """INSERT … SELECT: one row per row of `source` (the SQL after FROM, with its `params`), set-wise in the
    database. `expressions` gives SQL over the source per attname; `constants` a value shared by every row,
    prepared once by the field (as `insert_rows` does); any other field gets its default. Returns the rows
    inserted (with `ignore_conflicts`, those not skipped)."""
    fields = _insert_fields(model._meta)
    pg = connection.vendor == "postgresql"
    select: list[str] = []
    select_params: list[Any] = []
    for f in fields:
        if f.attname in expressions:
            select.append(expressions[f.attname])
            continue
        value = constants[f.attname] if f.attname in constants else f.get_default()
        # PostgreSQL types a bare parameter in a SELECT list as text: cast it to the column's type (SQLite
        # would turn CAST(… AS datetime) into a number, and needs no cast)
        select.append(f"CAST(%s AS {f.db_type(connection)})" if pg else "%s")
        select_params.append(_Preparer(f)(value))
    table, columns = _q(model._meta.db_table), ", ".join(_q(f.column) for f in fields)
    conflict = " ON CONFLICT DO NOTHING" if ignore_conflicts else ""
    with connection.cursor() as cur:
        cur.execute(
            f"INSERT INTO {table} ({columns}) SELECT {', '.join(select)} FROM {source}{conflict}",
            [*select_params, *params],
        )
        return int(cur.rowcount)


def allocate_pks(model: type[models.Model], n: int) -> list[int] | None:
    """On PostgreSQL, take `n` primary keys from the table's sequence (one cheap query), so that rows can
    be inserted with their keys known, instead of being looked up again afterwards. None elsewhere."""
    if connection.vendor != "postgresql" or n <= 0:
        return None
    meta = model._meta
    with connection.cursor() as cur:
        cur.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [meta.db_table, meta.pk.column, n],
        )
        return [row[0] for row in cur.fetchall()]


def insert_objects(objs: Sequence[models.Model]) -> None:
    """INSERT unsaved model instances, as `bulk_create` would, without reading their primary keys back:
    objects that have a primary key (see `allocate_pks`) are inserted with it; for the others a caller that
    needs the keys looks them up by a unique key in one query. All objects must be alike in this."""
    if not objs:
        return
    meta = objs[0]._meta
    fields = _insert_fields(meta)
    if objs[0].pk is not None:
        fields = [meta.pk, *fields]
    preparers = [_Preparer(f) for f in fields]
    params = [[prep(getattr(obj, f.attname)) for f, prep in zip(fields, preparers, strict=True)] for obj in objs]
    _insert(meta, fields, params)


def update_rows(objs: Iterable[models.Model], field_names: Sequence[str]) -> None:
    """UPDATE these fields of each object, by primary key (what `bulk_update` does, minus its cost)."""
    objs = list(objs)
    if not objs:
        return
    meta = objs[0]._meta
    fields = [cast("models.Field[Any, Any]", meta.get_field(n)) for n in field_names]  # concrete fields, not relations
    preparers = [_Preparer(f) for f in fields]
    params = [
        [obj.pk] + [prep(getattr(obj, f.attname)) for f, prep in zip(fields, preparers, strict=True)] for obj in objs
    ]
    table, pk = _q(meta.db_table), _q(meta.pk.column)
    if connection.vendor == "postgresql" and len(objs) <= _VALUES_ROWS:
        # a batch of a worker (inbound messages routed, a window's results): one statement, where the
        # temporary table below takes four round trips
        _update_from_values(objs, fields, preparers, None, "")
        return
    with connection.cursor() as cur:
        if connection.vendor == "postgresql":
            # COPY the new values into a session temp table of the same column types (so an over-long value
            # fails as it would in the table), then one joined UPDATE. Passing the columns as arrays instead
            # spent more time dumping them in Python than PostgreSQL spent updating.
            columns = ", ".join(_q(f.column) for f in [meta.pk, *fields])
            digest = hashlib.sha1(columns.encode()).hexdigest()[:10]
            tmp = _q(f"_bulk_{meta.db_table}_{digest}")
            with connection.wrap_database_errors:
                cur.execute(
                    f"CREATE TEMP TABLE IF NOT EXISTS {tmp} ON COMMIT DELETE ROWS AS "
                    f"SELECT {columns} FROM {table} WITH NO DATA"
                )
                cur.execute(f"TRUNCATE {tmp}")  # an earlier call in this same transaction
                with cur.cursor.copy(f"COPY {tmp} ({columns}) FROM STDIN") as copy:
                    for row in params:
                        copy.write_row(row)
                sets = ", ".join(f"{_q(f.column)} = s.{_q(f.column)}" for f in fields)
                cur.execute(f"UPDATE {table} AS t SET {sets} FROM {tmp} AS s WHERE t.{pk} = s.{pk}")
            return
        sets = ", ".join(f"{_q(f.column)} = %s" for f in fields)
        for i in range(0, len(params), _CHUNK):
            chunk = params[i : i + _CHUNK]
            cur.executemany(f"UPDATE {table} SET {sets} WHERE {pk} = %s", [row[1:] + row[:1] for row in chunk])


def update_held(objs: Sequence[models.Model], field_names: Sequence[str], held_by: str, mark: str) -> set[Any]:
    """UPDATE these fields of each object, by primary key, but only the rows whose column `held_by` still
    holds the object's attribute `mark` (a worker's claim token: a row the sweeper took back is another
    worker's). Returns the primary keys of the rows written. Call inside a transaction.

    On PostgreSQL one statement, `UPDATE … FROM (VALUES …) … RETURNING`: the check and the write are the
    same statement (a row changed meanwhile is re-checked by PostgreSQL and skipped), where a locked
    SELECT, a temporary table's TRUNCATE and COPY, and the UPDATE took five round trips per window. On
    SQLite, which runs in-process and holds the write lock for the whole transaction, one SELECT of the
    marks and one `executemany`."""
    objs = list(objs)
    if not objs:
        return set()
    meta = objs[0]._meta
    fields = [cast("models.Field[Any, Any]", meta.get_field(n)) for n in field_names]
    held_field = cast("models.Field[Any, Any]", meta.get_field(held_by))
    preparers = [_Preparer(f) for f in fields]
    table, pk = _q(meta.db_table), _q(meta.pk.column)
    held_col = _q(held_field.column)
    if connection.vendor == "postgresql":
        return _update_from_values(objs, fields, preparers, held_field, mark)
    with connection.cursor() as cur:
        marks = ", ".join(["%s"] * len(objs))
        cur.execute(f"SELECT {pk}, {held_col} FROM {table} WHERE {pk} IN ({marks})", [o.pk for o in objs])
        now_held = dict(cur.fetchall())
        mine = [o for o in objs if now_held.get(o.pk) == getattr(o, mark)]
        if mine:
            sets = ", ".join(f"{_q(f.column)} = %s" for f in fields)
            rows = [
                [prep(getattr(o, f.attname)) for f, prep in zip(fields, preparers, strict=True)] + [o.pk] for o in mine
            ]
            cur.executemany(f"UPDATE {table} SET {sets} WHERE {pk} = %s", rows)
        return {o.pk for o in mine}


def _update_from_values(
    objs: list[models.Model],
    fields: list[models.Field[Any, Any]],
    preparers: list[_Preparer],
    held_field: models.Field[Any, Any] | None,
    mark: str,
) -> set[Any]:
    """PostgreSQL: `UPDATE … FROM (VALUES …) … RETURNING` the primary keys written; with `held_field`, only
    the rows whose column still equals the object's attribute `mark`."""
    meta = objs[0]._meta
    table, pk = _q(meta.db_table), _q(meta.pk.column)
    keys: list[models.Field[Any, Any]] = [meta.pk] + ([held_field] if held_field is not None else [])

    def typed(f: models.Field[Any, Any]) -> str:
        # the column's type without a length: an explicit cast to varchar(n) would cut an over-long value
        # silently, where the assignment refuses it (as any other write would). The first row's casts type
        # the VALUES columns; the other rows' values are taken as those types.
        return re.sub(r"^varchar\(\d+\)", "text", str(f.db_type(connection)))

    cols = [*keys, *fields]
    first = "(" + ", ".join(f"CAST(%s AS {typed(f)})" for f in cols) + ")"
    rest = "(" + ", ".join(["%s"] * len(cols)) + ")"
    params: list[Any] = []
    for obj in objs:
        params.append(obj.pk)
        if held_field is not None:
            params.append(getattr(obj, mark))
        params.extend(prep(getattr(obj, f.attname)) for f, prep in zip(fields, preparers, strict=True))
    names = ", ".join(f"c{i}" for i in range(len(cols)))
    sets = ", ".join(f"{_q(f.column)} = v.c{i + len(keys)}" for i, f in enumerate(fields))
    held = f" AND t.{_q(held_field.column)} = v.c1" if held_field is not None else ""
    with connection.cursor() as cur:
        cur.execute(
            f"UPDATE {table} AS t SET {sets} FROM (VALUES {', '.join([first] + [rest] * (len(objs) - 1))}) "
            f"AS v({names}) WHERE t.{pk} = v.c0{held} RETURNING t.{pk}",
            params,
        )
        return {row[0] for row in cur.fetchall()}
