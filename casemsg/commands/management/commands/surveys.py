"""`casemsg surveys`: import an XLSForm (or a casemsg-survey/1 JSON file), list surveys, start one for a case."""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from casemsg.commands import lookup
from casemsg.core import actor, uploads
from casemsg.core.errors import InputError
from casemsg.projects.models import Project
from casemsg.surveys import engine, services


class Command(BaseCommand):
    help = "SMS surveys: import an XLSForm (.xlsx/.csv) or survey JSON, list surveys, start one for a case."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        i = sub.add_parser("import", help="import an XLSForm (.xlsx or .csv) or a casemsg-survey/1 .json file")
        i.add_argument("file")
        i.add_argument("--project", required=True)
        i.add_argument("--survey", type=int, help="add the file as a new version of this survey (id)")
        i.add_argument(
            "--attach", action="append", default=[], metavar="CSV", help="a CSV of choices (select_one_from_file)"
        )
        i.add_argument(
            "--accept-refused",
            action="store_true",
            help="import without the questions a phone's hardware answers (GPS, photos, barcodes, ...)",
        )
        ls = sub.add_parser("list", help="list the project's surveys")
        ls.add_argument("--project", required=True)
        s = sub.add_parser("start", help="send a survey's first question to a case")
        s.add_argument("--project", required=True)
        s.add_argument("--survey", type=int, required=True, help="the survey's id")
        s.add_argument("--case", required=True, help="the case's case_id")

    def handle(self, *args: Any, **o: Any) -> None:
        project = lookup.project(o["project"])
        try:
            with actor.acting_as("cli", f"command line ({getpass.getuser()})"):
                getattr(self, f"_{o['action']}")(project, o)
        except InputError as e:
            raise CommandError(f"{e.code}: {e.message}") from e

    def _import(self, project: Project, o: dict[str, Any]) -> None:
        path = Path(o["file"])
        try:
            # the size first (413 FILE_TOO_LARGE), not after reading it all; the rest is checked as it is read
            uploads.check_size(path.stat().st_size, services.MAX_XLSFORM_BYTES, path.name)
            content = path.read_bytes()
        except OSError as e:
            raise CommandError(f"Cannot read {path}: {e.strerror}.") from e
        if path.suffix.lower() == ".json":
            try:
                data = json.loads(content)
            except (ValueError, RecursionError) as e:
                raise CommandError(f"{path} is not valid JSON: {e}.") from e
            if o["survey"] is not None:
                survey, created = services.update_survey(project, o["survey"], data), False
            else:
                survey, created = services.create_survey(project, data), True
        else:
            attachments: dict[str, bytes] = {}
            for name in o["attach"]:
                try:
                    attachments[Path(name).name] = Path(name).read_bytes()
                except OSError as e:
                    raise CommandError(f"Cannot read {name}: {e.strerror}.") from e
            survey, created = services.import_survey(
                project, content, path.name, o["survey"], attachments=attachments, accept_refused=o["accept_refused"]
            )
        version = survey.current_version.number if survey.current_version else 0
        what = "Created survey" if created else "New version of survey"
        keyword = f", keyword {survey.keyword}" if survey.keyword else ""
        self.stdout.write(f"{what} {survey.pk} '{survey.name}' (version {version}{keyword}).")

    def _list(self, project: Project, o: dict[str, Any]) -> None:
        for s in services.list_surveys(project):
            version = s.current_version.number if s.current_version else 0
            self.stdout.write(f"{s.pk}\t{s.name}\tversion {version}\t{s.keyword or '-'}")

    def _start(self, project: Project, o: dict[str, Any]) -> None:
        session = services.start_survey(project, o["survey"], o["case"])
        question = engine.current_question_text(session)
        self.stdout.write(
            f"Survey session {session.pk} started for case {o['case']} on {session.phone_number}"
            + (f": {question!r}" if question else " (the survey had no question to ask).")
        )
