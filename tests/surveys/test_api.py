"""The surveys API and CLI: CRUD (PUT adds a version), XLSForm import, start, the sessions list, the 422s
that name questions and rows, and project boundaries."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from casemsg.surveys.models import Survey, SurveySession, SurveyVersion
from tests.inbound.conftest import KE, KE2, sent_to, sms_in
from tests.surveys.test_sessions import (
    FIXTURES,
    WELCOME,
    anc,
    contact,
    create_survey,
    import_survey,
    start,
    upload,
)

pytestmark = pytest.mark.django_db


def put(api, path: str, body: object):
    return api.client.put(api.url(path), json.dumps(body), content_type="application/json", **api._h(None))


def error(r, status: int, code: str) -> str:
    assert (r.status_code, r.json()["error"]["code"]) == (status, code), r.content
    return r.json()["error"]["message"]


def test_create_get_list_put_delete(api):
    s = create_survey(api, anc())
    assert (s["name"], s["keyword"], s["form_id"], s["version"]) == ("ANC follow-up", "ANC", "anc_followup", 1)
    assert s["definition"]["questions"][2]["name"] == "visited"
    assert api.get(f"surveys/{s['id']}").json() == s
    listed = api.get("surveys").json()
    assert (listed["count"], [x["id"] for x in listed["items"]]) == (1, [s["id"]])

    changed = anc()
    changed["name"] = "ANC follow-up (2024)"
    changed["settings"]["keyword"] = "clinic"
    r = put(api, f"surveys/{s['id']}", changed)
    assert r.status_code == 200, r.content
    assert (r.json()["version"], r.json()["name"], r.json()["keyword"]) == (2, "ANC follow-up (2024)", "CLINIC")
    assert list(SurveyVersion.objects.order_by("number").values_list("number", flat=True)) == [1, 2]

    assert api.delete(f"surveys/{s['id']}").status_code == 204
    error(api.get(f"surveys/{s['id']}"), 404, "SURVEY_NOT_FOUND")
    error(api.delete(f"surveys/{s['id']}"), 404, "SURVEY_NOT_FOUND")
    error(put(api, f"surveys/{s['id']}", anc()), 404, "SURVEY_NOT_FOUND")
    assert SurveyVersion.objects.count() == 0


def test_a_bad_definition_is_422_naming_each_question(api):
    bad = anc()
    bad["questions"][5]["constraint"] = ". >= ${weight}"  # a later question
    bad["questions"][7]["type"] = "geopoint"
    message = error(api.post("surveys", bad), 422, "INVALID_SURVEY")
    assert "2 problems" in message
    assert "question 'weeks': constraint '. >= ${weight}' refers to ${weight}, which comes later" in message
    assert "question 'symptoms': The type 'geopoint' is not supported" in message
    error(api.post("surveys", {**anc(), "titel": "x"}), 422, "VALIDATION_ERROR")  # a misspelt key is named
    error(api.post("surveys", {**anc(), "settings": {"keyword": "stop"}}), 422, "RESERVED_KEYWORD")
    s = create_survey(api, anc())
    error(put(api, f"surveys/{s['id']}", {**anc(), "questions": []}), 422, "INVALID_SURVEY")
    assert api.get(f"surveys/{s['id']}").json()["version"] == 1
    assert Survey.objects.count() == 1


def test_two_surveys_cannot_share_a_keyword(api):
    create_survey(api, anc())
    other = {**anc(), "name": "Another"}
    error(api.post("surveys", other), 409, "KEYWORD_EXISTS")
    other["settings"] = {**other["settings"], "keyword": None}
    assert create_survey(api, other)["keyword"] == ""


def test_import_csv_then_reimport_as_a_new_version(api):
    content = (FIXTURES / "anc_followup.csv").read_bytes()
    first = import_survey(api, "anc_followup.csv", content)
    assert (first["form_id"], first["version"]) == ("anc_followup", 1)
    again = import_survey(api, "anc_followup.csv", content, expect=200)  # the same form_id
    assert (again["id"], again["version"]) == (first["id"], 2)
    r = upload(api, "anything.csv", content, survey_id=first["id"])
    assert (r.status_code, r.json()["version"]) == (200, 3)
    assert api.get("surveys").json()["count"] == 1


def test_an_imported_xlsform_equals_the_json_definition(api):
    imported = import_survey(api, "anc_followup.csv", (FIXTURES / "anc_followup.csv").read_bytes())
    api.delete(f"surveys/{imported['id']}")
    created = create_survey(api, anc())
    assert imported["definition"] == created["definition"]


def test_a_bad_xlsform_is_422_naming_its_rows(api):
    r = upload(api, "rejected.csv", (FIXTURES / "rejected.csv").read_bytes())
    message = error(r, 422, "INVALID_SURVEY")
    for row, name in [(4, "children"), (7, "home"), (8, "photo")]:
        assert f"survey sheet, row {row}, question '{name}'" in message
    error(upload(api, "form.ods", b"x"), 422, "INVALID_SURVEY")
    error(upload(api, "form.xlsx", b"PK\x03\x04 not really a workbook"), 422, "INVALID_SURVEY")
    error(api.client.post(api.url("surveys/import"), {}, **api._h(None)), 422, "VALIDATION_ERROR")  # no file
    assert Survey.objects.count() == 0


@pytest.mark.usefixtures("sandbox")
def test_start_and_the_sessions_list(api):
    s = create_survey(api, anc())
    asha = contact(api, KE, "Asha")
    baraka = contact(api, KE2, "Baraka", language_code="sw")
    started = start(api, s["id"], asha)
    assert {
        k: started[k] for k in ("survey_id", "survey_version", "case_id", "phone_number", "status", "language")
    } == {
        "survey_id": s["id"],
        "survey_version": 1,
        "case_id": asha.case_id,
        "phone_number": KE,
        "status": "open",
        "language": "en",
    }
    assert started["current_question"] == {"name": "visited", "text": WELCOME.split("\n")[1]}
    assert started["gateway"] == "sandbox" and started["reminders_sent"] == 0
    assert started["answers"] == {"case": asha.case_id}  # computed on the way: the update form's entity id
    start(api, s["id"], baraka)
    sms_in(api, KE, "1")

    listed = api.get("survey-sessions").json()
    assert (listed["count"], [i["case_id"] for i in listed["items"]]) == (2, [baraka.case_id, asha.case_id])
    mine = api.get("survey-sessions", case_id=asha.case_id).json()
    assert mine["count"] == 1
    assert mine["items"][0]["answers"] == {"case": asha.case_id, "visited": "yes"}
    assert mine["items"][0]["current_question"] == {
        "name": "visit_date",
        "text": "What was the date of the visit? Reply like 20240315",
    }
    theirs = api.get("survey-sessions", case_id=baraka.case_id).json()["items"][0]
    assert theirs["current_question"]["text"] == "Ulihudhuria kliniki? 1 Ndiyo 2 Hapana"
    sms_in(api, KE, "#STOP")
    assert api.get("survey-sessions", status="open").json()["count"] == 1
    cancelled = api.get("survey-sessions", status="cancelled").json()["items"]
    assert [(i["case_id"], i["current_question"]) for i in cancelled] == [(asha.case_id, None)]
    assert api.get("survey-sessions", survey_id=s["id"], limit=1).json()["count"] == 2
    error(api.get("survey-sessions", status="done"), 422, "VALIDATION_ERROR")
    error(api.get("survey-sessions", limit=0), 422, "VALIDATION_ERROR")

    error(api.post(f"surveys/{s['id']}/start", {"case_id": "nobody"}), 404, "CASE_NOT_FOUND")
    error(api.post(f"surveys/{s['id'] + 1}/start", {"case_id": asha.case_id}), 404, "SURVEY_NOT_FOUND")
    error(api.post(f"surveys/{s['id']}/start", {}), 422, "VALIDATION_ERROR")


@pytest.mark.usefixtures("sandbox")
def test_another_projects_key_is_403_and_ids_stay_in_their_project(api, other_api):
    s = create_survey(api, anc())
    asha = contact(api, KE)
    start(api, s["id"], asha)
    alpha = "/api/v1/projects/alpha/"
    for method, path in [
        ("get", "surveys"),
        ("get", f"surveys/{s['id']}"),
        ("delete", f"surveys/{s['id']}"),
        ("get", "survey-sessions"),
    ]:
        assert getattr(other_api, method)(alpha + path).status_code == 403, path
    assert other_api.post(alpha + "surveys", anc()).status_code == 403
    assert other_api.post(alpha + f"surveys/{s['id']}/start", {"case_id": asha.case_id}).status_code == 403
    assert put(other_api, alpha + f"surveys/{s['id']}", anc()).status_code == 403
    content = (FIXTURES / "anc_followup.csv").read_bytes()
    r = other_api.client.post(
        alpha + "surveys/import", {"file": SimpleUploadedFile("f.csv", content)}, **other_api._h(None)
    )
    assert r.status_code == 403
    assert Survey.objects.count() == 1
    # beta's own paths do not reach alpha's survey or sessions
    error(other_api.get(f"surveys/{s['id']}"), 404, "SURVEY_NOT_FOUND")
    error(other_api.post(f"surveys/{s['id']}/start", {"case_id": asha.case_id}), 404, "SURVEY_NOT_FOUND")
    assert other_api.get("survey-sessions").json() == {"count": 0, "items": []}
    assert api.get("surveys", key="").status_code == 401


@pytest.mark.usefixtures("sandbox")
def test_the_cli_imports_and_starts(api, tmp_path: Path, capsys):
    asha = contact(api, KE)
    out = tmp_path / "out.txt"
    with out.open("w") as f:
        call_command("surveys", "import", str(FIXTURES / "anc_followup.csv"), "--project", "alpha", stdout=f)
    assert out.read_text().startswith("Created survey ")
    survey = Survey.objects.get()
    with out.open("w") as f:
        call_command(
            "surveys", "start", "--project", "alpha", "--survey", str(survey.pk), "--case", asha.case_id, stdout=f
        )
    assert "Did you attend your clinic visit? 1 Yes 2 No" in out.read_text()
    assert SurveySession.objects.get().status == "open"
    with out.open("w") as f:
        call_command(
            "surveys",
            "import",
            str(FIXTURES / "anc_followup.json"),
            "--project",
            "alpha",
            "--survey",
            str(survey.pk),
            stdout=f,
        )
        call_command("surveys", "list", "--project", "alpha", stdout=f)
    assert "New version of survey" in out.read_text() and "version 2" in out.read_text()
    with pytest.raises(CommandError, match="INVALID_SURVEY: .*row 4"):
        call_command("surveys", "import", str(FIXTURES / "rejected.csv"), "--project", "alpha")
    with pytest.raises(CommandError, match="NO_TWO_WAY_PHONE_NUMBER"):
        one_way = api.case({"contact_phone_number": KE2}, name="Juma")
        call_command("surveys", "start", "--project", "alpha", "--survey", str(survey.pk), "--case", one_way["case_id"])
    with pytest.raises(CommandError, match="No project"):
        call_command("surveys", "list", "--project", "nope")
    assert sent_to(KE2) == []
