import csv

from django.core.management.base import BaseCommand, CommandError

from casemsg.cases.models import Case
from casemsg.consent import ledger
from casemsg.consent import services as consent
from casemsg.core.errors import InputError
from casemsg.projects.models import Project


class Command(BaseCommand):
    help = "The consent ledger: export it as CSV, or send an opt-in request to a case."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        e = sub.add_parser("export", help="write the project's consent ledger as CSV")
        e.add_argument("--project", required=True)
        e.add_argument("--output", "-o", default="-", help="file (default: standard output)")
        r = sub.add_parser("request", help="send the opt-in question to a case")
        r.add_argument("--project", required=True)
        r.add_argument("--case", required=True)

    def handle(self, *args, **o):
        project = Project.objects.filter(slug=o["project"]).first()
        if project is None:
            raise CommandError(f"No project '{o['project']}'.")
        if o["action"] == "request":
            case = Case.objects.filter(project=project, case_id=o["case"]).first()
            if case is None:
                raise CommandError(f"No case '{o['case']}' in {project.slug}.")
            try:
                req = consent.request_opt_in(project, case, source="api")
            except InputError as e:
                raise CommandError(f"{e.code}: {e.message}") from e
            self.stdout.write(f"Opt-in request sent to {req.phone_number}: {req.text_shown!r}")
            return
        # self.stdout (not sys.stdout) so that call_command(..., stdout=…) captures the export
        out = self.stdout if o["output"] == "-" else open(o["output"], "w", newline="", encoding="utf-8")  # noqa: SIM115
        try:
            w = csv.writer(out)
            w.writerow(ledger.COLUMNS)
            for r in ledger.rows(project).iterator(chunk_size=2000):
                w.writerow(ledger.csv_row(r))
        finally:
            if out is not self.stdout:
                out.close()
