"""`casemsg cases import FILE.csv --project P --case-type T [--json] [--quiet] [--encoding E] [--max-rows N]`.

Bad rows are reported (by line) and skipped and the exit status stays 0: the import did its job for the
good rows. It is non-zero only when nothing could be imported at all: the file cannot be read, its
header is unusable, it is over a limit (TOO_MANY_ROWS: more than --max-rows rows, default 1,000,000, more
than 1,000 columns or a row over 1 MB; checked before anything is written), or the project does not exist.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from casemsg.cases.importer import MAX_ROWS, ImportFileError, ImportResult, RowNote, TooManyRows, import_csv
from casemsg.commands import lookup


class Command(BaseCommand):
    help = "Work with cases: `cases import FILE.csv --project P --case-type T` imports cases from CSV."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        imp = sub.add_parser(
            "import",
            help="create or update cases from a CSV file",
            description=(
                "Columns case_id, name, external_id, owner_id and parent_id are the case's fields; every "
                "other column is a case property (an empty cell leaves it unchanged). A row whose case_id "
                "exists updates that case. Bad rows are reported by line and skipped."
            ),
        )
        imp.add_argument("file", help="the CSV file (UTF-8; the first line names the columns)")
        imp.add_argument("--project", required=True, help="the project's slug")
        imp.add_argument("--case-type", required=True, help="the case type of every row")
        imp.add_argument("--encoding", default="utf-8-sig", help="the file's text encoding (default UTF-8)")
        imp.add_argument("--json", action="store_true", help="print the summary as JSON")
        imp.add_argument("--quiet", action="store_true", help="no progress bar")
        imp.add_argument(
            "--max-rows",
            type=int,
            default=MAX_ROWS,
            help=f"refuse a file with more data rows than this, before importing any (default {MAX_ROWS:,})",
        )

    def handle(self, *args: Any, **o: Any) -> None:
        if o["action"] == "import":
            self._import(o)

    def _import(self, o: dict[str, Any]) -> None:
        project = lookup.project(o["project"])
        as_json: bool = o["json"]
        # The bar goes to the terminal's stderr, never into redirected output or a log file.
        show_bar = not o["quiet"] and sys.stderr.isatty()
        progress = (
            Progress(
                TextColumn("Importing"),
                BarColumn(),
                TaskProgressColumn(),
                DownloadColumn(),
                TextColumn("{task.fields[rows]:,} rows"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
            )
            if show_bar
            else None
        )

        def on_note(kind: str, note: RowNote) -> None:
            if as_json:
                return  # reported in the JSON document
            text = f"line {note.line}: {note.message}"
            if kind == "warning":
                text = f"line {note.line} (imported): {note.message}"
            elif kind == "fixed":
                text = f"line {note.line} (imported, number fixed): {note.message}"
            if progress is not None:
                progress.console.print(text, markup=False, highlight=False)
            else:
                self.stderr.write(text)

        try:
            if progress is None:
                result = import_csv(
                    o["file"], project, o["case_type"], encoding=o["encoding"], on_note=on_note, max_rows=o["max_rows"]
                )
            else:
                with progress:
                    task = progress.add_task("import", total=None, rows=0)

                    def on_progress(done: int, total: int, rows: int) -> None:
                        progress.update(task, completed=done, total=total, rows=rows)

                    result = import_csv(
                        o["file"],
                        project,
                        o["case_type"],
                        encoding=o["encoding"],
                        on_note=on_note,
                        on_progress=on_progress,
                        max_rows=o["max_rows"],
                    )
        except TooManyRows as exc:
            raise CommandError(f"{exc.code}: {exc} Nothing was imported.") from exc
        except ImportFileError as exc:
            raise CommandError(str(exc)) from exc

        if as_json:
            self.stdout.write(json.dumps(result.as_dict(), indent=2))
        else:
            self._summary(result)

    def _summary(self, r: ImportResult) -> None:
        for note in r.notes:
            self.stderr.write(f"note: {note}")
        cases = "case" if r.created == 1 else "cases"
        rows = "row" if r.skipped == 1 else "rows"
        line = f"Imported {r.created:,} new {cases}, updated {r.updated:,}, skipped {r.skipped:,} bad {rows}"
        line += f" (of {r.rows:,} read from {r.file} into project {r.project}, case type {r.case_type})."
        self.stdout.write(line)
        if r.skipped:
            self.stdout.write("The skipped rows are listed above by line; fix them and import the file again.")
        if r.fixes:
            n = len(r.fixes)
            self.stdout.write(
                f"{n:,} local {'number was' if n == 1 else 'numbers were'} stored with the project's default "
                "country (listed above)."
            )
        if r.warnings:
            n = len(r.warnings)
            self.stdout.write(
                f"{n:,} imported {'case has' if n == 1 else 'cases have'} a contact problem (listed above); "
                f"their contact status shows it until it is fixed."
            )
