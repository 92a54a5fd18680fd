import json

from django.core.management.base import BaseCommand, CommandError

from casemsg.commands import lookup
from casemsg.core.errors import InputError
from casemsg.messaging import services


class Command(BaseCommand):
    help = "Send one SMS, email or WhatsApp message to a case or a mobile worker (through the one send pipeline)."

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True)
        who = parser.add_mutually_exclusive_group(required=True)
        who.add_argument("--case", help="case_id")
        who.add_argument("--mobile-worker", type=int, help="mobile worker id")
        parser.add_argument("--text", help="text; may use {case.name}, {case.<property>}, …")
        parser.add_argument("--translations", help='JSON object, e.g. {"en": "Hi", "sw": "Habari"}')
        parser.add_argument("--channel", default="sms", choices=["sms", "email", "whatsapp"])
        parser.add_argument("--subject", default="")
        # WhatsApp (docs/whatsapp.md): the approved template sent outside the 24-hour window
        parser.add_argument("--whatsapp-template", default="", help="whatsapp: the template's name")
        parser.add_argument(
            "--whatsapp-variables", default="", help='whatsapp: JSON list, e.g. ["{case.name}", "{case.edd}"]'
        )
        parser.add_argument("--fallback-sms", action="store_true", help="whatsapp: send as SMS when it cannot go")

    def handle(self, *args, **o):
        project = lookup.project(o["project"])
        try:
            translations = json.loads(o["translations"]) if o["translations"] else None
        except json.JSONDecodeError as e:
            raise CommandError(f"--translations is not valid JSON: {e}") from e
        whatsapp = None
        if o["channel"] == "whatsapp" and (o["whatsapp_template"] or o["whatsapp_variables"] or o["fallback_sms"]):
            try:
                variables = json.loads(o["whatsapp_variables"]) if o["whatsapp_variables"] else []
            except json.JSONDecodeError as e:
                raise CommandError(f"--whatsapp-variables is not valid JSON: {e}") from e
            whatsapp = {"template": o["whatsapp_template"], "variables": variables, "fallback_sms": o["fallback_sms"]}
            whatsapp = {k: v for k, v in whatsapp.items() if v not in ("", [], False)}
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
                    whatsapp=whatsapp,
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
