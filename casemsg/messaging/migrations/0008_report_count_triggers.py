# The reports' roll-up stays exact: a trigger on the message table marks a counted day stale (CountedDay.stale)
# when a message inside it is created, changed (status, error, event, project, direction, channel) or deleted
# after the day was counted (casemsg.messaging.reports). Only messages older than an hour are looked at — a day
# is counted two hours after it ends at the earliest —, so the rows the send path is busy with never run it:
# the WHEN clause is all they cost. One set of triggers per database (SQLite, PostgreSQL).

from django.db import migrations

from casemsg.messaging import triggers


def _create(apps, schema_editor):
    triggers.run(schema_editor.connection, triggers.CREATE)


def _drop(apps, schema_editor):
    triggers.run(schema_editor.connection, triggers.DROP)


class Migration(migrations.Migration):
    dependencies = [
        ("messaging", "0007_report_counts"),
    ]

    operations = [
        migrations.RunPython(_create, _drop),
    ]
