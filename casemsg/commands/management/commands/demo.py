"""`casemsg demo`: a demo project with a few cases and the sandbox gateway, so `make run` shows
something at once. Safe to run again: it reuses what exists, including the demo's API key and login,
which it keeps in the data directory (readable by its owner only) so that each `make run` prints the
same ones instead of minting new credentials. The key alone is also in `var/demo-api-key` (DEMO_KEY_FILE in
the data directory, readable by its owner only), for `KEY=$(cat var/demo-api-key)`: API keys are stored
hashed, so no command can show an issued key again (`casemsg project key` issues one only with --new)."""

import json
import os
import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.management.base import BaseCommand

from casemsg.cases import services as cases
from casemsg.core import files
from casemsg.gateways import queries as gateway_queries
from casemsg.gateways import services as gateways
from casemsg.projects import queries as project_queries
from casemsg.projects.models import DEFAULT_SCOPES
from casemsg.projects.services import create_project, issue_key

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


# The demo's API key alone, in the data directory: the README's `KEY=$(cat var/demo-api-key)`.
DEMO_KEY_FILE = "demo-api-key"


class Command(BaseCommand):
    help = "Create (or refresh) the demo project with a few cases and the sandbox gateway."

    def handle(self, *args: Any, **o: Any) -> None:
        saved = _saved_credentials()
        project = project_queries.project("demo")
        if project is None:
            # The README's tour reads, sends and writes; it changes no legal rule and issues no key: no admin.
            project, key = create_project("demo", "Demo program", "Africa/Nairobi", "en", ["sw"], DEFAULT_SCOPES)
        elif (row := project_queries.live_key(saved.get("api_key", ""))) is not None and row.project_id == project.pk:
            key = saved["api_key"]
        else:
            _row, key = issue_key(project, "demo")
        if gateways.find_gateway("sandbox", None) is None:
            gateways.add_gateway("sandbox", "sandbox")
        if gateway_queries.route("*") is None:
            gateways.map_prefix("*", "sandbox")
        cases.bulk_upsert(
            project,
            [
                cases.CaseChange(case_id=cid, case_type="mother", name=name, properties=props)
                for cid, name, props in DEMO_CASES
            ],
        )
        # A staff login for the pages: a random password the first time, the same one afterwards.
        user, _ = User.objects.get_or_create(username="demo", defaults={"is_staff": True, "is_superuser": True})
        password = saved.get("password", "")
        if not password or not user.check_password(password) or not user.is_staff:
            password = secrets.token_urlsafe(9)
            user.is_staff = user.is_superuser = True
            user.set_password(password)
            user.save()
        _save_credentials({"api_key": key, "password": password})
        _write_private(_key_file(), key + "\n")
        self.stdout.write(
            "Demo project 'demo' is ready: 4 cases, the sandbox gateway routes every number.\n"
            f"  API key: {key}\n"
            f"           (kept in {_key_file()}, readable by you only: KEY=$(cat {_key_file()}))\n"
            f"  Login:   demo / {password}   (pages and /admin/)\n"
            '  Try:   curl -s -H "Authorization: Bearer $KEY" '
            "http://127.0.0.1:8000/api/v1/projects/demo/cases/demo-ravi/contact\n"
            "  Pages: http://127.0.0.1:8000/   API docs: http://127.0.0.1:8000/api/docs"
        )


def _key_file() -> str:
    return os.path.join(settings.DATA_DIR, DEMO_KEY_FILE)


def _credentials_file() -> str:
    return os.path.join(settings.DATA_DIR, "demo-credentials.json")


def _saved_credentials() -> dict[str, str]:
    try:
        with open(_credentials_file()) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, str)} if isinstance(data, dict) else {}


def _save_credentials(data: dict[str, str]) -> None:
    _write_private(_credentials_file(), json.dumps(data))


def _write_private(path: str, text: str) -> None:
    # Readable by its owner only: it holds a working API key (and password) of the demo project.
    with files.open_private(Path(path)) as f:
        f.write(text.encode())
