"""Reading the consent ledger: the API, the page, its CSV download and `casemsg consents export` translate
their input into a ConsentFilter and call consents(), so they all show the same rows; the page's download
and the command write the same CSV columns (COLUMNS, csv_row)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, QuerySet

from casemsg.cases.models import Case
from casemsg.consent.models import ConsentRecord
from casemsg.core import actor
from casemsg.gateways.base import digits
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


# Sources where someone other than the contact recorded the row; the others are the person's own doing.
_RECORDED = {"worker_form", "import", "api", "page", "cli", "system"}


def recorded_by(source: str) -> str:
    """Who recorded a ledger row of this source: whoever is acting now (an API key, a user), or nobody
    when the person did (an answer, a keyword, a verification code, their carrier's report)."""
    return actor.current().who if source in _RECORDED else ""


def contact_label(case: Case | None, worker: MobileWorker | None) -> str:
    """How the consent ledger names a contact."""
    if case is not None:
        return f"case {case.case_id}" + (f" ({case.name})" if case.name else "")
    return f"mobile worker {worker.username}" if worker is not None else ""


def entry(
    number: str,
    kind: str,
    source: str,
    *,
    created_on: datetime,
    project: Project | None = None,
    case: Case | None = None,
    worker: MobileWorker | None = None,
    text_shown: str = "",
    answer: str = "",
) -> ConsentRecord:
    """A ledger row (unsaved), with the contact named and who recorded it filled in the one way."""
    return ConsentRecord(
        phone_number=number,
        project=project,
        case=case,
        worker=worker,
        contact_label=contact_label(case, worker),
        kind=kind,
        source=source,
        recorded_by=recorded_by(source),
        text_shown=text_shown,
        answer=answer,
        created_on=created_on,
    )


@dataclass(frozen=True)
class ConsentFilter:
    """Which of a project's ledger rows to show. Empty values filter nothing."""

    kind: str | None = None  # one of ConsentRecord.KINDS
    phone_number: str | None = None  # in any format: its digits are compared
    newest_first: bool = False  # the ledger's own order is oldest first


def consents(project: Project, f: ConsentFilter) -> QuerySet[ConsentRecord]:
    """The project's ledger rows matching `f`, with their case and project."""
    qs = ConsentRecord.objects.filter(project=project)
    if f.kind:
        qs = qs.filter(kind=f.kind)
    if f.phone_number:
        qs = qs.filter(phone_number=digits(f.phone_number))
    qs = qs.select_related("case", "project")
    return qs.order_by("-created_on", "-pk") if f.newest_first else qs.order_by("created_on", "pk")


def kind_counts(project: Project) -> dict[str, int]:
    """{kind: the project's ledger rows of that kind} for every kind (0 when none), in one query."""
    counts = dict.fromkeys(ConsentRecord.KINDS, 0)
    counts.update(ConsentRecord.objects.filter(project=project).values_list("kind").annotate(n=Count("pk")).order_by())
    return counts


def csv_row(r: ConsentRecord) -> list[object]:
    """One row of the CSV export, in COLUMNS order. `answer` is whatever the person texted: the exports
    write rows with casemsg.core.spreadsheet, which neutralises formulas (CSV injection)."""
    row: dict[str, object] = {
        "created_on": r.created_on.isoformat(),
        "phone_number": r.phone_number,
        "contact": r.contact_label,
        "project": r.project.slug if r.project is not None else None,
        "case_id": r.case.case_id if r.case is not None else None,
        "mobile_worker_id": r.worker_id,
        "kind": r.kind,
        "source": r.source,
        "text_shown": r.text_shown,
        "answer": r.answer,
    }
    return [row[c] for c in COLUMNS]
