"""Helpers for the XLSForm feature tests: a form written as CSV blocks, uploaded through the API as .csv or
.xlsx (built from the same rows), started for a case and answered through the sandbox's inbound path."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Any

from django.core.files.uploadedfile import SimpleUploadedFile

from casemsg.cases.models import Case
from casemsg.surveys.models import SurveySession
from tests.inbound.conftest import sent_to, sms_in, work
from tests.surveys.test_xlsform import csv_sheets, xlsx_bytes

KINDS = ["csv", "xlsx"]


def xlsform(survey: str, **sheets: str) -> str:
    """An XLSForm as CSV text: `survey` and each named sheet (choices=, settings=, entities=,
    external_choices=) is a block of CSV lines, its header first; a line starting with '+' continues the
    line before it (for long rows)."""
    lines: list[str] = []
    for name, block in (("survey", survey), *sheets.items()):
        rows: list[str] = []
        for r in block.strip("\n").splitlines():
            if r.strip().startswith("+") and rows:
                rows[-1] = rows[-1].rstrip() + r.strip()[1:]
            elif r.strip():
                rows.append(r)
        if rows:
            lines += [f"{name},{rows[0].strip()}", *(f",{r.strip()}" for r in rows[1:])]
    return "\n".join(lines) + "\n"


def as_file(text: str, kind: str, name: str = "form") -> tuple[str, bytes]:
    """The form as an upload: the CSV itself, or an .xlsx holding the same rows."""
    if kind == "csv":
        return f"{name}.csv", text.encode()
    return f"{name}.xlsx", xlsx_bytes(csv_sheets(text))


def upload(api, text: str, kind: str, attachments: dict[str, str] | None = None, **form: Any):
    name, content = as_file(text, kind)
    data: dict[str, Any] = {"file": SimpleUploadedFile(name, content), **form}
    if attachments:
        data["attachments"] = [SimpleUploadedFile(n, v.encode()) for n, v in attachments.items()]
    return api.client.post(api.url("surveys/import"), data, **api._h(None))


def imported(api, text: str, kind: str, attachments: dict[str, str] | None = None, **form: Any) -> dict[str, Any]:
    r = upload(api, text, kind, attachments, **form)
    assert r.status_code in (200, 201), r.content
    return r.json()


def contact(api, number: str, name: str = "Asha", **properties: str) -> Case:
    body = api.case({"contact_phone_number": number, "contact_phone_number_is_verified": "1", **properties}, name=name)
    return Case.objects.get(project__slug=api.slug, case_id=body["case_id"])


def start(api, survey_id: int, case: Case) -> str:
    """Start the survey for the case; returns its first SMS."""
    before = len(sent_to(_number(case)))
    r = api.post(f"surveys/{survey_id}/start", {"case_id": case.case_id})
    assert r.status_code == 201, r.content
    work()
    return "\n--\n".join(sent_to(_number(case))[before:])


def _number(case: Case) -> str:
    return str((case.properties or {})["contact_phone_number"])


def converse(api, number: str, replies: list[str]) -> list[tuple[str, str]]:
    """Send the replies one by one; each with what came back (the texts sent to the number since)."""
    out: list[tuple[str, str]] = []
    for text in replies:
        before = len(sent_to(number))
        sms_in(api, number, text)
        out.append((text, "\n--\n".join(sent_to(number)[before:])))
    return out


def session_of(case: Case) -> SurveySession:
    return SurveySession.objects.filter(case=case).latest("started_on", "pk")


def own_properties(case: Case) -> dict[str, str]:
    """A case's properties without the contact ones the test set up."""
    case.refresh_from_db()
    return {k: v for k, v in (case.properties or {}).items() if not k.startswith("contact_") and k != "language_code"}


@dataclass
class Feature:
    """One feature's form, its conversation (each reply with what comes back) and the case at the end."""

    name: str
    form: str
    first: str  # the first SMS
    conversation: list[tuple[str, str]]
    properties: dict[str, str]
    case: dict[str, str] = field(default_factory=dict)  # the case's properties before the survey
    attachments: dict[str, str] = field(default_factory=dict)
    answers: dict[str, str] | None = None  # (some of) the session's answers at the end

    def __str__(self) -> str:
        return self.name


def csv_rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))
