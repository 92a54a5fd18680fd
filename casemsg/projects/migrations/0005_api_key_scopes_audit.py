# API key scopes (keys that exist keep read, send and write: everything but admin) and the audit log of
# settings and key changes.

import django.db.models.deletion
from django.db import migrations, models

import casemsg.projects.models

# Literal, not the model's default: this migration must give existing keys the same scopes whatever the
# default becomes later.
EXISTING_KEYS_SCOPES = ["read", "send", "write"]


def existing_keys(apps, schema_editor):
    apps.get_model("projects", "ApiKey").objects.update(scopes=EXISTING_KEYS_SCOPES)  # one UPDATE


class Migration(migrations.Migration):
    dependencies = [
        ("projects", "0004_membership"),
    ]

    operations = [
        migrations.AddField(model_name="apikey", name="scopes", field=models.JSONField(default=list)),
        migrations.RunPython(existing_keys, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="apikey",
            name="scopes",
            field=models.JSONField(default=casemsg.projects.models._default_scopes),
        ),
        migrations.CreateModel(
            name="AuditEntry",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("at", models.DateTimeField()),
                ("source", models.CharField(max_length=16)),
                ("who", models.CharField(blank=True, default="", max_length=200)),
                ("setting", models.CharField(max_length=64)),
                ("before", models.JSONField(blank=True, null=True)),
                ("after", models.JSONField(blank=True, null=True)),
                ("weakens", models.BooleanField(default=False)),
                (
                    "project",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="audit_entries",
                        to="projects.project",
                    ),
                ),
            ],
            options={
                "indexes": [models.Index(fields=["project", "-at", "-id"], name="audit_project_at")],
            },
        ),
    ]
