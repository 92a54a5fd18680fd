"""`casemsg demo`: a demo project with a few cases and the sandbox gateway, so `make run` shows
something at once. Safe to run again: it reuses what exists and issues a fresh key."""

import secrets

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand

from casemsg.cases import services as cases
from casemsg.gateways import services as gateways
from casemsg.gateways.models import Gateway, GatewayRoute
from casemsg.projects.models import ApiKey, Project
from casemsg.projects.services import create_project

DEMO_CASES = [
    (
        "demo-asha",
        "Asha Njeri",
        {
            "contact_phone_number": "254722000111",
            "language_code": "sw",
            "time_zone": "Africa/Nairobi",
            "contact_phone_number_is_verified": "1",
        },
    ),
    ("demo-ravi", "Ravi Kumar", {"contact_phone_number": "919812345678", "time_zone": "Asia/Kolkata"}),
    (
        "demo-maria",
        "Maria Lopez",
        {
            "contact_phone_number": "12066171234",
            "time_zone": "America/Los_Angeles",
            "commcare_email_address": "maria@example.org",
        },
    ),
    ("demo-bad", "Bad Number", {"contact_phone_number": "1-206-617-1234"}),
]


class Command(BaseCommand):
    help = "Create (or refresh) the demo project with a few cases and the sandbox gateway."

    def handle(self, *args, **o):
        project = Project.objects.filter(slug="demo").first()
        if project is None:
            project, key = create_project("demo", "Demo program", "Africa/Nairobi", "en", ["sw"])
        else:
            key = ApiKey.issue(project)
        if not Gateway.objects.filter(name="sandbox").exists():
            gateways.add_gateway("sandbox", "sandbox")
        if not GatewayRoute.objects.filter(project__isnull=True, prefix="*").exists():
            gateways.map_prefix("*", "sandbox")
        cases.bulk_upsert(
            project,
            [
                cases.CaseChange(case_id=cid, case_type="mother", name=name, properties=props)
                for cid, name, props in DEMO_CASES
            ],
        )
        # A staff login for the pages, with a fresh random password each run (printed once, stored hashed).
        password = secrets.token_urlsafe(9)
        user, _ = User.objects.get_or_create(username="demo", defaults={"is_staff": True, "is_superuser": True})
        user.is_staff = user.is_superuser = True
        user.set_password(password)
        user.save()
        self.stdout.write(
            "Demo project 'demo' is ready: 4 cases, the sandbox gateway routes every number.\n"
            f"  API key: {key}\n"
            f"  Login:   demo / {password}   (pages and /admin/)\n"
            '  Try:   curl -s -H "Authorization: Bearer $KEY" '
            "http://127.0.0.1:8000/api/v1/projects/demo/cases/demo-ravi/contact\n"
            "  Pages: http://127.0.0.1:8000/   API docs: http://127.0.0.1:8000/api/docs"
        )
