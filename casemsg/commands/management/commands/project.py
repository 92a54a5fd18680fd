import json

from django.core.management.base import BaseCommand, CommandError

from casemsg.core.errors import InputError
from casemsg.projects.models import ApiKey, Project
from casemsg.projects.services import create_project


class Command(BaseCommand):
    help = "Create projects and issue their API keys."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        c = sub.add_parser("create", help="create a project and print its API key")
        c.add_argument("slug")
        c.add_argument("--name", default="")
        c.add_argument("--time-zone", default="UTC")
        c.add_argument("--language", default="en")
        c.add_argument("--languages", default="", help="comma-separated SMS languages")
        c.add_argument("--json", action="store_true")
        k = sub.add_parser("key", help="issue another API key for a project")
        k.add_argument("slug")
        k.add_argument("--json", action="store_true")
        sub.add_parser("list", help="list projects")

    def handle(self, *args, **o):
        if o["action"] == "create":
            langs = [x.strip() for x in o["languages"].split(",") if x.strip()]
            try:
                project, key = create_project(o["slug"], o["name"], o["time_zone"], o["language"], langs)
            except InputError as e:
                raise CommandError(f"{e.code}: {e.message}") from e
        elif o["action"] == "key":
            project = Project.objects.filter(slug=o["slug"]).first()
            if project is None:
                raise CommandError(f"No project '{o['slug']}'.")
            key = ApiKey.issue(project)
        else:
            for p in Project.objects.order_by("slug"):
                self.stdout.write(f"{p.slug}\t{p.name}\t{p.default_time_zone}\t{','.join(p.sms_languages)}")
            return
        if o["json"]:
            self.stdout.write(json.dumps({"slug": project.slug, "api_key": key}))
        else:
            self.stdout.write(f"Project: {project.slug}\nAPI key: {key}\n(The key is shown once; keep it safe.)")
