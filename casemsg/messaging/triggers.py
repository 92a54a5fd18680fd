"""The message table's triggers that keep the reports' roll-up exact (casemsg.messaging.reports): they mark a
counted day stale (CountedDay.stale) when a message inside it is created, changed (status, error, event, project,
direction, channel, created_on) or deleted after it was counted. Only messages older than an hour are looked at —
a day is counted two hours after its last counted hour at the earliest —, so the rows the send path is busy with
never run them: the WHEN clause is all they cost. One set per database (SQLite, PostgreSQL).

SQLite drops a table's triggers when a migration rebuilds the table (most column changes do): `ensure` puts them
back and marks every counted day stale (what changed meanwhile was not watched). The reports' roll-up calls it
before it counts; migrations that rebuild the message table call it too.
"""

from __future__ import annotations

from typing import Any

NAMES = ("messaging_message_count_insert", "messaging_message_count_update", "messaging_message_count_delete")
MARGIN_SQLITE = "strftime('%Y-%m-%d %H:%M:%f', 'now', '-1 hour')"
MARGIN_PG = "statement_timestamp() - interval '1 hour'"
COUNTED = ("status", "error", "event_id", "project_id", "direction", "channel", "created_on")


def _mark(row: str, true: str, false: str) -> str:
    return (
        f"UPDATE messaging_countedday SET stale = {true} WHERE project_id = {row}.project_id "
        f"AND end_utc > {row}.created_on AND start_utc <= {row}.created_on AND stale = {false};"
    )


_OLD, _NEW = (", ".join(f"{row}.{c}" for c in COUNTED) for row in ("OLD", "NEW"))
SQLITE = [
    f"""CREATE TRIGGER IF NOT EXISTS messaging_message_count_insert AFTER INSERT ON messaging_message
        WHEN NEW.created_on < {MARGIN_SQLITE}
        BEGIN {_mark("NEW", "1", "0")} END""",
    f"""CREATE TRIGGER IF NOT EXISTS messaging_message_count_update AFTER UPDATE OF {", ".join(COUNTED)}
        ON messaging_message
        WHEN (OLD.created_on < {MARGIN_SQLITE} OR NEW.created_on < {MARGIN_SQLITE})
         AND ({" OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in COUNTED)})
        BEGIN {_mark("OLD", "1", "0")} {_mark("NEW", "1", "0")} END""",
    f"""CREATE TRIGGER IF NOT EXISTS messaging_message_count_delete AFTER DELETE ON messaging_message
        WHEN OLD.created_on < {MARGIN_SQLITE}
        BEGIN {_mark("OLD", "1", "0")} END""",
]
SQLITE_DROP = [f"DROP TRIGGER IF EXISTS {name}" for name in NAMES]

POSTGRES = [
    *(f"DROP TRIGGER IF EXISTS {name} ON messaging_message" for name in NAMES),
    f"""CREATE OR REPLACE FUNCTION messaging_message_count_stale() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF TG_OP <> 'INSERT' THEN {_mark("OLD", "true", "false")} END IF;
          IF TG_OP <> 'DELETE' THEN {_mark("NEW", "true", "false")} END IF;
          RETURN NULL;
        END $$""",
    f"""CREATE TRIGGER messaging_message_count_insert AFTER INSERT ON messaging_message FOR EACH ROW
        WHEN (NEW.created_on < {MARGIN_PG}) EXECUTE FUNCTION messaging_message_count_stale()""",
    f"""CREATE TRIGGER messaging_message_count_update AFTER UPDATE OF {", ".join(COUNTED)}
        ON messaging_message FOR EACH ROW
        WHEN ((OLD.created_on < {MARGIN_PG} OR NEW.created_on < {MARGIN_PG})
              AND ({_OLD}) IS DISTINCT FROM ({_NEW}))
        EXECUTE FUNCTION messaging_message_count_stale()""",
    f"""CREATE TRIGGER messaging_message_count_delete AFTER DELETE ON messaging_message FOR EACH ROW
        WHEN (OLD.created_on < {MARGIN_PG}) EXECUTE FUNCTION messaging_message_count_stale()""",
]
POSTGRES_DROP = [f"DROP TRIGGER IF EXISTS {name} ON messaging_message" for name in NAMES] + [
    "DROP FUNCTION IF EXISTS messaging_message_count_stale()"
]
CREATE = {"sqlite": SQLITE, "postgresql": POSTGRES}
DROP = {"sqlite": SQLITE_DROP, "postgresql": POSTGRES_DROP}


def run(connection: Any, statements: dict[str, list[str]]) -> None:
    """Run this database's statements on its own cursor, without parameters: SQLite's strftime('%Y…') must
    reach the database as written."""
    with connection.cursor() as cursor:
        for sql in statements.get(connection.vendor, []):
            cursor.execute(sql)


def present(connection: Any) -> set[str]:
    """Which of the triggers the database has."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'messaging_message'")
        elif connection.vendor == "postgresql":
            cursor.execute(
                "SELECT tgname FROM pg_trigger WHERE tgrelid = 'messaging_message'::regclass AND NOT tgisinternal"
            )
        else:
            return set(NAMES)
        return {row[0] for row in cursor.fetchall()} & set(NAMES)


def ensure(connection: Any) -> bool:
    """Put back missing triggers, and mark every counted day stale then (what changed while they were missing was
    not watched). Returns whether any was missing."""
    if present(connection) == set(NAMES):
        return False
    run(connection, CREATE)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE messaging_countedday SET stale = %s", [True])
    return True
