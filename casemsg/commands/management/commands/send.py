import json

from django.core.management.base import BaseCommand, CommandError

from casemsg.commands import lookup
from casemsg.core.errors import InputError
from casemsg.messaging import services


class Command(BaseCommand):
    help = "Send one SMS or email to a case or a mobile worker (through the one send pipeline)."

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True)
        who = parser.add_mutually_exclusive_group(required=True)
        who.add_argument("--case", help="case_id")
        who.add_argument("--mobile-worker", type=int, help="mobile worker id")
        parser.add_argument("--text", help="text; may use {case.name}, {case.<property>}, …")
        parser.add_argument("--translations", help='JSON object, e.g. {"en": "Hi", "sw": "Habari"}')
        parser.add_argument("--channel", default="sms", choices=["sms", "email"])
        parser.add_argument("--subject", default="")

    def handle(self, *args, **o):
        project = lookup.project(o["project"])
        try:
            translations = json.loads(o["translations"]) if o["translations"] else None
        except json.JSONDecodeError as e:
            raise CommandError(f"--translations is not valid JSON: {e}") from e
        try:
            msg = services.send(
                project,
                services.SendRequest(
                    channel=o["channel"],
                    case_id=o["case"],
                    mobile_worker_id=o["mobile_worker"],
                    text=o["text"],
                    translations=translations,
                    subject=o["subject"],
                ),
                source="api",
            )
        except InputError as e:
            raise CommandError(f"{e.code}: {e.message}") from e
        msg.refresh_from_db()
        line = f"message {msg.pk}: {msg.status}"
        if msg.error:
            line += f" — {msg.error}: {msg.error_detail}"
        self.stdout.write(line)
