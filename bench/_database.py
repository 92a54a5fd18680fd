"""Shared by the benches: point the settings at a fresh, empty database (SQLite in a temporary data dir,
or a throw-away PostgreSQL database beside CASEMSG_DATABASE_URL) and clean it up afterwards."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable


def fresh_database(name: str, prefix: str = "casemsg-bench-") -> tuple[Callable[[], None], bool]:
    """Returns the cleanup and whether the database is PostgreSQL. Call before Django is set up."""
    data_dir = tempfile.mkdtemp(prefix=prefix)
    os.environ["CASEMSG_DATA_DIR"] = data_dir
    url = os.environ.get("CASEMSG_DATABASE_URL", "")
    if not url:
        return (lambda: shutil.rmtree(data_dir, ignore_errors=True)), False
    import dj_database_url
    import psycopg

    cfg = dj_database_url.parse(url)
    admin = {"host": cfg["HOST"] or None, "port": cfg["PORT"] or None, "user": cfg["USER"] or None}
    if cfg.get("PASSWORD"):
        admin["password"] = cfg["PASSWORD"]
    admin = {k: v for k, v in admin.items() if v is not None}

    def admin_sql(sql: str) -> None:
        with psycopg.connect(dbname="postgres", autocommit=True, **admin) as conn:
            conn.execute(sql)

    admin_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin_sql(f"CREATE DATABASE {name}")
    os.environ["CASEMSG_DATABASE_URL"] = f"{url.rsplit('/', 1)[0]}/{name}"

    def cleanup() -> None:
        from django.db import connections

        connections.close_all()
        admin_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        shutil.rmtree(data_dir, ignore_errors=True)

    return cleanup, True
