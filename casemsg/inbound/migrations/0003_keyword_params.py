# Keyword actions own their parameters: the columns property_name, property_value and survey become the
# keyword's `params` ({name: text}), holding what its action declares (casemsg.inbound.actions). Reversible:
# going back writes the parameters into the columns again.

from django.db import migrations, models

BATCH = 1000
# The parameters each action had as columns; an action not named here (none existed) keeps all three.
PARAMS = {
    "reply": (),
    "update_case": ("property_name", "property_value"),
    "start_survey": ("survey",),
}
COLUMNS = ("property_name", "property_value", "survey")
DEFAULTS = {"property_name": "", "property_value": "{rest}", "survey": ""}


def _batches(Keyword, fields):
    last = 0
    while True:
        rows = list(Keyword.objects.filter(pk__gt=last).order_by("pk").only("pk", "action", *fields)[:BATCH])
        if not rows:
            return
        yield rows
        last = rows[-1].pk


def forward(apps, schema_editor):
    Keyword = apps.get_model("inbound", "Keyword")
    for rows in _batches(Keyword, (*COLUMNS, "params")):
        for k in rows:
            names = PARAMS.get(k.action, COLUMNS)
            k.params = {name: getattr(k, name) or DEFAULTS[name] for name in names}
        Keyword.objects.bulk_update(rows, ["params"])


def backward(apps, schema_editor):
    Keyword = apps.get_model("inbound", "Keyword")
    for rows in _batches(Keyword, (*COLUMNS, "params")):
        for k in rows:
            params = k.params if isinstance(k.params, dict) else {}
            for name in COLUMNS:
                setattr(k, name, str(params.get(name) or DEFAULTS[name])[:255 if name != "survey" else 64])
        Keyword.objects.bulk_update(rows, list(COLUMNS))


class Migration(migrations.Migration):
    dependencies = [
        ("inbound", "0002_inbox"),
    ]

    operations = [
        migrations.AddField(model_name="keyword", name="params", field=models.JSONField(blank=True, default=dict)),
        migrations.RunPython(forward, backward),
        *(migrations.RemoveField(model_name="keyword", name=name) for name in COLUMNS),
    ]
