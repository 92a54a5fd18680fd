"""Every translation of a project as one file for translators (casemsg.translations): export as CSV and .xlsx
(the project's texts, keywords' replies, broadcasts' and alerts' contents, surveys' labels), import back
through the API, the page and the CLI — a preview first, then all or nothing, every problem named by its
row — and the changes arriving where they are used (a survey's new version, a broadcast's content)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from openpyxl import load_workbook

from casemsg.consent import texts
from casemsg.core import spreadsheet
from casemsg.inbound.models import Keyword
from casemsg.projects import services
from casemsg.projects.models import AuditEntry
from casemsg.scheduling.models import Broadcast, ConditionalAlert
from casemsg.surveys.models import Survey
from tests.conftest import Api

pytestmark = pytest.mark.django_db

SURVEY = {
    "format": "casemsg-survey/1",
    "name": "Visit",
    "default_language": "en",
    "languages": ["en"],
    "questions": [
        {
            "name": "feeling",
            "type": "select_one",
            "label": {"en": "How do you feel?"},
            "choices": [{"name": "good", "label": {"en": "Good"}}, {"name": "bad", "label": {"en": "Bad"}}],
        }
    ],
}


def later(days: int) -> str:
    return (datetime.now(UTC).date() + timedelta(days=days)).isoformat()


@pytest.fixture
def things(api) -> dict[str, int]:
    """One of each kind of row: a keyword, an SMS broadcast, an email alert, a survey."""
    api.case(case_type="mother", name="Asha", properties={"contact_phone_number": "254711000001"})
    k = api.post("keywords", {"keyword": "clinic", "reply": {"en": "Open 8-5"}}).json()["id"]
    b = api.post(
        "broadcasts",
        {
            "name": "Tip",
            "content": {"text": "Drink =clean water, {case.name}"},
            "recipients": {"case_type": "mother"},
            "schedule": {"type": "daily", "time": "09:00", "start_date": later(2), "count": 3, "time_zone": "UTC"},
        },
    )
    assert b.status_code == 201, b.content
    a = api.post(
        "alerts",
        {
            "name": "Welcome",
            "case_type": "mother",
            "criteria": [{"property": "status", "operator": "equal", "value": "pregnant"}],
            "content": {"channel": "email", "text": "Welcome {case.name}", "subject": "Welcome"},
            "recipients": ["case"],
            "schedule": {"type": "offsets", "unit": "days", "offsets": [1]},
        },
    )
    assert a.status_code == 201, a.content
    s = api.post("surveys", SURVEY)
    assert s.status_code == 201, s.content
    return {"keyword": k, "broadcast": b.json()["id"], "alert": a.json()["id"], "survey": s.json()["id"]}


def exported(api: Api) -> list[list[str]]:
    r = api.get("translations")
    assert r.status_code == 200 and r["Content-Type"].startswith("text/csv"), r
    return list(csv.reader(io.StringIO(b"".join(r.streaming_content).decode())))


def upload(api: Api, content: bytes, name: str = "translations.csv", preview: bool = False, key=None):
    url = api.url("translations") + ("?preview=true" if preview else "")
    f = io.BytesIO(content)
    f.name = name
    return api.client.post(url, {"file": f}, **api._h(key))


def as_csv(rows: list[list[str]]) -> bytes:
    out = StringIO()
    spreadsheet.write_csv(out, rows[0], rows[1:])
    return out.getvalue().encode()


def row_of(rows: list[list[str]], kind: str, pk: object, field: str) -> list[str]:
    return next(r for r in rows if r[:2] == [kind, str(pk)] and r[3] == field)


def test_the_export_holds_every_kind_of_translation(api, project, things) -> None:
    rows = exported(api)
    assert rows[0] == ["type", "id", "name", "field", "source", "en", "sw"]
    assert row_of(rows, "text", "opt_out_confirmation", "")[4] == texts.get("opt_out_confirmation").default
    assert row_of(rows, "keyword", things["keyword"], "reply")[5:] == ["Open 8-5", ""]
    # a cell that would be a formula is text to a spreadsheet (and read back as written)
    assert row_of(rows, "broadcast", things["broadcast"], "text")[4] == "Drink =clean water, {case.name}"
    assert row_of(rows, "alert", things["alert"], "subject")[4] == "Welcome"
    assert row_of(rows, "survey", things["survey"], "label feeling")[4:6] == ["How do you feel?", "How do you feel?"]
    assert row_of(rows, "survey", things["survey"], "choice feeling bad")[5] == "Bad"
    book = load_workbook(io.BytesIO(api.get("translations", format="xlsx").content), read_only=True)
    sheet_rows = [list(r) for r in book.worksheets[0].iter_rows(values_only=True)]
    assert sheet_rows[0][:5] == ["type", "id", "name", "field", "source"] and len(sheet_rows) == len(rows)


def test_a_filled_in_file_previews_then_applies(api, project, things) -> None:
    rows = exported(api)
    row_of(rows, "text", "opt_out_confirmation", "")[6] = "Umejiondoa. Tuma START kujiunga tena."
    row_of(rows, "keyword", things["keyword"], "reply")[6] = "Wazi 8-5"
    row_of(rows, "broadcast", things["broadcast"], "text")[6] = "Kunywa maji safi, {case.name}"
    row_of(rows, "alert", things["alert"], "subject")[6] = "Karibu"
    row_of(rows, "survey", things["survey"], "label feeling")[6] = "Unajisikiaje?"
    row_of(rows, "survey", things["survey"], "choice feeling good")[6] = "Vizuri"
    row_of(rows, "survey", things["survey"], "choice feeling bad")[6] = "Vibaya"
    data = as_csv(rows)

    r = upload(api, data, preview=True)
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["applied"] is False and body["problems"] == []
    assert {(c["type"], c["field"], c["language"], c["after"]) for c in body["changes"]} == {
        ("text", "", "sw", "Umejiondoa. Tuma START kujiunga tena."),
        ("keyword", "reply", "sw", "Wazi 8-5"),
        ("broadcast", "text", "sw", "Kunywa maji safi, {case.name}"),
        ("alert", "subject", "sw", "Karibu"),
        ("survey", "label feeling", "sw", "Unajisikiaje?"),
        ("survey", "choice feeling good", "sw", "Vizuri"),
        ("survey", "choice feeling bad", "sw", "Vibaya"),
    }
    # a preview changes nothing
    assert texts.own(project) == {} and Keyword.objects.get().reply == {"en": "Open 8-5"}
    assert Survey.objects.get(pk=things["survey"]).versions.count() == 1

    r = upload(api, data)
    assert r.status_code == 200, r.content
    assert r.json()["applied"] is True and len(r.json()["changes"]) == 7
    project.refresh_from_db()
    assert texts.pick(project, "opt_out_confirmation", "sw")[0] == "Umejiondoa. Tuma START kujiunga tena."
    assert Keyword.objects.get().reply == {"en": "Open 8-5", "sw": "Wazi 8-5"}
    b = Broadcast.objects.get(pk=things["broadcast"])
    assert b.content["translations"] == {"sw": "Kunywa maji safi, {case.name}"}
    a = ConditionalAlert.objects.get(pk=things["alert"])
    assert a.content["subject"] == {"*": "Welcome", "sw": "Karibu"}
    survey = Survey.objects.get(pk=things["survey"])
    definition = survey.current_version.definition
    assert definition["languages"] == ["en", "sw"] and survey.current_version.number == 2
    question = definition["questions"][0]
    assert question["label"] == {"en": "How do you feel?", "sw": "Unajisikiaje?"}
    assert [c["label"]["sw"] for c in question["choices"]] == ["Vizuri", "Vibaya"]
    assert AuditEntry.objects.filter(setting="texts.opt_out_confirmation").count() == 1
    # the same file again changes nothing
    assert upload(api, data).json()["changes"] == []
    # an emptied cell removes that translation
    row_of(rows, "keyword", things["keyword"], "reply")[6] = ""
    assert upload(api, as_csv(rows)).status_code == 200
    assert Keyword.objects.get().reply == {"en": "Open 8-5"}


def test_problems_are_named_by_row_and_nothing_is_applied(api, project, things) -> None:
    rows = exported(api)
    row_of(rows, "keyword", things["keyword"], "reply")[6] = "Wazi 8-5"  # fine, but not applied
    row_of(rows, "text", "verification_code", "")[6] = "Nambari yako."  # no {code}
    row_of(rows, "text", "help_text", "")[6] = "Msaada: piga simu."  # drops STOP: fine with the admin key
    row_of(rows, "broadcast", things["broadcast"], "text")[6] = "Habari {case.name"  # a broken template
    rows.append(["keyword", "9999", "", "reply", "", "", "x"])
    rows.append(["poem", "1", "", "", "", "", "x"])
    rows.append(list(row_of(rows, "alert", things["alert"], "text")))
    r = upload(api, as_csv(rows))
    assert (r.status_code, r.json()["error"]["code"]) == (422, "INVALID_TRANSLATIONS_FILE")
    message = r.json()["error"]["message"]
    numbered = {n: i + 1 for i, n in enumerate(map(tuple, rows))}
    assert f"row {numbered[tuple(row_of(rows, 'text', 'verification_code', ''))]}: VALIDATION_ERROR" in message
    assert f"row {len(rows) - 2}: the project has no keyword '9999'" in message
    assert f"row {len(rows) - 1}: type 'poem' is not one of" in message
    assert f"row {len(rows)}: the same alert" in message
    assert "CANNOT_RENDER_MESSAGE" in message
    assert Keyword.objects.get().reply == {"en": "Open 8-5"} and texts.own(project) == {}

    preview = upload(api, as_csv(rows), preview=True).json()
    assert [p["row"] for p in preview["problems"]] == sorted(p["row"] for p in preview["problems"])
    assert len(preview["problems"]) == 5

    # without admin, dropping HELP's opt-out word is a problem of its row too
    _row, key = services.issue_key(project, "w", ["read", "write"])
    only_help = [rows[0], row_of(rows, "text", "help_text", "")]
    body = upload(api, as_csv(only_help), preview=True, key=key).json()
    assert body["problems"] == [{"row": 2, "message": body["problems"][0]["message"]}]
    assert body["problems"][0]["message"].startswith("WEAKENS_LEGAL_RULE: texts.help_text.sw: no longer names")


@pytest.mark.parametrize(
    ("content", "name", "status", "code", "words"),
    [
        (b"type,id,field,fr\n", "t.csv", 422, "INVALID_TRANSLATIONS_FILE", "Row 1: the column 'fr' is not one of"),
        (b"id,field,sw\n", "t.csv", 422, "INVALID_TRANSLATIONS_FILE", "Row 1: the column type is missing"),
        (b"", "t.csv", 422, "INVALID_TRANSLATIONS_FILE", "The file is empty"),
        (b"\xff\xfe\x00x", "t.csv", 422, "INVALID_TRANSLATIONS_FILE", "not UTF-8"),
        (b"PK\x03\x04nonsense", "t.xlsx", 422, "INVALID_TRANSLATIONS_FILE", "not an .xlsx workbook"),
        (b"x" * (5 * 1024 * 1024 + 1), "t.csv", 413, "FILE_TOO_LARGE", "the limit is 5 MB"),
    ],
)
def test_unreadable_files_are_refused_at_once(api, content, name, status, code, words) -> None:
    r = upload(api, content, name)
    assert (r.status_code, r.json()["error"]["code"]) == (status, code), r.content
    assert words in r.json()["error"]["message"]


def test_an_xlsx_round_trip_and_the_cli(api, project, things, tmp_path) -> None:
    data = api.get("translations", format="xlsx").content
    book = load_workbook(io.BytesIO(data))
    sheet = book.worksheets[0]
    for row in sheet.iter_rows(min_row=2):
        if row[0].value == "keyword":
            row[6].value = "Wazi 8-5"
    path = tmp_path / "filled.xlsx"
    book.save(path)
    out = StringIO()
    call_command("project", "translations", project.slug, "--import", str(path), "--preview", stdout=out)
    assert "Would change 1 translations; 0 problems." in out.getvalue()
    assert Keyword.objects.get().reply == {"en": "Open 8-5"}
    call_command("project", "translations", project.slug, "--import", str(path), stdout=out)
    assert Keyword.objects.get().reply == {"en": "Open 8-5", "sw": "Wazi 8-5"}
    target = tmp_path / "out.csv"
    call_command("project", "translations", project.slug, "--export", str(target), stdout=StringIO())
    assert target.read_text(encoding="utf-8").splitlines()[0] == "type,id,name,field,source,en,sw"
