# The reports' roll-up stays exact: a trigger on the message table marks a counted day stale (CountedDay.stale)
# when a message inside it is created, changed (status, error, event, project, direction, channel) or deleted
# after the day was counted (casemsg.messaging.reports). Only messages older than an hour are looked at — a day
# is counted two hours after it ends at the earliest —, so the rows the send path is busy with never run it:
# the WHEN clause is all they cost. One set of triggers per database (SQLite, PostgreSQL).

from django.db import migrations

MARGIN_SQLITE = "strftime('%Y-%m-%d %H:%M:%f', 'now', '-1 hour')"
MARGIN_PG = "statement_timestamp() - interval '1 hour'"
COUNTED = ("status", "error", "event_id", "project_id", "direction", "channel", "created_on")


def _mark(row: str, true: str, false: str) -> str:
    return (
        f"UPDATE messaging_countedday SET stale = {true} WHERE project_id = {row}.project_id "
        f"AND end_utc > {row}.created_on AND start_utc <= {row}.created_on AND stale = {false};"
    )


SQLITE = [
    f"""CREATE TRIGGER messaging_message_count_insert AFTER INSERT ON messaging_message
        WHEN NEW.created_on < {MARGIN_SQLITE}
        BEGIN {_mark("NEW", "1", "0")} END""",
    f"""CREATE TRIGGER messaging_message_count_update AFTER UPDATE OF {", ".join(COUNTED)} ON messaging_message
        WHEN (OLD.created_on < {MARGIN_SQLITE} OR NEW.created_on < {MARGIN_SQLITE})
         AND ({" OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in COUNTED)})
        BEGIN {_mark("OLD", "1", "0")} {_mark("NEW", "1", "0")} END""",
    f"""CREATE TRIGGER messaging_message_count_delete AFTER DELETE ON messaging_message
        WHEN OLD.created_on < {MARGIN_SQLITE}
        BEGIN {_mark("OLD", "1", "0")} END""",
]
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS messaging_message_count_insert",
    "DROP TRIGGER IF EXISTS messaging_message_count_update",
    "DROP TRIGGER IF EXISTS messaging_message_count_delete",
]

POSTGRES = [
    f"""CREATE OR REPLACE FUNCTION messaging_message_count_stale() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF TG_OP <> 'INSERT' THEN {_mark("OLD", "true", "false")} END IF;
          IF TG_OP <> 'DELETE' THEN {_mark("NEW", "true", "false")} END IF;
          RETURN NULL;
        END $$""",
    f"""CREATE TRIGGER messaging_message_count_insert AFTER INSERT ON messaging_message FOR EACH ROW
        WHEN (NEW.created_on < {MARGIN_PG}) EXECUTE FUNCTION messaging_message_count_stale()""",
    f"""CREATE TRIGGER messaging_message_count_update AFTER UPDATE OF {", ".join(COUNTED)} ON messaging_message
        FOR EACH ROW
        WHEN ((OLD.created_on < {MARGIN_PG} OR NEW.created_on < {MARGIN_PG})
              AND ({", ".join(f"OLD.{c}" for c in COUNTED)}) IS DISTINCT FROM ({", ".join(f"NEW.{c}" for c in COUNTED)}))
        EXECUTE FUNCTION messaging_message_count_stale()""",
    f"""CREATE TRIGGER messaging_message_count_delete AFTER DELETE ON messaging_message FOR EACH ROW
        WHEN (OLD.created_on < {MARGIN_PG}) EXECUTE FUNCTION messaging_message_count_stale()""",
]
POSTGRES_DROP = [
    "DROP TRIGGER IF EXISTS messaging_message_count_insert ON messaging_message",
    "DROP TRIGGER IF EXISTS messaging_message_count_update ON messaging_message",
    "DROP TRIGGER IF EXISTS messaging_message_count_delete ON messaging_message",
    "DROP FUNCTION IF EXISTS messaging_message_count_stale()",
]


def _run(statements: dict[str, list[str]]):
    def run(apps, schema_editor):
        # a cursor of its own with no parameters: SQLite's strftime('%Y…') must reach the database as written
        with schema_editor.connection.cursor() as cursor:
            for sql in statements.get(schema_editor.connection.vendor, []):
                cursor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("messaging", "0007_report_counts"),
    ]

    operations = [
        migrations.RunPython(
            _run({"sqlite": SQLITE, "postgresql": POSTGRES}),
            _run({"sqlite": SQLITE_DROP, "postgresql": POSTGRES_DROP}),
        ),
    ]
