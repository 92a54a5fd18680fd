from django.core.management.base import BaseCommand, CommandError

from casemsg.core import errors
from casemsg.messaging.models import Message
from casemsg.projects.models import Project


class Command(BaseCommand):
    help = "Show a project's message log, newest first, with the reason for every failure."

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True)
        parser.add_argument("--status", choices=Message.STATUSES)
        parser.add_argument("--error", help="an error code")
        parser.add_argument("--limit", type=int, default=50)

    def handle(self, *args, **o):
        project = Project.objects.filter(slug=o["project"]).first()
        if project is None:
            raise CommandError(f"No project '{o['project']}'.")
        qs = Message.objects.filter(project=project).select_related("case", "worker").order_by("-created_on", "-pk")
        if o["status"]:
            qs = qs.filter(status=o["status"])
        if o["error"]:
            qs = qs.filter(error=o["error"].upper())
        for m in qs[: o["limit"]]:
            arrow = "→" if m.direction == Message.OUT else "←"
            self.stdout.write(
                f"{m.pk:>6} {m.created_on:%Y-%m-%d %H:%M:%S} {arrow} {m.channel:5} {m.recipient_label:24} "
                f"{m.status:9} {m.gateway_name:10} {m.text[:50]!r}"
            )
            if m.error:
                self.stdout.write(f"        {m.error}: {errors.get(m.error).title}. {m.error_detail}")
