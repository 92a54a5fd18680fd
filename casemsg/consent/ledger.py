"""Reading the consent ledger: the API, the page, its CSV download and `casemsg consents export` all show
the same rows and columns from here."""

from __future__ import annotations

from django.db.models import QuerySet

from casemsg.cases.models import Case
from casemsg.consent.models import ConsentRecord
from casemsg.projects.models import Project
from casemsg.workers.models import MobileWorker

COLUMNS = [
    "created_on",
    "phone_number",
    "contact",
    "project",
    "case_id",
    "mobile_worker_id",
    "kind",
    "source",
    "text_shown",
    "answer",
]
# A CSV cell starting with one of these is a formula to a spreadsheet, and `answer` is whatever the person
# texted: such cells get the usual leading apostrophe (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def contact_label(case: Case | None, worker: MobileWorker | None) -> str:
    """How the consent ledger names a contact."""
    if case is not None:
        return f"case {case.case_id}" + (f" ({case.name})" if case.name else "")
    return f"mobile worker {worker.username}" if worker is not None else ""


def rows(project: Project) -> QuerySet[ConsentRecord]:
    """The project's ledger, oldest first."""
    return ConsentRecord.objects.filter(project=project).select_related("case", "project").order_by("created_on", "pk")


def as_json(r: ConsentRecord) -> dict:
    return {
        "phone_number": r.phone_number,
        "contact": r.contact_label,
        "project": r.project.slug if r.project_id else None,
        "case_id": r.case.case_id if r.case else None,
        "mobile_worker_id": r.worker_id,
        "kind": r.kind,
        "source": r.source,
        "text_shown": r.text_shown,
        "answer": r.answer,
        "created_on": r.created_on,
    }


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def csv_row(r: ConsentRecord) -> list[str]:
    row = as_json(r)
    row["created_on"] = row["created_on"].isoformat()
    return [_cell(row[c]) for c in COLUMNS]
