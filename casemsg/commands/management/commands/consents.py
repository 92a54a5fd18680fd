import getpass
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from casemsg.cases import queries as case_queries
from casemsg.commands import lookup
from casemsg.consent import ledger
from casemsg.consent.models import ConsentRecord
from casemsg.core import actor, spreadsheet
from casemsg.core.errors import InputError
from casemsg.surveys import consent as survey_consent


class Command(BaseCommand):
    help = "The consent ledger: export it as CSV, or send an opt-in request to a case."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        e = sub.add_parser("export", help="write the project's consent ledger as CSV")
        e.add_argument("--project", required=True)
        e.add_argument("--output", "-o", default="-", help="file (default: standard output)")
        e.add_argument("--kind", choices=ConsentRecord.KINDS, help="only rows of this kind")
        e.add_argument("--phone-number", help="only rows of this number")
        r = sub.add_parser("request", help="send the opt-in question to a case")
        r.add_argument("--project", required=True)
        r.add_argument("--case", required=True)

    def handle(self, *args: Any, **o: Any) -> None:
        project = lookup.project(o["project"])
        if o["action"] == "request":
            case = case_queries.case(project, o["case"])
            if case is None:
                raise CommandError(f"No case '{o['case']}' in {project.slug}.")
            try:
                with actor.acting_as("cli", f"command line ({getpass.getuser()})"):
                    req = survey_consent.request_opt_in(project, case)
            except InputError as e:
                raise CommandError(f"{e.code}: {e.message}") from e
            self.stdout.write(f"Opt-in request sent to {req.phone_number}: {req.text_shown!r}")
            return
        # self.stdout (not sys.stdout) so that call_command(..., stdout=…) captures the export
        out = self.stdout if o["output"] == "-" else open(o["output"], "w", newline="", encoding="utf-8")  # noqa: SIM115
        try:
            f = ledger.ConsentFilter(kind=o["kind"], phone_number=o["phone_number"])
            rows = (ledger.csv_row(r) for r in ledger.consents(project, f).iterator(chunk_size=2000))
            spreadsheet.write_csv(out, ledger.COLUMNS, rows)  # every cell safe for a spreadsheet
        finally:
            if out is not self.stdout:
                out.close()
