import json

from django.core.management.base import BaseCommand

from casemsg.core import errors


class Command(BaseCommand):
    help = (
        "Print the error catalogue: every code a message or contact can carry, every code a refused API "
        "or CLI request answers with, and how to fix each."
    )

    def add_arguments(self, parser):
        parser.add_argument("code", nargs="?", help="show one code")
        parser.add_argument("--kind", choices=["problem", "request"], help="only problems or only request errors")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **o):
        items = list(errors.CATALOGUE.values())
        if o["code"]:
            items = [e for e in items if e.code == o["code"].upper()]
            if not items:
                self.stderr.write(f"Unknown error code '{o['code']}'. Run `casemsg errors` for the list.")
                raise SystemExit(2)
        if o["kind"]:
            items = [e for e in items if e.kind == o["kind"]]
        if o["json"]:
            self.stdout.write(json.dumps([e.__dict__ for e in items], indent=2))
            return
        for e in items:
            self.stdout.write(f"{e.code}{' (delay)' if e.delay else ''} — {e.title}")
            self.stdout.write(f"    {e.description}")
            if e.status is not None:
                what = "Request error" if e.kind == "request" else "Also a request error"
                self.stdout.write(f"    {what}: HTTP {e.status}.")
            self.stdout.write(f"    Fix: {e.fix}\n")
