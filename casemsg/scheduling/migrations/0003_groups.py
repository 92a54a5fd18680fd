import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("groups", "0001_initial"),
        ("scheduling", "0002_engine"),
    ]

    operations = [
        migrations.AddField(
            model_name="broadcast",
            name="refresh_due_utc",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddIndex(
            model_name="broadcast",
            index=models.Index(
                condition=models.Q(("refresh_due_utc__isnull", False)),
                fields=["refresh_due_utc"],
                name="broadcast_refresh_due",
            ),
        ),
        migrations.AddField(
            model_name="conditionalalert",
            name="group",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="groups.group",
            ),
        ),
    ]
