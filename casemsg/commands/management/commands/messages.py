from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from casemsg.commands import lookup
from casemsg.core import errors, wallclock
from casemsg.messaging import queries
from casemsg.messaging.models import Message


class Command(BaseCommand):
    help = (
        "Show a project's message log, newest first, with the reason for every failure; times on the "
        "project's clock, labelled with its zone (e.g. 2026-12-07 14:05:42 EAT)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", required=True)
        parser.add_argument("--status", choices=Message.STATUSES)
        parser.add_argument("--error", help="an error code")
        parser.add_argument("--direction", choices=[Message.OUT, Message.IN])
        parser.add_argument("--channel", choices=["sms", "email"])
        parser.add_argument("--case", help="only this case's messages (its case id)")
        parser.add_argument("--worker", type=int, help="only this mobile worker's messages (its id)")
        parser.add_argument("--limit", type=int, default=50)

    def handle(self, *args: Any, **o: Any) -> None:
        project = lookup.project(o["project"])
        f = queries.MessageFilter(
            status=o["status"],
            error=o["error"],
            direction=o["direction"],
            channel=o["channel"],
            case_id=o["case"],
            worker_id=o["worker"],
        )
        zone = project.default_time_zone
        for m in queries.messages(project, f)[: o["limit"]]:
            arrow = "→" if m.direction == Message.OUT else "←"
            when = wallclock.shown(m.created_on, zone, "second")
            self.stdout.write(
                f"{m.pk:>6} {when} {arrow} {m.channel:5} {m.recipient_label:24} "
                f"{m.status:9} {m.gateway_name:10} {m.text[:50]!r}"
            )
            if m.error:
                self.stdout.write(f"        {m.error}: {errors.get(m.error).title}. {m.error_detail}")
