"""SMS survey sessions end to end: a survey created through the API (from JSON, or imported from the
XLSForm .csv and .xlsx), started for cases, and answered through the sandbox's inbound path, in English
and Swahili, with every question type, wrong answers, skip logic and constraints; then the case.

The helpers here are shared by the other session and API tests of this directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from casemsg.cases.models import Case
from casemsg.cases.signals import cases_changed
from casemsg.messaging.models import Message
from casemsg.surveys.models import SurveySession
from tests.inbound.conftest import KE, KE2, sent_to, sms_in, work
from tests.surveys.test_xlsform import csv_sheets, xlsx_bytes

FIXTURES = Path(__file__).parent / "fixtures"
WELCOME = "Welcome to the ANC follow-up.\nDid you attend your clinic visit? 1 Yes 2 No"
KARIBU = "Karibu kwenye ufuatiliaji wa ANC.\nUlihudhuria kliniki? 1 Ndiyo 2 Hapana"


def anc() -> dict[str, Any]:
    return json.loads((FIXTURES / "anc_followup.json").read_text())


def create_survey(api, definition: dict[str, Any], expect: int = 201) -> dict[str, Any]:
    r = api.post("surveys", definition)
    assert r.status_code == expect, r.content
    return r.json()


def upload(api, name: str, content: bytes, **form: Any):
    data: dict[str, Any] = {"file": SimpleUploadedFile(name, content), **form}
    return api.client.post(api.url("surveys/import"), data, **api._h(None))


def import_survey(api, name: str, content: bytes, expect: int = 201) -> dict[str, Any]:
    r = upload(api, name, content)
    assert r.status_code == expect, r.content
    return r.json()


def anc_survey(api, source: str = "json") -> dict[str, Any]:
    """The ANC follow-up survey, from its JSON definition or imported from the XLSForm."""
    if source == "json":
        return create_survey(api, anc())
    csv_text = (FIXTURES / "anc_followup.csv").read_text()
    if source == "csv":
        return import_survey(api, "anc_followup.csv", csv_text.encode())
    return import_survey(api, "anc_followup.xlsx", xlsx_bytes(csv_sheets(csv_text)))


def contact(api, number: str, name: str = "Asha", **properties: str) -> Case:
    """A case whose number is verified (two-way), so it can answer surveys."""
    body = api.case({"contact_phone_number": number, "contact_phone_number_is_verified": "1", **properties}, name=name)
    return Case.objects.get(project__slug=api.slug, case_id=body["case_id"])


def start(api, survey_id: int, case: Case, expect: int = 201) -> dict[str, Any]:
    r = api.post(f"surveys/{survey_id}/start", {"case_id": case.case_id})
    assert r.status_code == expect, r.content
    work()  # the worker sends the first question
    return r.json()


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


# The conversation, the same from every source of the survey.
ENGLISH = [
    ("maybe", "Please reply with the number of your choice, from 1 to 2.\n" + WELCOME.split("\n")[1]),
    ("Yes.", "What was the date of the visit? Reply like 20240315"),  # its hint, in English only
    ("20991231", "The date cannot be in the future.\nWhat was the date of the visit? Reply like 20240315"),
    (
        "20240230",
        "Please reply with a date as YYYYMMDD, for example 20240315.\n"
        "What was the date of the visit? Reply like 20240315",
    ),
    ("20240310", "What time was the visit?"),
    ("2500", "Please reply with a time as HHMM, for example 0930 or 1745.\nWhat time was the visit?"),
    ("0930", "How many weeks pregnant are you?"),
    ("1.5", "Please reply with a whole number, like 12.\nHow many weeks pregnant are you?"),
    ("50", "Reply with a number of weeks from 4 to 42.\nHow many weeks pregnant are you?"),
    ("32", "What is your weight in kg?"),
    ("61,5", "Do you have any of these symptoms? 1 Headache 2 Bleeding 3 Fever 4 None"),
    (
        "2 4",
        "'None' cannot be combined with other symptoms.\n"
        "Do you have any of these symptoms? 1 Headache 2 Bleeding 3 Fever 4 None",
    ),
    ("1,2", "Bleeding is a danger sign. Please go to the clinic today.\nAnything else to tell the nurse?"),
    ("Feeling {tired}", ""),  # the end: the answers go to the case, no more questions
]
SWAHILI = [
    ("hapana", "Una ujauzito wa wiki ngapi?"),  # No (by its Swahili label): the visit questions are skipped
    # no Swahili text for this reason in the survey: the English one, with the question in Swahili
    ("tatu", "Please reply with a whole number, like 12.\nUna ujauzito wa wiki ngapi?"),
    ("3", "Jibu kwa idadi ya wiki kati ya 4 na 42.\nUna ujauzito wa wiki ngapi?"),
    ("20", "Uzito wako ni kilo ngapi?"),
    ("25", "Jibu kwa uzito wako kwa kilo, kwa mfano 61.5.\nUzito wako ni kilo ngapi?"),
    ("55", "Una dalili zozote kati ya hizi? 1 Maumivu ya kichwa 2 Kutokwa na damu 3 Homa 4 Hakuna"),
    ("Hakuna", ""),  # None; weeks ≤ 30, so the comments question is skipped: the end
]


@pytest.mark.parametrize("source", ["json", "csv", "xlsx"])
def test_a_survey_in_two_languages_through_the_sandbox(api, sandbox, source):
    survey = anc_survey(api, source)
    asha = contact(api, KE, "Asha")
    baraka = contact(api, KE2, "Baraka", language_code="sw")
    start(api, survey["id"], asha)
    start(api, survey["id"], baraka)
    assert sent_to(KE) == [WELCOME]
    assert sent_to(KE2) == [KARIBU]

    # the two conversations interleave: each number's replies go to its own session
    english, swahili = [], []
    for i in range(max(len(ENGLISH), len(SWAHILI))):
        if i < len(ENGLISH):
            english += converse(api, KE, [ENGLISH[i][0]])
        if i < len(SWAHILI):
            swahili += converse(api, KE2, [SWAHILI[i][0]])
    assert english == ENGLISH
    assert swahili == SWAHILI

    asha.refresh_from_db()
    baraka.refresh_from_db()
    assert {k: v for k, v in asha.properties.items() if not k.startswith("contact_")} == {
        "anc_visited": "yes",
        "last_visit_date": "2024-03-10",
        "gestational_weeks": "32",
        "weight_kg": "61.5",
        "symptoms": "headache bleeding",
    }
    assert {k: v for k, v in baraka.properties.items() if not k.startswith("contact_")} == {
        "language_code": "sw",
        "anc_visited": "no",
        "gestational_weeks": "20",
        "weight_kg": "55",
        "symptoms": "none",
    }
    s = session_of(asha)
    assert (s.status, s.current_question, s.completed_on is not None) == ("completed", "", True)
    assert s.answers == {
        "case": asha.case_id,  # the update form's entity id: the case the survey was sent to
        "visited": "yes",
        "visit_date": "2024-03-10",
        "visit_time": "09:30",
        "weeks": "32",
        "weight": "61.5",
        "symptoms": "headache bleeding",
        "comments": "Feeling {tired}",
    }
    assert session_of(baraka).answers == {
        "case": baraka.case_id,
        "visited": "no",
        "weeks": "20",
        "weight": "55",
        "symptoms": "none",
    }
    # every question went out as a survey message, in the session's language, through the sandbox
    out = Message.objects.filter(direction="out", to=KE2)
    assert {(m.event.source, m.language, m.gateway_name, m.requires_two_way) for m in out} == {
        ("survey", "sw", "sandbox", True)
    }
    # after the survey, the number's messages go to keywords again
    assert converse(api, KE, ["32"]) == [("32", "")]
    assert Message.objects.filter(direction="in", to=KE).latest("pk").error_detail == "No keyword matched."


def test_completion_is_one_case_update_with_the_save_to_answers(api, sandbox):
    survey = create_survey(api, anc())
    asha = contact(api, KE, "Asha")
    start(api, survey["id"], asha)
    calls: list[dict[str, str]] = []

    def seen(sender: object, **kw: Any) -> None:
        calls.append(dict(kw["cases"][0].properties))

    cases_changed.connect(seen, dispatch_uid="test.surveys")
    try:
        converse(api, KE, ["2", "12", "70"])
        assert calls == []  # nothing is written to the case before the end
        converse(api, KE, ["3"])
    finally:
        cases_changed.disconnect(dispatch_uid="test.surveys")
    assert len(calls) == 1
    assert {k: v for k, v in calls[0].items() if not k.startswith("contact_")} == {
        "anc_visited": "no",
        "gestational_weeks": "12",
        "weight_kg": "70",
        "symptoms": "fever",
    }


def test_a_session_keeps_the_version_it_started_with(api, sandbox):
    survey = create_survey(api, anc())
    asha = contact(api, KE)
    start(api, survey["id"], asha)
    changed = anc()
    next(q for q in changed["questions"] if q["name"] == "visited")["label"]["en"] = "Did you go to the clinic?"
    r = api.client.put(
        api.url(f"surveys/{survey['id']}"), json.dumps(changed), content_type="application/json", **api._h(None)
    )
    assert (r.status_code, r.json()["version"]) == (200, 2), r.content
    assert converse(api, KE, ["x"])[0][1].endswith("Did you attend your clinic visit? 1 Yes 2 No")
    assert session_of(asha).survey_version.number == 1
    baraka = contact(api, KE2, "Baraka")
    start(api, survey["id"], baraka)
    assert sent_to(KE2) == ["Welcome to the ANC follow-up.\nDid you go to the clinic? 1 Yes 2 No"]


def test_error_messages_and_date_format_are_survey_settings(api, sandbox):
    definition = {
        "format": "casemsg-survey/1",
        "name": "Birth",
        "default_language": "en",
        "languages": ["en", "sw"],
        "settings": {
            "date_format": "DDMMYYYY",
            "error_messages": {"sw": {"invalid_date": "Jibu kwa tarehe kama {date_format}, kwa mfano {example}."}},
        },
        "questions": [
            {"name": "born", "type": "date", "label": {"en": "Date of birth?", "sw": "Tarehe ya kuzaliwa?"},
             "save_to": "dob"},
        ],
    }  # fmt: skip
    survey = create_survey(api, definition)
    assert survey["definition"]["settings"]["date_format"] == "DDMMYYYY"
    baraka = contact(api, KE, "Baraka", language_code="sw")
    start(api, survey["id"], baraka)
    assert converse(api, KE, ["20240315", "15032024"]) == [
        ("20240315", "Jibu kwa tarehe kama DDMMYYYY, kwa mfano 15032024.\nTarehe ya kuzaliwa?"),
        ("15032024", ""),
    ]
    baraka.refresh_from_db()
    assert baraka.properties["dob"] == "2024-03-15"
