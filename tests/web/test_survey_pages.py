"""The survey pages, through Django's test client: access, the list with its counts, uploads (XLSForm .csv
and .xlsx, JSON) and their refusals naming rows and questions, the survey's page with "start for a case"
and its refusals, the sessions list and its filters, escaping, and the phone simulator showing the open
session of a survey answered through its reply form."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from casemsg.messaging.models import Message
from casemsg.projects.services import add_member, create_project
from casemsg.surveys import services
from casemsg.surveys.models import Survey, SurveySession
from tests.inbound.conftest import KE, work
from tests.surveys.test_sessions import FIXTURES, WELCOME, anc, contact
from tests.surveys.test_xlsform import REJECTED_ROWS, csv_sheets, xlsx_bytes

pytestmark = pytest.mark.django_db

XSS = "<script>alert(1)</script>"
XSS_ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


def url(project, page: str = "surveys/") -> str:
    return f"/projects/{project.slug}/{page}"


def upload(client: Client, project, name: str, content: bytes):
    return client.post(url(project), {"file": SimpleUploadedFile(name, content)})


def page(r) -> str:
    return r.content.decode()


def test_pages_need_staff(project) -> None:
    s = services.create_survey(project, anc())
    anonymous = Client()
    for path in ("surveys/", f"surveys/{s.pk}/", "survey-sessions/"):
        r = anonymous.get(url(project, path))
        assert r.status_code == 302 and "/accounts/login/" in r["Location"], path
    r = anonymous.post(url(project), {"file": SimpleUploadedFile("a.csv", b"x")})
    assert r.status_code == 302
    assert Survey.objects.count() == 1


def test_list_detail_and_sessions_render(staff, project, api, sandbox) -> None:
    s = services.create_survey(project, anc())
    services.start_survey(project, s.pk, contact(api, KE).case_id)
    r = staff.get(url(project))
    assert r.status_code == 200
    html = page(r)
    assert 'href="/projects/alpha/surveys/"' in html  # the navigation
    assert "ANC follow-up" in html and "<code>ANC</code>" in html
    row = html.split(f'href="/projects/alpha/surveys/{s.pk}/"')[1].split("</tr>")[0]
    cells = [c.split("</td>")[0].strip() for c in row.split("<td>")[1:]]
    open_link = f'<a href="/projects/alpha/survey-sessions/?status=open&amp;survey={s.pk}">1</a>'
    assert cells[:4] == ["<code>ANC</code>", "1", "7", open_link]  # keyword, version, questions, open sessions
    assert 'class="wide"' in html  # the table scrolls inside a narrow screen

    r = staff.get(url(project, f"surveys/{s.pk}/"))
    assert r.status_code == 200
    html = page(r)
    for expected in ("<code>visited</code>", "select_one", "Did you attend your clinic visit?", "Ulihudhuria kliniki?"):
        assert expected in html
    assert "<code>${visited} = &#x27;yes&#x27;</code>" in html and "<code>last_visit_date</code>" in html
    assert '<label for="id_case_id">Case id</label>' in html  # the case picker's field
    assert staff.get(url(project, "surveys/999999/")).status_code == 404

    r = staff.get(url(project, "survey-sessions/"))
    assert r.status_code == 200
    assert "Did you attend your clinic visit? 1 Yes 2 No" in page(r) and 'warn">open</span>' in page(r)
    assert 'warn">open</span>' not in page(staff.get(url(project, "survey-sessions/?status=completed")))
    assert "No sessions." in page(staff.get(url(project, "survey-sessions/?case_id=nobody")))
    r = staff.get(url(project, "survey-sessions/?status=bogus&survey=x"))  # shown as form errors, no 500
    assert r.status_code == 200 and "errorlist" in page(r)


@pytest.mark.parametrize("kind", ["csv", "xlsx", "json"])
def test_upload_creates_the_survey(staff, project, kind: str) -> None:
    csv_text = (FIXTURES / "anc_followup.csv").read_text()
    content = {
        "csv": csv_text.encode(),
        "xlsx": xlsx_bytes(csv_sheets(csv_text)),
        "json": (FIXTURES / "anc_followup.json").read_bytes(),
    }[kind]
    r = upload(staff, project, f"anc_followup.{kind}", content)
    s = Survey.objects.get(project=project)
    assert r.status_code == 302 and r["Location"] == f"/projects/alpha/surveys/{s.pk}/"
    assert (s.name, s.keyword, s.current_version.number if s.current_version else 0) == ("ANC follow-up", "ANC", 1)
    assert "Survey “ANC follow-up” created." in page(staff.get(r["Location"]))
    if kind != "json":  # the same form again: a new version of the same survey
        upload(staff, project, f"anc_followup.{kind}", content)
        s.refresh_from_db()
        assert Survey.objects.count() == 1 and s.current_version and s.current_version.number == 2


def test_a_rejected_xlsform_shows_its_rows(staff, project) -> None:
    r = upload(staff, project, "rejected.csv", (FIXTURES / "rejected.csv").read_bytes())
    assert r.status_code == 422
    html = page(r)
    assert f"INVALID_SURVEY: the survey has {len(REJECTED_ROWS)} problems:" in html
    for row, name, _reason in REJECTED_ROWS:
        assert f"survey sheet, row {row}, question &#x27;{name}&#x27;" in html
    assert Survey.objects.count() == 0


DEVICE_FORM = (
    "survey,type,name,label\n,text,village,Which village?\n,geopoint,home,Where is your home?\n"
    ",image,photo,A photo of the house\n,select_one_from_file points.csv,point,Which water point?\n"
    "settings,form_title,form_id\n,Household,household\n"
)


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_refused_rows_are_shown_before_saving_then_confirmed(staff, project, settings, tmp_path, kind: str) -> None:
    settings.DATA_DIR = tmp_path
    content = DEVICE_FORM.encode() if kind == "csv" else xlsx_bytes(csv_sheets(DEVICE_FORM))
    files = {
        "file": SimpleUploadedFile(f"household.{kind}", content),
        "attachments": [SimpleUploadedFile("points.csv", b"name,label\np1,North well\np2,South well\n")],
    }
    r = staff.post(url(project), files)
    assert r.status_code == 200
    html = page(r)
    assert "Nothing has been saved yet" in html and Survey.objects.count() == 0
    refused = html.split('id="refused-rows"')[1].split("</ul>")[0]
    assert "survey sheet, row 3, question &#x27;home&#x27;: a location (geopoint)" in refused
    assert "survey sheet, row 4, question &#x27;photo&#x27;" in refused
    assert "Save the survey without these 2 questions" in html and "North well" in html
    token = html.split('name="token" value="')[1].split('"')[0]
    assert list(tmp_path.glob("imports/*.survey.zip"))  # the upload waits, private to casemsg's user
    r = staff.post(url(project), {"step": "confirm", "token": token})
    s = Survey.objects.get(project=project)
    assert r.status_code == 302 and r["Location"] == f"/projects/alpha/surveys/{s.pk}/"
    assert s.current_version is not None
    questions = s.current_version.definition["questions"]
    assert [(q["name"], q["type"]) for q in questions] == [
        ("village", "text"), ("home", "hidden"), ("photo", "hidden"), ("point", "select_one"),
    ]  # fmt: skip
    assert not list(tmp_path.glob("imports/*.survey.zip"))
    assert "without its refused questions" in page(staff.get(r["Location"]))
    # the token is used once
    r = staff.post(url(project), {"step": "confirm", "token": token})
    assert r.status_code == 302 and Survey.objects.count() == 1


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("notes.txt", b"hello", "An XLSForm is an .xlsx or .csv file"),
        ("broken.xlsx", b"not a zip", "not recognized as a supported type"),
        ("broken.json", b"{", "The file is not valid JSON"),
        ("list.json", b"[]", "must be a JSON object"),
    ],
)
def test_bad_files_are_form_errors(staff, project, name: str, content: bytes, expected: str) -> None:
    r = upload(staff, project, name, content)
    assert r.status_code == 422 and expected in page(r)
    assert Survey.objects.count() == 0


def test_json_problems_name_their_questions_and_text_is_escaped(staff, project) -> None:
    bad: dict[str, Any] = anc()
    bad["name"] = XSS
    bad["questions"][5]["constraint"] = ". >= ${weight}"
    r = upload(staff, project, "bad.json", json.dumps(bad).encode())
    assert r.status_code == 422
    assert "question &#x27;weeks&#x27;: constraint" in page(r)
    good = anc()
    good["name"] = XSS
    good["questions"][2]["label"]["en"] = XSS
    upload(staff, project, "good.json", json.dumps(good).encode())
    s = Survey.objects.get()
    for path in ("surveys/", f"surveys/{s.pk}/"):
        html = page(staff.get(url(project, path)))
        assert XSS not in html and XSS_ESCAPED in html


def test_start_for_a_case(staff, project, api, sandbox) -> None:
    s = services.create_survey(project, anc())
    detail = url(project, f"surveys/{s.pk}/")
    r = staff.post(detail, {"case_id": "nobody"})
    assert r.status_code == 422 and "CASE_NOT_FOUND" in page(r)
    nameless = contact(api, KE, name="")
    r = staff.post(detail, {"case_id": nameless.case_id})
    assert r.status_code == 422 and "NO_CASE_NAME" in page(r)
    one_way = api.case({"contact_phone_number": "254722000009"})["case_id"]
    r = staff.post(detail, {"case_id": one_way})
    assert r.status_code == 422 and "NO_TWO_WAY_PHONE_NUMBER" in page(r)
    assert 'id="start-refused"' in page(r) and 'class="fix small"' in page(r)  # the catalogue's fix
    assert SurveySession.objects.count() == 0

    case = contact(api, "254733000003")
    r = staff.post(detail, {"case_id": case.case_id})
    assert r.status_code == 302 and r["Location"] == f"/projects/alpha/survey-sessions/?case_id={case.case_id}"
    session = SurveySession.objects.get()
    assert (session.case_id, session.status, session.current_question) == (case.pk, "open", "visited")
    html = page(staff.get(r["Location"]))
    assert "Survey started for case" in html and "Did you attend your clinic visit?" in html


def test_simulator_shows_the_open_session_answered_through_its_reply_form(staff, project, api, sandbox) -> None:
    s = services.create_survey(project, anc())
    case = contact(api, KE)
    assert staff.post(url(project, f"surveys/{s.pk}/"), {"case_id": case.case_id}).status_code == 302
    work()  # the worker sends the first question

    html = page(staff.get(url(project, "simulator/"), {"number": KE}))
    panel = html.split('class="survey-panel')[1].split('<div class="conversation"')[0]
    assert "ANC follow-up" in panel and "<code>visited</code>" in panel
    assert f"<code>case</code> {case.case_id}" in panel  # computed on the way: the update form's entity id

    r = staff.post(url(project, "simulator/reply/"), {"number": KE, "text": "1"}, HTTP_HX_REQUEST="true")
    assert r.status_code == 200
    panel = page(r).split('class="survey-panel')[1].split('<div class="conversation"')[0]
    assert "<code>visited</code> yes" in panel
    assert "<code>visit_date</code> What was the date of the visit? Reply like 20240315" in panel

    # the conversation, oldest first: the question, the answer, the next question
    texts = [m.text for m in Message.objects.filter(project=project, to=KE).order_by("created_on", "pk")]
    assert texts == [WELCOME, "1", "What was the date of the visit? Reply like 20240315"]
    conversation = page(r).split('<div class="conversation"')[1]
    positions = [conversation.index(t) for t in ("Did you attend your clinic visit?", ">1<", "What was the date")]
    assert positions == sorted(positions)

    # #STOP ends the survey only; the panel goes
    r = staff.post(url(project, "simulator/reply/"), {"number": KE, "text": "#STOP"}, HTTP_HX_REQUEST="true")
    assert "survey-panel" not in page(r)
    assert SurveySession.objects.get().status == SurveySession.CANCELLED


CHROMIUM = "/usr/bin/chromium"


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is missing (apt-get install chromium)")
@pytest.mark.django_db(transaction=True)
def test_upload_in_a_real_browser_at_phone_width(live_server, tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    from tests.web.test_browser import CHROMIUM_ARGS

    project, _key = create_project("browser", "Browser test")
    add_member(project, get_user_model().objects.create_user("operator", password="pw-operator-1"), "editor")
    form = tmp_path / "anc_followup.xlsx"
    form.write_bytes(xlsx_bytes(csv_sheets((FIXTURES / "anc_followup.csv").read_text())))

    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 390, "height": 844})
            page.set_default_timeout(15_000)
            page.goto(f"{live_server.url}/projects/browser/surveys/")
            page.fill("#id_username", "operator")
            page.fill("#id_password", "pw-operator-1")
            page.click("form#login button[type=submit]")
            page.wait_for_url("**/projects/browser/surveys/")
            page.set_input_files("#id_file", str(form))
            page.click("#upload")
            page.wait_for_selector("#questions >> text=Did you attend your clinic visit?")
            page.goto(f"{live_server.url}/projects/browser/surveys/")
            assert page.locator("#surveys a", has_text="ANC follow-up").count() == 1
            # nothing wider than the phone: wide tables scroll inside their own container
            assert page.evaluate("document.documentElement.scrollWidth") <= 390
        finally:
            browser.close()
