"""The projects' default country (local phone numbers are read as its numbers), set for the projects that
exist from their time zone as a new project's is (Africa/Nairobi → KE; UTC → none): one UPDATE per time
zone in use, not one per project."""

from django.db import migrations, models

from casemsg.core.phone import country_of_zone


def from_time_zones(apps, schema_editor):
    Project = apps.get_model("projects", "Project")
    zones = Project.objects.values_list("default_time_zone", flat=True).distinct()
    for zone in list(zones):
        country = country_of_zone(zone)
        if country:
            Project.objects.filter(default_time_zone=zone, default_country="").update(default_country=country)


class Migration(migrations.Migration):
    dependencies = [("projects", "0007_api_key_last_used")]

    operations = [
        migrations.AddField(
            model_name="project",
            name="default_country",
            field=models.CharField(blank=True, default="", max_length=2),
        ),
        migrations.RunPython(from_time_zones, migrations.RunPython.noop),
    ]
