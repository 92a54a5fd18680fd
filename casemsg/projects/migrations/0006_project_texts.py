# The texts casemsg sends, one home: the five per-text JSON fields ({language: text} each, editable only in
# /admin/) become the project's `texts` ({key: {language: text}}; casemsg.consent.texts). Reversible: going
# back moves each text into its own field again (texts added since, which had no field, are dropped).

from django.db import migrations, models

# The fields as they were, each a key of the catalogue.
OLD_FIELDS = ("help_text", "opt_out_confirmation", "opt_in_confirmation", "unknown_sender_reply", "opt_in_question")
BATCH = 500


def _translations(value):
    """A stored text as {language: text}: older rows may hold a plain string (English) or empty values."""
    if isinstance(value, str):
        return {"en": value.strip()} if value.strip() else {}
    if isinstance(value, dict):
        return {str(k): v.strip() for k, v in value.items() if isinstance(v, str) and v.strip()}
    return {}


def _batches(Project, fields):
    last = 0
    while True:
        rows = list(Project.objects.filter(pk__gt=last).order_by("pk").only("pk", *fields)[:BATCH])
        if not rows:
            return
        yield rows
        last = rows[-1].pk


def forward(apps, schema_editor):
    Project = apps.get_model("projects", "Project")
    for rows in _batches(Project, ("texts", *OLD_FIELDS)):
        changed = []
        for p in rows:
            texts = {name: _translations(getattr(p, name)) for name in OLD_FIELDS}
            texts = {name: t for name, t in texts.items() if t}
            if texts:
                p.texts = texts
                changed.append(p)
        Project.objects.bulk_update(changed, ["texts"])


def backward(apps, schema_editor):
    Project = apps.get_model("projects", "Project")
    for rows in _batches(Project, ("texts", *OLD_FIELDS)):
        changed = []
        for p in rows:
            texts = p.texts if isinstance(p.texts, dict) else {}
            if any(texts.get(name) for name in OLD_FIELDS):
                for name in OLD_FIELDS:
                    setattr(p, name, _translations(texts.get(name)))
                changed.append(p)
        Project.objects.bulk_update(changed, list(OLD_FIELDS))


class Migration(migrations.Migration):
    dependencies = [
        ("projects", "0005_api_key_scopes_audit"),
    ]

    operations = [
        migrations.AddField(model_name="project", name="texts", field=models.JSONField(blank=True, default=dict)),
        migrations.RunPython(forward, backward),
        *(migrations.RemoveField(model_name="project", name=name) for name in OLD_FIELDS),
    ]
