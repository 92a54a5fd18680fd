"""A survey's answers export matches the answers given: one row per session, one column per question, as CSV and
as .xlsx, every cell safe in a spreadsheet (an answer that reads as a formula gets its apostrophe); the pages'
downloads answer the same rows."""

from __future__ import annotations

import csv
import io

import openpyxl
import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from casemsg.projects.services import add_member
from casemsg.surveys import exports
from casemsg.surveys.models import Survey
from tests.inbound.conftest import KE, KE2
from tests.surveys.test_sessions import contact, converse, start

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sandbox")]

SURVEY = {
    "format": "casemsg-survey/1",
    "name": "Visit follow-up",
    "default_language": "en",
    "languages": ["en"],
    "questions": [
        {"name": "intro", "type": "note", "label": {"en": "A few questions about your visit."}},
        {
            "name": "visited",
            "type": "select_one",
            "label": {"en": "Did you attend your clinic visit?"},
            "choices": [{"name": "yes", "label": {"en": "Yes"}}, {"name": "no", "label": {"en": "No"}}],
            "required": True,
        },
        {
            "name": "visit_date",
            "type": "date",
            "label": {"en": "What was the date of the visit?"},
            "relevant": "${visited} = 'yes'",
        },
        {"name": "weeks", "type": "integer", "label": {"en": "How many weeks pregnant are you?"}},
        {
            "name": "symptoms",
            "type": "select_multiple",
            "label": {"en": "Any of these symptoms?"},
            "choices": [
                {"name": "headache", "label": {"en": "Headache"}},
                {"name": "bleeding", "label": {"en": "Bleeding"}},
                {"name": "none", "label": {"en": "None"}},
            ],
        },
        {"name": "comments", "type": "text", "label": {"en": "Anything else to tell the nurse?"}},
    ],
}
ASHA = ["Yes.", "20240310", "32", "1,2", '=HYPERLINK("http://x/","click")']
BEN = ["2", "20", "3", "all fine"]  # No: the visit date is skipped
QUESTIONS = ["visited", "visit_date", "weeks", "symptoms", "comments"]


def answered(api, project) -> Survey:
    r = api.post("surveys", SURVEY)
    assert r.status_code == 201, r.content
    s = r.json()
    asha, ben = contact(api, KE, "Asha"), contact(api, KE2, "=Ben")
    start(api, s["id"], asha)
    converse(api, KE, ASHA)
    start(api, s["id"], ben)
    converse(api, KE2, BEN)
    return Survey.objects.get(pk=s["id"])


EXPECTED = [
    {
        "case_name": "Asha",
        "status": "completed",
        "visited": "yes",
        "visit_date": "2024-03-10",
        "weeks": "32",
        "symptoms": "headache bleeding",
        "comments": '\'=HYPERLINK("http://x/","click")',
    },
    {
        "case_name": "'=Ben",
        "status": "completed",
        "visited": "no",
        "visit_date": "",
        "weeks": "20",
        "symptoms": "none",
        "comments": "all fine",
    },
]


def check(table: list[list[str]]) -> None:
    head, body = table[0], table[1:]
    assert head == [*exports.SESSION_COLUMNS, *QUESTIONS]
    got = [dict(zip(head, row, strict=True)) for row in body]
    assert [{k: r[k] for k in EXPECTED[0]} for r in got] == EXPECTED
    assert [r["phone_number"] for r in got] == [KE, KE2]
    assert all(r["started_on"] and r["completed_on"] and r["version"] == "1" for r in got)


def test_the_answers_export_matches_the_answers_given(api, project):
    survey = answered(api, project)
    table = list(csv.reader(io.StringIO("".join(exports.csv_lines(project, survey)))))
    check(table)

    with exports.xlsx_file(project, survey) as f:
        book = openpyxl.load_workbook(f, read_only=True)
        sheet = book.worksheets[0]
        rows = [["" if v is None else str(v) for v in row] for row in sheet.iter_rows(values_only=True)]
        assert all(c.data_type != "f" for row in sheet.iter_rows() for c in row)  # no formula anywhere
    check(rows)


def test_the_pages_download_them(api, project):
    survey = answered(api, project)
    user = get_user_model().objects.create_user("vera", password="pw-vera-1")
    add_member(project, user, "viewer")
    client = Client()
    client.force_login(user)
    r = client.get(f"/projects/{project.slug}/surveys/{survey.pk}/answers.csv")
    assert r.status_code == 200 and r["Content-Type"].startswith("text/csv")
    check(list(csv.reader(io.StringIO(b"".join(r.streaming_content).decode()))))
    r = client.get(f"/projects/{project.slug}/surveys/{survey.pk}/answers.xlsx")
    assert r.status_code == 200 and "spreadsheetml" in r["Content-Type"]
    book = openpyxl.load_workbook(io.BytesIO(b"".join(r.streaming_content)), read_only=True)
    check([["" if v is None else str(v) for v in row] for row in book.worksheets[0].iter_rows(values_only=True)])
    other = Survey.objects.create(
        project=project, name="x", created_on=survey.created_on, modified_on=survey.created_on
    )
    assert client.get(f"/projects/{project.slug}/surveys/{other.pk + 1}/answers.csv").status_code == 404
