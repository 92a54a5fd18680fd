"""`casemsg alerts list|show|pause|resume|run --project P [ID]`: conditional alerts from the command line.

`run` evaluates the alert over every open case of its type now (a fresh run, or the rest of one under way;
the worker's ticker would do it too, a little at a time), with a progress bar on a terminal.
"""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from casemsg.commands import lookup
from casemsg.core import wallclock
from casemsg.projects.models import Project
from casemsg.scheduling import queries, runner, services
from casemsg.scheduling.models import ConditionalAlert

MAX_CHUNK = 20_000  # SQLite caps a statement's parameters; larger chunks gain nothing measurable


def _run_state(alert: ConditionalAlert) -> str:
    p = runner.progress(alert)
    if p.status == ConditionalAlert.RUNNING:
        return f"running {p.percent:.0f}% ({p.done:,}/{p.total:,})"
    if p.status == ConditionalAlert.FAILED:
        return "failed (see the worker's log)"
    return "up to date" if p.up_to_date else "not run yet"


class Command(BaseCommand):
    help = "Conditional alerts: list, show, pause, resume, and run over every open case (with a progress bar)."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        ls = sub.add_parser("list", help="the project's alerts, newest first, with their run and schedules")
        ls.add_argument("--project", required=True, help="the project's slug")
        ls.add_argument("--status", choices=queries.ALERT_STATUSES)
        for name, text in (
            ("show", "one alert: criteria, schedule, recipients, its run and schedules"),
            ("pause", "stop sending the alert's messages (its schedules wait; nothing starts)"),
            ("resume", "send again, and run the alert over the cases that began to match while paused"),
        ):
            p = sub.add_parser(name, help=text)
            p.add_argument("--project", required=True, help="the project's slug")
            p.add_argument("id", type=int, help="the alert's id (see `casemsg alerts list`)")
        run = sub.add_parser(
            "run",
            help="evaluate the alert over every open case of its type now",
            description=(
                "Starts the alert's schedule for every open case that matches and has none, and ends the "
                "schedules of cases that no longer match. Resumes a run under way (after a crash, or one the "
                "worker is doing a little at a time); otherwise starts one from the first case."
            ),
        )
        run.add_argument("--project", required=True, help="the project's slug")
        run.add_argument("id", type=int, help="the alert's id (see `casemsg alerts list`)")
        run.add_argument(
            "--chunk", type=int, default=runner.CHUNK, help=f"cases per transaction (default {runner.CHUNK:,})"
        )
        run.add_argument("--quiet", action="store_true", help="no progress bar")

    def handle(self, *args: Any, **o: Any) -> None:
        project = self._project(o["project"])
        action = o["action"]
        if action == "list":
            self._list(project, o["status"])
            return
        alert = queries.alert(project, o["id"])
        if alert is None:
            raise CommandError(
                f"Project {project.slug} has no alert {o['id']}. See `casemsg alerts list --project {project.slug}`."
            )
        if action == "show":
            self._show(alert)
        elif action == "pause":
            services.pause_alert(alert)
            self.stdout.write(f"Alert {alert.pk} ({alert.name}) is paused: its schedules wait, nothing is sent.")
        elif action == "resume":
            services.resume_alert(alert)
            self.stdout.write(f"Alert {alert.pk} ({alert.name}) is active again; {_run_state(alert)}.")
        elif action == "run":
            self._run(alert, o["chunk"], o["quiet"])

    def _project(self, slug: str) -> Project:
        return lookup.project(slug)

    def _list(self, project: Project, status: str | None) -> None:
        rows = queries.summaries(queries.alerts(project, status))
        if not rows:
            self.stdout.write(f"Project {project.slug} has no alerts.")
            return
        self.stdout.write(f"{'id':>5}  {'status':7} {'case type':14} {'running':>8} {'ended':>8}  {'run':30} name")
        for s in rows:
            a = s.owner
            assert isinstance(a, ConditionalAlert)
            self.stdout.write(
                f"{a.pk:>5}  {a.status:7} {a.case_type[:14]:14} {s.running:>8,} {s.ended:>8,}  "
                f"{_run_state(a)[:30]:30} {a.name}"
            )

    def _show(self, alert: ConditionalAlert) -> None:
        s = queries.summary(alert)
        p = runner.progress(alert)
        zone = alert.project.default_time_zone  # times on the project's clock, labelled
        lines = [
            f"Alert {alert.pk}: {alert.name} ({alert.status}, revision {alert.revision})",
            f"  case type   {alert.case_type}",
            f"  cases       {s.criteria_text}",
        ]
        lines += [
            f"  reset       {alert.reset_property or '—'}",
            f"  schedule    {s.schedule_summary}",
            f"  recipients  {s.recipients_text}",
            f"  schedules   {s.running:,} running, {s.ended:,} ended; "
            f"next event {wallclock.shown(s.next_due_utc, zone)}",
            *(f"    {e.count:,} ended: {e.text}" for e in queries.ended(alert, zone)),
            f"  messages    {s.sent:,} sent, {s.failed:,} failed",
            f"  run         {_run_state(alert)}"
            + (f", started {wallclock.shown(p.started_on, zone, 'second')}" if p.started_on else "")
            + (f", finished {wallclock.shown(p.finished_on, zone, 'second')}" if p.finished_on else ""),
        ]
        self.stdout.write("\n".join(lines))

    def _run(self, alert: ConditionalAlert, chunk: int, quiet: bool) -> None:
        if alert.status != ConditionalAlert.ACTIVE:
            raise CommandError(f"Alert {alert.pk} is {alert.status}: resume it first (`casemsg alerts resume`).")
        if not 1 <= chunk <= MAX_CHUNK:
            raise CommandError(f"--chunk must be 1 to {MAX_CHUNK:,}.")
        # The bar goes to the terminal's stderr, never into redirected output or a log file.
        bar = None
        if not quiet and sys.stderr.isatty():
            bar = Progress(
                TextColumn(f"Alert {alert.pk}"),
                BarColumn(),
                TaskProgressColumn(),
                MofNCompleteColumn(),
                TextColumn("cases"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
            )
        if bar is None:
            result = runner.run(alert, chunk=chunk)
        else:
            with bar:
                task = bar.add_task("run", total=None)

                def on_progress(done: int, total: int) -> None:
                    bar.update(task, completed=done, total=max(total, done))

                result = runner.run(alert, chunk=chunk, on_progress=on_progress)
        cases = "case" if result.evaluated == 1 else "cases"
        self.stdout.write(
            f"Evaluated {result.evaluated:,} {cases} of type {alert.case_type}: started {result.started:,} "
            f"schedules, ended {result.ended:,}. Alert {alert.pk} is {_run_state(alert)}."
        )
