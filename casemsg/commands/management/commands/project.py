import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from casemsg.commands import lookup
from casemsg.core.errors import InputError
from casemsg.projects import services
from casemsg.projects.models import Project

_project = lookup.project


class Command(BaseCommand):
    help = "Create projects, issue, list and revoke their API keys."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        c = sub.add_parser("create", help="create a project and print its API key")
        c.add_argument("slug")
        c.add_argument("--name", default="")
        c.add_argument("--time-zone", default="UTC")
        c.add_argument("--language", default="en")
        c.add_argument("--languages", default="", help="comma-separated SMS languages")
        c.add_argument("--json", action="store_true")
        k = sub.add_parser("key", help="issue another API key for a project (shown once)")
        k.add_argument("slug")
        k.add_argument("--name", default="", help="what the key is for")
        k.add_argument("--json", action="store_true")
        ks = sub.add_parser("keys", help="list a project's API keys (never the keys themselves)")
        ks.add_argument("slug")
        ks.add_argument("--json", action="store_true")
        r = sub.add_parser("revoke-key", help="revoke one of a project's API keys (by the id `keys` lists)")
        r.add_argument("slug")
        r.add_argument("key_id", type=int)
        sub.add_parser("list", help="list projects")

    def handle(self, *args: Any, **o: Any) -> None:
        try:
            self._handle(o)
        except InputError as e:
            raise CommandError(f"{e.code}: {e.message}") from e

    def _handle(self, o: dict[str, Any]) -> None:
        if o["action"] == "list":
            for p in Project.objects.order_by("slug"):
                self.stdout.write(f"{p.slug}\t{p.name}\t{p.default_time_zone}\t{','.join(p.sms_languages)}")
            return
        if o["action"] == "keys":
            rows = list(services.list_keys(_project(o["slug"])))
            if o["json"]:
                out = [
                    {
                        "id": r.pk,
                        "prefix": r.prefix,
                        "name": r.name,
                        "created_on": r.created_on.isoformat(),
                        "revoked": r.revoked,
                    }
                    for r in rows
                ]
                self.stdout.write(json.dumps(out))
                return
            for r in rows:
                state = (
                    f"revoked {r.revoked_on:%Y-%m-%d %H:%M}"
                    if r.revoked and r.revoked_on
                    else ("revoked" if r.revoked else "active")
                )
                self.stdout.write(f"{r.pk}\t{r.prefix}…\t{state}\t{r.created_on:%Y-%m-%d %H:%M}\t{r.name}")
            return
        if o["action"] == "revoke-key":
            row = services.revoke_key(_project(o["slug"]), o["key_id"])
            self.stdout.write(f"Key {row.pk} ({row.prefix}…) is revoked.")
            return
        if o["action"] == "create":
            langs = [x.strip() for x in o["languages"].split(",") if x.strip()]
            project, key = services.create_project(o["slug"], o["name"], o["time_zone"], o["language"], langs)
        else:
            project = _project(o["slug"])
            _row, key = services.issue_key(project, o["name"])
        if o["json"]:
            self.stdout.write(json.dumps({"slug": project.slug, "api_key": key}))
        else:
            self.stdout.write(f"Project: {project.slug}\nAPI key: {key}\n(The key is shown once; keep it safe.)")
