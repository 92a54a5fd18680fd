"""`casemsg broadcasts list|show|pause|resume|cancel|run --project P [ID] [--json]`.

- `list`: the project's broadcasts, newest first (`--status` filters): id, status, name, the schedule in
  words, recipients, sent and failed messages;
- `show ID`: one broadcast, its counts, why its messages failed (by error code) and its latest sends;
- `pause ID`, `resume ID`, `cancel ID`: as the API's pause, resume and DELETE (cancel is for good);
- `run ID`: start the broadcast now for the recipients it selects that have no running schedule — cases
  created, or changed to match its filters, since it started (their events are the broadcast's from now
  on). A worker's scheduler then queues what is due, within a second or two.

`--json` prints what the API answers (GET …/broadcasts/{id}, or {count, items} for `list`).
"""

from __future__ import annotations

import getpass
import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.serializers.json import DjangoJSONEncoder

from casemsg.commands import lookup
from casemsg.core import actor, errors, wallclock
from casemsg.core.errors import InputError
from casemsg.projects.models import Project
from casemsg.scheduling import queries, services
from casemsg.scheduling.models import Broadcast

SENDS_SHOWN = 20


class Command(BaseCommand):
    help = "Broadcasts: list them, show one with its sends and failures, pause, resume, cancel, or run one now."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        ls = sub.add_parser("list", help="the project's broadcasts, newest first")
        ls.add_argument("--status", choices=queries.BROADCAST_STATUSES)
        ls.add_argument("--limit", type=int, default=100)
        for name, text in (
            ("show", "one broadcast: its counts, why messages failed, its latest sends"),
            ("pause", "stop sending until resumed"),
            ("resume", "send again (the latest event missed while paused, if still timely, then the rest)"),
            ("cancel", "end it for good: nothing more is queued"),
            ("run", "start it now for recipients that match and have no running schedule (new cases)"),
        ):
            p = sub.add_parser(name, help=text)
            p.add_argument("id", type=int, help="the broadcast's id (see `casemsg broadcasts list`)")
        for p in sub.choices.values():
            p.add_argument("--project", required=True)
            p.add_argument("--json", action="store_true", help="print the API's JSON")

    def handle(self, *args: Any, **o: Any) -> None:
        project = lookup.project(o["project"])
        try:
            with actor.acting_as("cli", f"command line ({getpass.getuser()})"):
                getattr(self, f"_{o['action']}")(project, o)
        except InputError as e:
            raise CommandError(f"{e.code}: {e.message}") from e

    # --- output ---------------------------------------------------------------------------------------
    def _json(self, data: Any) -> None:
        self.stdout.write(json.dumps(data, cls=DjangoJSONEncoder, indent=2, ensure_ascii=False))

    def _line(self, s: queries.Summary) -> str:
        nxt = f"next {s.next_due_utc:%Y-%m-%d %H:%M} UTC" if s.next_due_utc else "nothing due"
        return (
            f"{s.owner.pk:>5}  {s.owner.status:9}  {s.owner.name}\n"
            f"       {s.schedule_summary}\n"
            f"       {s.recipients} recipients ({s.running} running), {s.sent} sent, {s.failed} failed; {nxt}"
        )

    def _broadcast(self, project: Project, pk: int) -> Broadcast:
        b = queries.broadcast(project, pk)
        if b is None:
            raise InputError(errors.BROADCAST_NOT_FOUND, f"No broadcast {pk} in project {project.slug}.", 404)
        return b

    def _done(self, b: Broadcast, o: dict[str, Any], what: str) -> None:
        s = queries.summary(b)
        if o["json"]:
            self._json(s.as_dict())
        else:
            self.stdout.write(f"Broadcast {b.pk} {what}.\n{self._line(s)}")

    # --- actions --------------------------------------------------------------------------------------
    def _list(self, project: Project, o: dict[str, Any]) -> None:
        qs = queries.broadcasts(project, o["status"])
        rows = queries.summaries(qs[: max(o["limit"], 0)])
        if o["json"]:
            self._json({"count": qs.count(), "items": [s.as_dict() for s in rows]})
            return
        if not rows:
            self.stdout.write("No broadcasts.")
        for s in rows:
            self.stdout.write(self._line(s))

    def _show(self, project: Project, o: dict[str, Any]) -> None:
        b = self._broadcast(project, o["id"])
        s = queries.summary(b)
        if o["json"]:
            self._json(s.as_dict())
            return
        self.stdout.write(self._line(s))
        self.stdout.write(f"       content: {json.dumps(b.content, ensure_ascii=False)}")
        self.stdout.write(f"       recipients: {s.recipients_text}")
        if b.refresh_due_utc is not None:
            self.stdout.write(
                "       read again at each send (who starts matching joins, who stops leaves); "
                f"next reading {b.refresh_due_utc:%Y-%m-%d %H:%M} UTC"
            )
        failures = queries.failures(b)
        if failures:
            self.stdout.write("Failures:")
            for code, n in failures:
                entry = errors.CATALOGUE.get(code)
                self.stdout.write(f"  {n:>6}  {code}: {entry.title if entry else ''}")
        sends = list(queries.sends(project, b)[:SENDS_SHOWN])
        if sends:
            self.stdout.write(f"Latest sends ({len(sends)} of {sum(s.messages.values())}):")
        for m in sends:
            when = wallclock.shown(m.created_on, project.default_time_zone)
            line = f"  {m.pk:>6} {when} {m.recipient_label:24} {m.status:9} {m.text[:40]!r}"
            self.stdout.write(line)
            if m.error:
                title = entry.title if (entry := errors.CATALOGUE.get(m.error)) else ""
                self.stdout.write(f"         {m.error}: {title}. {m.error_detail}".rstrip())

    def _pause(self, project: Project, o: dict[str, Any]) -> None:
        self._done(services.pause_broadcast(self._broadcast(project, o["id"])), o, "paused")

    def _resume(self, project: Project, o: dict[str, Any]) -> None:
        self._done(services.resume_broadcast(self._broadcast(project, o["id"])), o, "resumed")

    def _cancel(self, project: Project, o: dict[str, Any]) -> None:
        self._done(services.cancel_broadcast(self._broadcast(project, o["id"])), o, "cancelled")

    def _run(self, project: Project, o: dict[str, Any]) -> None:
        b = self._broadcast(project, o["id"])
        started = services.start_new_recipients(b)
        self._done(b, o, f"started for {started} new recipient{'s' if started != 1 else ''}")
