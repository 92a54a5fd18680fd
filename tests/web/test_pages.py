"""The operator pages, through Django's test client: access, scoping, escaping, forms, the simulator."""

from __future__ import annotations

import csv
import io

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from casemsg.cases import services as cases
from casemsg.consent.models import ConsentRecord
from casemsg.contacts.models import OptOut
from casemsg.core import errors
from casemsg.messaging import pipeline
from casemsg.messaging.models import Message
from casemsg.projects.services import add_member
from casemsg.workers import services as workers
from tests.web.conftest import make_case

KE = "254712345678"  # Kenya: one-way SMS needs only the number
US = "12066171234"  # United States: no SMS without consent
XSS = "<script>alert(1)</script>"
XSS_ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


@pytest.fixture
def data(project, sandbox):
    """A few contacts covering the usual states."""
    ke = make_case(project, "ke-1", "Asha", contact_phone_number=KE)
    us = make_case(project, "us-1", "Maria", contact_phone_number=US)
    bad = make_case(project, "bad-1", "Bad Number", contact_phone_number="1-206-617-1234")
    w = workers.create_worker(
        project, workers.WorkerChange(username="fw1", name="Field Worker", phone_numbers=["254722000001"])
    )
    return {"ke": ke, "us": us, "bad": bad, "worker": w}


def deliver() -> None:
    """What the worker does after the send form queued a message (the test transaction never commits,
    so the on-commit wake-up does not run)."""
    pipeline.deliver_due()


def pages(slug: str, case_id: str = "ke-1", worker_id: int = 1) -> list[str]:
    return [
        "/",
        f"/projects/{slug}/",
        f"/projects/{slug}/cases/",
        f"/projects/{slug}/cases/{case_id}/",
        f"/projects/{slug}/mobile-workers/",
        f"/projects/{slug}/mobile-workers/{worker_id}/",
        f"/projects/{slug}/messages/",
        f"/projects/{slug}/simulator/",
        f"/projects/{slug}/simulator/?number={KE}",
        f"/projects/{slug}/simulator/conversation/?number={KE}",
        f"/projects/{slug}/consents/",
        f"/projects/{slug}/consents.csv",
    ]


# --- access ------------------------------------------------------------------------------------
def test_anonymous_is_sent_to_login(client, project, data):
    for url in pages(project.slug, worker_id=data["worker"].pk):
        r = client.get(url)
        assert r.status_code == 302, url
        assert r["Location"].startswith("/accounts/login/?next="), url
    r = client.post(f"/projects/{project.slug}/simulator/reply/", {"number": KE, "text": "STOP"})
    assert r.status_code == 302 and r["Location"].startswith("/accounts/login/")
    assert not Message.objects.filter(direction="in").exists()


def test_user_without_a_role_sees_no_project_and_a_member_needs_no_staff_status(project, data):
    user = get_user_model().objects.create_user("someone", password="pw-someone-1")
    c = Client()
    c.force_login(user)
    assert c.get(f"/projects/{project.slug}/cases/").status_code == 404
    add_member(project, user, "viewer")
    assert c.get(f"/projects/{project.slug}/cases/").status_code == 200


def test_every_page_answers_200_for_staff(staff, project, data):
    for url in pages(project.slug, worker_id=data["worker"].pk):
        r = staff.get(url)
        assert r.status_code == 200, (url, r.status_code)
    assert staff.get("/errors/").status_code == 200


def test_errors_page_is_public_with_anchors(client, db):
    r = client.get("/errors/")
    assert r.status_code == 200
    assert b'id="NO_CONSENT"' in r.content and b'id="PHONE_OPTED_OUT"' in r.content


def test_htmx_is_served_locally(staff, db):
    r = staff.get("/")
    assert b'src="/static/web/htmx.min.js"' in r.content
    assert b"unpkg" not in r.content and b"cdn" not in r.content.lower()
    js = Client().get("/static/web/htmx.min.js")
    assert js.status_code == 200
    assert b"htmx" in b"".join(js.streaming_content if js.streaming else [js.content])[:200]


# --- scoping -----------------------------------------------------------------------------------
def test_pages_are_scoped_to_the_project_in_the_url(staff, project, other_project, sandbox):
    add_member(other_project, get_user_model().objects.get(username="operator"), "editor")
    theirs = make_case(other_project, "theirs-1", "Other Person", contact_phone_number=KE)
    w = workers.create_worker(other_project, workers.WorkerChange(username="their-fw"))
    assert staff.get(f"/projects/{project.slug}/cases/theirs-1/").status_code == 404
    assert staff.get(f"/projects/{project.slug}/mobile-workers/{w.pk}/").status_code == 404
    assert staff.get(f"/projects/{other_project.slug}/cases/theirs-1/").status_code == 200
    assert staff.get("/projects/nope/cases/").status_code == 404
    staff.post(f"/projects/{other_project.slug}/cases/theirs-1/", {"channel": "sms", "text": "their secret"})
    deliver()
    assert Message.objects.filter(case=theirs, text="their secret").exists()
    r = staff.get(f"/projects/{project.slug}/messages/")
    assert b"their secret" not in r.content
    r = staff.get(f"/projects/{project.slug}/cases/")
    assert b"Other Person" not in r.content
    # the message-log filter by case looks the case up within the project only
    r = staff.get(f"/projects/{project.slug}/messages/?case=theirs-1")
    assert b"their secret" not in r.content


# --- escaping ----------------------------------------------------------------------------------
def test_user_text_is_escaped(staff, project, sandbox):
    make_case(project, "xss-1", XSS, contact_phone_number=KE, note=XSS)
    for url in (f"/projects/{project.slug}/cases/", f"/projects/{project.slug}/cases/xss-1/"):
        html = staff.get(url).content.decode()
        assert XSS_ESCAPED in html, url
        assert XSS not in html, url
    staff.post(f"/projects/{project.slug}/cases/xss-1/", {"channel": "sms", "text": f"hi {XSS}"})
    staff.post(f"/projects/{project.slug}/simulator/reply/", {"number": KE, "text": XSS}, HTTP_HX_REQUEST="true")
    for url in (
        f"/projects/{project.slug}/messages/",
        f"/projects/{project.slug}/simulator/?number={KE}",
        f"/projects/{project.slug}/simulator/conversation/?number={KE}",
    ):
        html = staff.get(url).content.decode()
        assert XSS_ESCAPED in html, url
        assert XSS not in html, url


# --- contact status ----------------------------------------------------------------------------
def test_cases_list_shows_contact_status_at_a_glance(staff, project, data):
    html = staff.get(f"/projects/{project.slug}/cases/?state=all").content.decode()
    assert "INVALID_PHONE_NUMBER" in html and "Invalid phone number" in html
    assert "NO_CONSENT" in html  # the US case, one-way SMS
    assert "NO_TWO_WAY_PHONE_NUMBER" in html  # nobody is verified
    assert "NO_EMAIL_ADDRESS" in html
    assert "/errors/#INVALID_PHONE_NUMBER" in html


def test_cases_list_filters(staff, project, data):
    cases.create_case(project, cases.CaseChange(case_id="hh-1", case_type="household", name="Household One"))
    cases.set_closed(project, data["bad"], True)
    html = staff.get(f"/projects/{project.slug}/cases/?type=household").content.decode()
    assert "Household One" in html and "Asha" not in html
    html = staff.get(f"/projects/{project.slug}/cases/").content.decode()  # open by default
    assert "Bad Number" not in html and "Asha" in html
    html = staff.get(f"/projects/{project.slug}/cases/?state=closed").content.decode()
    assert "Bad Number" in html and "Asha" not in html
    html = staff.get(f"/projects/{project.slug}/cases/?q=mar").content.decode()
    assert "Maria" in html and "Asha" not in html
    html = staff.get(f"/projects/{project.slug}/cases/?q=ke-1").content.decode()
    assert "Asha" in html and "Maria" not in html
    # bad input: a form error, not a 500, and the other filters still apply
    r = staff.get(f"/projects/{project.slug}/cases/?state=sideways&q=mar&page=abc")
    assert r.status_code == 200
    assert "Select a valid choice" in r.content.decode() and "Maria" in r.content.decode()


def test_cases_list_paginates(staff, project, sandbox):
    cases.bulk_upsert(
        project,
        [
            cases.CaseChange(
                case_id=f"c{i:03}",
                case_type="mother",
                name=f"Person {i:03}",
                properties={"contact_phone_number": f"2547120{i:05}"},
            )
            for i in range(60)
        ],
    )
    r = staff.get(f"/projects/{project.slug}/cases/?type=mother")
    html = r.content.decode()
    assert "page 1 of 2" in html and "?type=mother&amp;page=2" in html
    assert html.count("/errors/#NO_TWO_WAY_PHONE_NUMBER") == 50
    html = staff.get(f"/projects/{project.slug}/cases/?type=mother&page=2").content.decode()
    assert html.count("/errors/#NO_TWO_WAY_PHONE_NUMBER") == 10
    assert staff.get(f"/projects/{project.slug}/cases/?page=999").status_code == 200


def test_cases_list_checks_contact_status_in_bulk(staff, project, sandbox, django_assert_max_num_queries):
    cases.bulk_upsert(
        project,
        [
            cases.CaseChange(
                case_id=f"c{i:03}",
                case_type="mother",
                name=f"Person {i:03}",
                properties={"contact_phone_number": f"2547120{i:05}"},
            )
            for i in range(50)
        ],
    )
    # a fixed handful of queries for the page, not a few per case (session, user, project, types, groups,
    # count, rows, registry entries, opt-outs, gateways, the routes' fallback gateways and their circuits)
    with django_assert_max_num_queries(15):
        r = staff.get(f"/projects/{project.slug}/cases/")
    assert r.content.decode().count("/errors/#NO_TWO_WAY_PHONE_NUMBER") == 50


def test_case_page_shows_every_problem_with_its_fix(staff, project, data):
    make_case(
        project,
        "many-1",
        "",
        contact_phone_number="1-206-617-1234",
        time_zone="Mars/Base",
        language_code="xx",
        contact_backend_id="nowhere",
        commcare_email_address="not-an-email",
    )
    html = staff.get(f"/projects/{project.slug}/cases/many-1/").content.decode()
    for code in (
        "INVALID_PHONE_NUMBER",
        "INVALID_TIME_ZONE",
        "UNKNOWN_LANGUAGE_CODE",
        "GATEWAY_NOT_FOUND",
        "INVALID_EMAIL_ADDRESS",
        "NO_CASE_NAME",
    ):
        assert f"/errors/#{code}" in html, code
    assert "remove the dashes" in html.lower()  # the specific fix, not only the generic one
    assert "Mars/Base" in html and "<code>time_zone</code>" in html  # properties are listed


def test_case_with_a_slash_in_its_id(staff, project, sandbox):
    make_case(project, "district/7", "Slashed", contact_phone_number=KE)
    html = staff.get(f"/projects/{project.slug}/cases/").content.decode()
    assert f"/projects/{project.slug}/cases/district/7/" in html
    r = staff.get(f"/projects/{project.slug}/cases/district/7/")
    assert r.status_code == 200 and b"Slashed" in r.content


def test_worker_pages_show_contact_status(staff, project, data):
    html = staff.get(f"/projects/{project.slug}/mobile-workers/").content.decode()
    assert "fw1" in html and "NO_TWO_WAY_PHONE_NUMBER" in html
    html = staff.get(f"/projects/{project.slug}/mobile-workers/{data['worker'].pk}/").content.decode()
    assert "254722000001" in html and "NO_EMAIL_ADDRESS" in html
    r = staff.post(f"/projects/{project.slug}/mobile-workers/{data['worker'].pk}/", {"channel": "sms", "text": "Hi"})
    assert r.status_code == 302
    deliver()
    assert Message.objects.get(worker=data["worker"]).status == Message.SENT


# --- sending -----------------------------------------------------------------------------------
def test_send_form_creates_a_message(staff, project, data):
    url = f"/projects/{project.slug}/cases/ke-1/"
    r = staff.post(url, {"channel": "sms", "text": "Hello {case.name}"})
    assert r.status_code == 302 and r["Location"] == url
    deliver()
    m = Message.objects.get(case=data["ke"])
    assert m.status == Message.SENT and m.text == "Hello Asha" and m.to == KE
    html = staff.get(url).content.decode()
    assert "Hello Asha" in html and f"Message {m.pk} " in html  # the log and the flash


def test_send_form_errors_are_shown_not_raised(staff, project, data):
    url = f"/projects/{project.slug}/cases/ke-1/"
    for post, expected in [
        ({"channel": "sms", "text": ""}, "MESSAGE_BLANK"),
        ({"channel": "sms", "text": "   "}, "MESSAGE_BLANK"),
        ({"channel": "sms", "text": "Hello {case.name"}, "CANNOT_RENDER_MESSAGE"),
        ({"channel": "fax", "text": "Hello"}, "Select a valid choice"),
        ({"text": "Hello"}, "This field is required"),
        ({"channel": "sms", "text": "x" * 6000}, "at most 5000 characters"),
    ]:
        r = staff.post(url, post)
        assert r.status_code == 200, post
        assert expected in r.content.decode(), post
    assert not Message.objects.exists()


def test_a_message_that_cannot_go_is_logged_with_its_error(staff, project, data):
    r = staff.post(f"/projects/{project.slug}/cases/us-1/", {"channel": "sms", "text": "Hello"}, follow=True)
    html = r.content.decode()
    assert "not sent: NO_CONSENT" in html
    m = Message.objects.get(case=data["us"])
    assert m.status == Message.FAILED and m.error == "NO_CONSENT"
    html = staff.get(f"/projects/{project.slug}/messages/").content.decode()
    title = errors.get("NO_CONSENT").title
    assert f'<a href="/errors/#NO_CONSENT"><code>NO_CONSENT</code></a> {title}' in html
    assert m.error_detail and m.error_detail.split()[0] in html  # the detail of this failure


def test_email_needs_an_address(staff, project, data):
    staff.post(f"/projects/{project.slug}/cases/ke-1/", {"channel": "email", "subject": "S", "text": "Hello"})
    m = Message.objects.get(case=data["ke"], channel="email")
    assert m.error == "NO_EMAIL_ADDRESS"


def test_opt_in_request_button(staff, project, data):
    url = f"/projects/{project.slug}/cases/us-1/"
    assert "Send the opt-in request" in staff.get(url).content.decode()
    r = staff.post(url, {"action": "opt_in"}, follow=True)
    assert f"Opt-in request sent to {US}" in r.content.decode()
    deliver()
    assert Message.objects.get(case=data["us"], kind=Message.OPT_IN_REQUEST).status == Message.SENT
    # asked again within the interval: refused with the reason, no 500
    r = staff.post(url, {"action": "opt_in"}, follow=True)
    assert r.status_code == 200 and "Opt-in request not sent" in r.content.decode()


# --- the message log ---------------------------------------------------------------------------
def test_message_log_filters(staff, project, data):
    staff.post(f"/projects/{project.slug}/cases/ke-1/", {"channel": "sms", "text": "Kenya hello"})
    staff.post(f"/projects/{project.slug}/cases/us-1/", {"channel": "sms", "text": "US hello"})
    staff.post(f"/projects/{project.slug}/cases/ke-1/", {"channel": "email", "text": "Email hello"})
    deliver()
    base = f"/projects/{project.slug}/messages/"

    def texts(query: str) -> set[str]:
        html = staff.get(base + query).content.decode()
        return {t for t in ("Kenya hello", "US hello", "Email hello") if t in html}

    assert texts("") == {"Kenya hello", "US hello", "Email hello"}
    assert texts("?status=sent") == {"Kenya hello"}
    assert texts("?error=NO_CONSENT") == {"US hello"}
    assert texts("?channel=email") == {"Email hello"}
    assert texts("?direction=in") == set()
    assert texts("?case=us-1") == {"US hello"}
    r = staff.get(base + "?status=bogus&error=NOPE&direction=sideways&worker=x")
    assert r.status_code == 200 and r.content.decode().count("Select a valid choice") == 3


# --- the phone simulator -----------------------------------------------------------------------
def test_simulator_reply_stop_creates_inbound_and_shows_the_confirmation(staff, project, data):
    url = f"/projects/{project.slug}/simulator/reply/"
    r = staff.post(url, {"number": KE, "text": "STOP"}, HTTP_HX_REQUEST="true")
    assert r.status_code == 200
    html = r.content.decode()
    inbound = Message.objects.get(direction="in")
    assert inbound.text == "STOP" and inbound.to == KE and inbound.project == project
    assert OptOut.objects.filter(phone_number=KE).exists()
    assert 'data-direction="in">STOP' in html
    assert "You are unsubscribed" in html  # the confirmation, delivered at once
    assert 'id="phone"' in html and "<html" not in html  # the htmx partial
    # ...and it stays in the conversation and in the ledger
    html = staff.get(f"/projects/{project.slug}/simulator/?case=ke-1").content.decode()
    assert "You are unsubscribed" in html
    assert ConsentRecord.objects.filter(phone_number=KE, kind="opt_out").exists()


def test_simulator_without_htmx_redirects_back(staff, project, data):
    r = staff.post(f"/projects/{project.slug}/simulator/reply/", {"number": "+" + KE, "text": "HELP"})
    assert r.status_code == 302 and r["Location"] == f"/projects/{project.slug}/simulator/?number={KE}"
    html = staff.get(r["Location"]).content.decode()
    assert "Reply STOP to unsubscribe" in html


def test_simulator_consent_flow_for_a_us_case(staff, project, data):
    staff.post(f"/projects/{project.slug}/cases/us-1/", {"action": "opt_in"})
    deliver()  # the question goes out: only then is an answer a consent
    r = staff.post(f"/projects/{project.slug}/simulator/reply/", {"number": US, "text": "yes"}, HTTP_HX_REQUEST="true")
    html = r.content.decode()
    assert "Do you consent to receiving SMS messaging?" in html and "Thank you." in html
    data["us"].refresh_from_db()
    assert data["us"].properties["contact_phone_number_is_verified"] == "1"


def test_simulator_bad_input_gives_form_errors(staff, project, data):
    url = f"/projects/{project.slug}/simulator/reply/"
    r = staff.post(url, {"number": KE, "text": ""}, HTTP_HX_REQUEST="true")
    assert r.status_code == 200 and "This field is required" in r.content.decode()
    r = staff.post(url, {"number": "abc", "text": "hi"}, HTTP_HX_REQUEST="true")
    assert r.status_code == 200 and "Enter a phone number" in r.content.decode()
    r = staff.post(url, {"number": "1" * 20, "text": "hi"})
    assert r.status_code == 200 and "at most 15 digits" in r.content.decode()
    assert not Message.objects.filter(direction="in").exists()
    r = staff.get(f"/projects/{project.slug}/simulator/?case=nope")
    assert r.status_code == 200 and "No such case" in r.content.decode()
    r = staff.get(f"/projects/{project.slug}/simulator/?case=bad-1")
    assert r.status_code == 200 and "no usable phone number" in r.content.decode()
    assert staff.get(url).status_code == 302  # GET: back to the simulator


def test_simulator_without_sandbox_gateway(staff, project):
    make_case(project, "ke-1", "Asha", contact_phone_number=KE)
    html = staff.get(f"/projects/{project.slug}/simulator/?number={KE}").content.decode()
    assert "There is no sandbox gateway" in html
    r = staff.post(f"/projects/{project.slug}/simulator/reply/", {"number": KE, "text": "hi"}, HTTP_HX_REQUEST="true")
    assert r.status_code == 200 and "is served by no gateway, not the sandbox" in r.content.decode()
    assert not Message.objects.filter(direction="in").exists()


def test_simulator_refuses_another_projects_number(staff, project, other_project, sandbox):
    make_case(other_project, "b-1", "Beta", contact_phone_number=KE, contact_phone_number_is_verified="1")
    r = staff.post(f"/projects/{project.slug}/simulator/reply/", {"number": KE, "text": "STOP"}, HTTP_HX_REQUEST="true")
    assert r.status_code == 200 and "No contact of this project has the number" in r.content.decode()
    assert not OptOut.objects.filter(phone_number=KE).exists()
    assert not Message.objects.filter(direction="in").exists()


# --- the consent ledger ------------------------------------------------------------------------
def test_consent_ledger_page_and_csv(staff, project, data):
    staff.post(f"/projects/{project.slug}/cases/us-1/", {"action": "opt_in"})
    deliver()  # the question goes out: only then is an answer a consent
    reply = f"/projects/{project.slug}/simulator/reply/"
    staff.post(reply, {"number": US, "text": "YES"}, HTTP_HX_REQUEST="true")
    staff.post(reply, {"number": US, "text": "STOP"}, HTTP_HX_REQUEST="true")
    html = staff.get(f"/projects/{project.slug}/consents/").content.decode()
    for kind in ("request", "consent", "opt_out"):
        assert f"<td>{kind}</td>" in html
    assert "Maria" in html and "Do you consent to receiving SMS messaging?" in html
    html = staff.get(f"/projects/{project.slug}/consents/?kind=opt_out").content.decode()
    assert "<td>opt_out</td>" in html and "<td>consent</td>" not in html

    r = staff.get(f"/projects/{project.slug}/consents.csv")
    assert r["Content-Type"].startswith("text/csv")
    assert f"consents-{project.slug}.csv" in r["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(b"".join(r.streaming_content).decode())))
    assert [x["kind"] for x in rows] == ["request", "consent", "opt_out"]
    assert rows[0]["phone_number"] == US and rows[0]["case_id"] == "us-1"
    r = staff.get(f"/projects/{project.slug}/consents.csv?kind=consent")
    rows = list(csv.DictReader(io.StringIO(b"".join(r.streaming_content).decode())))
    assert [x["kind"] for x in rows] == ["consent"]


def test_consent_csv_neutralises_spreadsheet_formulas(staff, project, data):
    staff.post(f"/projects/{project.slug}/cases/us-1/", {"action": "opt_in"})
    deliver()  # the question goes out: only then is an answer a refusal
    staff.post(f"/projects/{project.slug}/simulator/reply/", {"number": US, "text": "no"}, HTTP_HX_REQUEST="true")
    # what a person could have texted instead of "no"
    ConsentRecord.objects.filter(kind="refusal").update(answer='=HYPERLINK("x")')
    r = staff.get(f"/projects/{project.slug}/consents.csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(r.streaming_content).decode())))
    refusal = next(x for x in rows if x["kind"] == "refusal")
    assert refusal["answer"] == '\'=HYPERLINK("x")'


def test_project_page_summarises_settings_and_counts(staff, project, data):
    staff.post(f"/projects/{project.slug}/cases/us-1/", {"channel": "sms", "text": "Hello"})
    html = staff.get(f"/projects/{project.slug}/").content.decode()
    assert "Alpha program" in html and "UTC" in html and "sw" in html
    assert "open cases" in html and "NO_CONSENT" in html and "sandbox" in html
