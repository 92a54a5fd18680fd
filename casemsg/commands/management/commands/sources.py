"""`casemsg sources`: case sources (docs/sources.md) — add, list, test, sync (in the foreground, with a
progress bar), runs and their log, and importing a CommCare case export."""

from __future__ import annotations

import getpass
import json
import sys
from datetime import UTC
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from casemsg.commands import lookup
from casemsg.core import actor
from casemsg.core.errors import InputError
from casemsg.projects.models import Project
from casemsg.sources import exportfile, queries, services, sync
from casemsg.sources.models import Source, SourceRun
from casemsg.sources.registry import SOURCE_TYPES


def _json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CommandError(f"{what} is not valid JSON: {exc}") from exc


def _source(project: Project, ref: str) -> Source:
    found = queries.source_named(project, ref)
    if found is None:
        raise CommandError(f"Project {project.slug} has no source '{ref}'; see `casemsg sources list --project …`.")
    return found


def _when(value: Any) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if value else "-"


def run_line(r: SourceRun) -> str:
    counts = (
        f"created {r.created}, updated {r.updated}, closed {r.closed}, unchanged {r.unchanged}, skipped {r.skipped}"
    )
    error = f" — {r.error}: {r.error_detail}" if r.error else ""
    return (
        f"run {r.pk}\t{r.kind}\t{r.status}\t{_when(r.started_on)}\tpages {r.pages}, read {r.records}: {counts}{error}"
    )


class Command(BaseCommand):
    help = "Case sources: add, list, test, sync (with progress), runs and their log, import a CommCare export."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        a = sub.add_parser("add", help="add a source (CommCare HQ, ODK Central, DHIS2, push)")
        a.add_argument("name")
        a.add_argument("--project", required=True)
        a.add_argument("--type", required=True, choices=sorted(SOURCE_TYPES))
        a.add_argument(
            "--config",
            default="{}",
            help="JSON object: the type's settings and credentials; '-' reads it from standard input (keeps "
            "credentials out of the shell's history and the process list)",
        )
        a.add_argument("--mapping", default="[]", help='JSON list: [{"from": "phone", "to": "contact_phone_number"}]')
        a.add_argument("--case-type", default="", help="the case type the cases get (default: the record's own)")
        a.add_argument("--interval", type=int, default=15, help="minutes between syncs (0: only when asked)")
        a.add_argument("--drop-unmapped", action="store_true", help="keep only the fields the mapping names")
        ls = sub.add_parser("list", help="the project's sources and how their last run went")
        ls.add_argument("--project", required=True)
        ls.add_argument("--json", action="store_true")
        t = sub.add_parser("test", help="connect, read one page and show it mapped (writes nothing)")
        t.add_argument("source", help="id or name")
        t.add_argument("--project", required=True)
        s = sub.add_parser("sync", help="sync now, in the foreground")
        s.add_argument("source", help="id or name")
        s.add_argument("--project", required=True)
        s.add_argument("--full", action="store_true", help="read everything again, not only what changed")
        s.add_argument(
            "--lease",
            type=float,
            default=sync.LEASE_SECONDS,
            help="seconds another worker waits before it goes on with a sync this one stopped (default 120)",
        )
        s.add_argument("--quiet", action="store_true", help="no progress bar")
        r = sub.add_parser("runs", help="the source's runs, newest first, or one run's log")
        r.add_argument("source", help="id or name")
        r.add_argument("--project", required=True)
        r.add_argument("--limit", type=int, default=20)
        r.add_argument("--log", type=int, default=0, metavar="RUN", help="print this run's log")
        r.add_argument("--json", action="store_true")
        i = sub.add_parser("import", help="import a CommCare case export (.xlsx or .csv) as it is")
        i.add_argument("source", help="id or name (its mapping is used)")
        i.add_argument("file")
        i.add_argument("--project", required=True)
        i.add_argument("--preview", action="store_true", help="show what it would do; write nothing")

    def handle(self, *args, **o):
        project = lookup.project(o["project"])
        try:
            with actor.acting_as("cli", f"command line ({getpass.getuser()})"):
                getattr(self, "do_" + o["action"])(project, o)
        except InputError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from exc

    def do_add(self, project: Project, o: dict[str, Any]) -> None:
        src = services.add_source(
            project,
            o["name"],
            o["type"],
            _json(sys.stdin.read() if o["config"] == "-" else o["config"], "--config"),
            mapping_rules=_json(o["mapping"], "--mapping"),
            keep_unmapped=not o["drop_unmapped"],
            case_type=o["case_type"],
            interval_minutes=o["interval"],
        )
        self.stdout.write(f"Source {src.pk} {src.name} ({src.type}) added to {project.slug}.")
        path = services.receiver_path(src)
        if path:
            self.stdout.write(f"  receiver URL (keep it secret): {path}")
        if SOURCE_TYPES[src.type].pulls:
            self.stdout.write(
                f"  first sync: now, then every {src.interval_minutes} minutes; or `casemsg sources sync {src.pk}`"
            )

    def do_list(self, project: Project, o: dict[str, Any]) -> None:
        rows = list(queries.sources(project))
        latest = queries.latest_runs([s.pk for s in rows])
        if o["json"]:
            out = [
                {
                    "id": s.pk,
                    "name": s.name,
                    "type": s.type,
                    "status": s.status,
                    "active": s.active,
                    "last_error": s.last_error or None,
                    "watermark": s.watermark.isoformat() if s.watermark else None,
                    "next_sync_on": s.next_sync_on.isoformat() if s.next_sync_on else None,
                    "last_run": latest[s.pk].pk if s.pk in latest else None,
                }
                for s in rows
            ]
            self.stdout.write(json.dumps(out, indent=2))
            return
        if not rows:
            self.stdout.write(f"Project {project.slug} has no sources; add one with `casemsg sources add`.")
        for s in rows:
            state = s.status + ("" if s.active else ", paused") + (", syncing" if services.is_syncing(s) else "")
            self.stdout.write(f"{s.pk}\t{s.name}\t{s.type}\t{state}\tnext {_when(s.next_sync_on)}")
            if s.last_error:
                self.stdout.write(f"\t{s.last_error}: {s.last_error_detail}")
            if s.pk in latest:
                self.stdout.write("\t" + run_line(latest[s.pk]))

    def do_test(self, project: Project, o: dict[str, Any]) -> None:
        result = services.test_source(_source(project, o["source"]))
        if not result.ok:
            raise CommandError(f"{result.error}: {result.message}")
        if result.message:
            self.stdout.write(result.message)
            return
        total = "" if result.total is None else f" of {result.total:,}"
        self.stdout.write(f"Read {result.records} records{total}. Fields: {', '.join(result.fields) or '-'}")
        for name, label in result.labels.items():
            self.stdout.write(f"  {name} = {label}")
        self.stdout.write("A first sync of these would: " + ", ".join(f"{k} {v}" for k, v in result.counts.items()))
        for item in result.sample[:5]:
            self.stdout.write(json.dumps(item, ensure_ascii=False, default=str))
        for entry in result.skipped[:20]:
            self.stdout.write(f"skipped {entry['record']}: {entry['code']} {entry['reason']}")

    def _bar(self, run: SourceRun) -> None:
        if run.total:
            done = min(1.0, run.records / run.total)
            bar = "#" * int(done * 30)
            line = f"[{bar:<30}] {done:6.1%}  {run.records:,}/{run.total:,} records, page {run.pages}"
        else:
            line = f"{run.records:,} records, page {run.pages}"
        counts = f"  (+{run.created} ~{run.updated} x{run.closed} ={run.unchanged} !{run.skipped})"
        if sys.stdout.isatty():
            self.stdout.write("\r" + line + counts, ending="")
            self.stdout.flush()
        else:
            self.stdout.write(line + counts)

    def do_sync(self, project: Project, o: dict[str, Any]) -> None:
        src = _source(project, o["source"])
        if o["full"]:
            sync.request(src, full=True)
        token = sync.acquire(src.pk, lease=o["lease"])
        if token is None:
            src.refresh_from_db()
            raise CommandError(
                f"A sync of {src.name} is running (its lease runs to {_when(src.lease_until)}); try again after it."
            )
        run = sync.run(src.pk, token, trigger="cli", lease=o["lease"], progress=None if o["quiet"] else self._bar)
        if sys.stdout.isatty() and not o["quiet"]:
            self.stdout.write("")
        if run is None:
            raise CommandError(f"{src.name} is a {src.type} source: it is not read, its system posts to it.")
        self.stdout.write(run_line(run))
        for entry in run.log[:50]:
            if entry.get("record"):
                self.stdout.write(f"  skipped {entry['record']}: {entry['code']} {entry['reason']}")
        if run.status != SourceRun.SUCCEEDED:
            raise CommandError(f"The sync failed: {run.error}: {run.error_detail}")

    def do_runs(self, project: Project, o: dict[str, Any]) -> None:
        src = _source(project, o["source"])
        if o["log"]:
            one = queries.run(src, o["log"])
            if o["json"]:
                self.stdout.write(json.dumps({"run": one.pk, "log": one.log, "dropped": one.log_dropped}, indent=2))
                return
            self.stdout.write(run_line(one))
            self.stdout.write(f"  watermark {_when(one.watermark_before)} → {_when(one.watermark_after)}")
            for entry in one.log:
                where = f"page {entry['page']}: " if entry.get("page") else ""
                self.stdout.write(f"  {where}{entry.get('record') or '-'}  {entry.get('code') or ''} {entry['reason']}")
            if one.log_dropped:
                self.stdout.write(f"  … and {one.log_dropped} more")
            return
        rows = list(queries.runs(src)[: max(1, o["limit"])])
        if o["json"]:
            fields = ["kind", "status", "pages", "records", "created", "updated", "closed", "unchanged", "skipped"]
            out = [{"id": r.pk, **{f: getattr(r, f) for f in fields}, "error": r.error or None} for r in rows]
            self.stdout.write(json.dumps(out, indent=2))
            return
        for r in rows:
            self.stdout.write(run_line(r))

    def do_import(self, project: Project, o: dict[str, Any]) -> None:
        src = _source(project, o["source"])
        path = Path(o["file"])
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc}") from exc
        if o["preview"]:
            p = exportfile.preview(src, path.name, data)
            self.stdout.write(f"{p.rows:,} cases: " + ", ".join(f"{k} {v}" for k, v in p.counts.items()))
            for column, role in p.columns.items():
                self.stdout.write(f"  {column}: {role}")
            for entry in p.skipped:
                self.stdout.write(f"  skipped {entry['record']}: {entry['code']} {entry['reason']}")
            return
        run = exportfile.import_file(src, path.name, data, trigger="cli")
        self.stdout.write(run_line(run))
