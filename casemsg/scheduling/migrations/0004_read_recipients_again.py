"""Broadcasts that were running before recipients were read again at each occurrence: those whose recipients
can change (a case type, a group, case owners, every mobile worker) and that have events to come read them
at the next tick (refresh_due_utc = now); the tick then plans their next reading. In Python: a project has
few broadcasts."""

from django.db import migrations
from django.utils import timezone


def plan_readings(apps, schema_editor):
    Broadcast = apps.get_model("scheduling", "Broadcast")
    now = timezone.now()
    due = []
    for b in Broadcast.objects.filter(status__in=("active", "paused"), refresh_due_utc__isnull=True).iterator():
        who = b.recipients if isinstance(b.recipients, dict) else {}
        kind = (b.schedule or {}).get("type") if isinstance(b.schedule, dict) else None
        dynamic = (
            bool(who.get("case_type") or who.get("group") or who.get("owners_of")) or who.get("mobile_workers") == "all"
        )
        if dynamic and kind not in (None, "now"):
            due.append(b.pk)
    Broadcast.objects.filter(pk__in=due).update(refresh_due_utc=now)


class Migration(migrations.Migration):
    dependencies = [("scheduling", "0003_groups")]

    operations = [migrations.RunPython(plan_readings, migrations.RunPython.noop)]
