"""The send form (counter, live preview, unknown fields) and the message log (date range in the project's
zone, search, filters, CSV export, failed messages' would-be text, resend), through Django's test client."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from casemsg.cases import services as cases
from casemsg.core import errors
from casemsg.messaging import pipeline
from casemsg.messaging.models import Message
from casemsg.projects.services import add_member, create_project
from casemsg.workers import services as workers
from tests.web.clients import logged_in
from tests.web.conftest import case_url, make_case

KE = "254712345678"
US = "12066171234"


@pytest.fixture
def nairobi(db):
    """A project whose time zone is UTC+3, to see the log's times and date range in it."""
    p, _ = create_project("nbo", "Nairobi program", time_zone="Africa/Nairobi", languages=["sw"])
    return p


def log_url(project, path: str = "messages/") -> str:
    return f"/projects/{project.slug}/{path}"


def exported(client: Client, project, **params) -> list[dict[str, str]]:
    r = client.get(log_url(project, "messages.csv"), params)
    assert r.status_code == 200 and r.streaming
    return list(csv.DictReader(io.StringIO(b"".join(r.streaming_content).decode())))


# --- the send form ---------------------------------------------------------------------------------
def test_send_form_sends_through_the_pipeline(admin, project, sandbox):
    make_case(project, "ke-1", contact_phone_number=KE)
    r = admin.post(case_url(project, "ke-1"), {"action": "send", "channel": "sms", "text": "Hello {case.name}"})
    assert r.status_code == 302
    pipeline.deliver_due()
    m = Message.objects.get(case__case_id="ke-1")
    assert m.text == "Hello Asha" and m.status == Message.SENT and m.to == KE
    page = admin.get(log_url(project)).content.decode()
    assert "Hello Asha" in page and f"message-{m.pk}" in page


def test_unknown_fields_are_flagged_before_sending(admin, project, sandbox):
    make_case(project, "ke-1", contact_phone_number=KE, edd="2026-05-01")
    data = {"action": "send", "channel": "sms", "text": "Hi {case.name}, due {case.edd}, village {case.village}"}
    r = admin.post(case_url(project, "ke-1"), data)
    assert r.status_code == 200
    page = r.content.decode()
    assert "{case.village} is unknown for this contact" in page and "send anyway" in page
    assert "{case.edd}" not in page.split("is unknown")[0][-40:]  # only the unknown one is named
    assert not Message.objects.exists()
    r = admin.post(case_url(project, "ke-1"), {**data, "send_anyway": "1"})
    assert r.status_code == 302
    pipeline.deliver_due()
    assert Message.objects.get().text == "Hi Asha, due 2026-05-01, village (?)"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"channel": "sms", "text": ""}, errors.MESSAGE_BLANK),
        ({"channel": "sms", "text": "Hi {case.name"}, errors.CANNOT_RENDER_MESSAGE),
        ({"channel": "fax", "text": "Hi"}, "Select a valid choice"),
        ({"channel": "sms", "text": "x" * 5001}, "at most 5000 characters"),
    ],
)
def test_send_form_bad_input(admin, project, sandbox, data, message):
    make_case(project, "ke-1", contact_phone_number=KE)
    r = admin.post(case_url(project, "ke-1"), {"action": "send", **data})
    assert r.status_code == 200 and message in r.content.decode()
    assert not Message.objects.exists()


def test_worker_send_form(admin, project, sandbox):
    w = workers.create_worker(project, workers.WorkerChange(username="fw1", name="Otieno", phone_numbers=[KE]))
    r = admin.post(
        f"/projects/{project.slug}/mobile-workers/{w.pk}/", {"channel": "sms", "text": "Hi {recipient.name}"}
    )
    assert r.status_code == 302
    pipeline.deliver_due()
    assert Message.objects.get(worker=w).text == "Hi Otieno"
    page = preview(admin, project, worker=w.pk, text="Hi {recipient.name}, {case.name}")
    assert "Hi Otieno, (?)" in page and "Unknown for this contact: <code>{case.name}</code>" in page


def preview(client: Client, project, **params) -> str:
    r = client.get(log_url(project, "messages/preview/"), params, HTTP_HX_REQUEST="true")
    assert r.status_code == 200
    return r.content.decode()


def test_preview_renders_for_the_contact_and_flags_unknown_fields(admin, project):
    make_case(project, "ke-1", name="Asha <b>", contact_phone_number=KE)
    page = preview(admin, project, case="ke-1", text="Hello {case.name}, {case.village}")
    assert "Hello Asha &lt;b&gt;, (?)" in page  # rendered, and escaped
    assert "Unknown for this contact: <code>{case.village}</code>" in page
    page = preview(admin, project, case="ke-1", text="Hi {case.nope")
    assert "CANNOT_RENDER_MESSAGE" in page and "unclosed" in page
    # another project's case is not looked up: the template is shown as it is
    other, _ = create_project("zz", "Other")
    make_case(other, "secret", name="Hidden Name")
    page = preview(admin, project, case="secret", text="{case.name}")
    assert "Hidden Name" not in page


@pytest.mark.parametrize(
    ("text", "length", "encoding", "parts"),
    [
        ("a" * 160, 160, "GSM-7", 1),
        ("a" * 161, 161, "GSM-7", 2),
        ("a" * 306, 306, "GSM-7", 2),
        ("a" * 307, 307, "GSM-7", 3),
        ("€" * 80, 160, "GSM-7", 1),  # an extension character counts twice
        ("ä" * 160, 160, "GSM-7", 1),
        ("ș" * 70, 70, "UCS-2", 1),
        ("ș" * 71, 71, "UCS-2", 2),
        ("ș" * 134, 134, "UCS-2", 2),
        ("ș" * 135, 135, "UCS-2", 3),
        ("😀" * 35, 70, "UCS-2", 1),  # outside the BMP: two UTF-16 units
    ],
)
def test_preview_counts_characters_and_segments(admin, project, text, length, encoding, parts):
    page = preview(admin, project, text=text)
    assert f'<span class="count">{length}</span> character' in page
    assert encoding in page
    assert f'<span class="segments">{parts}</span> SMS segment' in page


def test_preview_counts_the_rendered_text(admin, project):
    make_case(project, "long", name="N" * 150)
    page = preview(admin, project, case="long", text="Hi {case.name}, ok")  # 3 + 150 + 4 = 157
    assert '<span class="count">157</span>' in page and '<span class="segments">1</span>' in page


# --- the log ---------------------------------------------------------------------------------------
def _msg(project, when: datetime, **kw) -> Message:
    fields = {"direction": "out", "channel": "sms", "status": Message.SENT, "to": KE, "text": "hello"}
    fields.update(kw)
    return Message.objects.create(project=project, created_on=when, **fields)


def test_log_times_and_date_range_are_in_the_project_zone(admin, nairobi):
    # 21:30 UTC on 1 March is 00:30 on 2 March in Nairobi
    late = _msg(nairobi, datetime(2026, 3, 1, 21, 30, tzinfo=UTC), text="late one")
    early = _msg(nairobi, datetime(2026, 3, 1, 20, 30, tzinfo=UTC), text="early one")
    page = admin.get(log_url(nairobi)).content.decode()
    assert "2026-03-02 00:30:00" in page and "2026-03-01 23:30:00" in page
    assert "Africa/Nairobi" in page
    page = admin.get(log_url(nairobi), {"since": "2026-03-02", "until": "2026-03-02"}).content.decode()
    assert "late one" in page and "early one" not in page
    page = admin.get(log_url(nairobi), {"until": "2026-03-01"}).content.decode()
    assert "early one" in page and "late one" not in page
    rows = exported(admin, nairobi, since="2026-03-02")
    assert [int(r["id"]) for r in rows] == [late.pk]
    assert rows[0]["created_local"].startswith("2026-03-02T00:30:00+03:00")
    assert rows[0]["created_on"].startswith("2026-03-01T21:30:00")
    assert early.pk not in [int(r["id"]) for r in rows]


def test_log_search_and_filters(admin, project):
    t = datetime(2026, 3, 1, 12, tzinfo=UTC)
    _msg(project, t, text="visit reminder", to=KE)
    _msg(project, t, text="other words", to="254700000001")
    _msg(project, t, text="STOP", to=KE, direction="in", status=Message.RECEIVED)
    _msg(project, t, text="", to=US, status=Message.FAILED, error=errors.NO_CONSENT, content={"text": "consent?"})
    _msg(project, t, text="mail", to="a@example.org", channel="email")

    def texts(**params) -> set[str]:
        return {r["text"] or r["error"] for r in exported(admin, project, **params)}

    assert texts(q="reminder") == {"visit reminder"}
    assert texts(q="+254 712-345-678") == {"visit reminder", "STOP"}  # the number, however written
    assert texts(q="example.org") == {"mail"}
    assert texts(direction="in") == {"STOP"}
    assert texts(status="failed") == {errors.NO_CONSENT}
    assert texts(error="NO_CONSENT") == {errors.NO_CONSENT}
    assert texts(channel="email") == {"mail"}
    assert texts(channel="sms", direction="out", status="sent") == {"visit reminder", "other words"}
    page = admin.get(log_url(project), {"q": "reminder"}).content.decode()
    assert "visit reminder" in page and "other words" not in page


@pytest.mark.parametrize(
    "params",
    [
        {"since": "yesterday"},
        {"until": "2026-13-40"},
        {"status": "lost"},
        {"error": "NOT_A_CODE"},
        {"worker": "-1"},
        {"q": "x" * 101},
    ],
)
def test_log_bad_filters_are_form_errors(admin, project, params):
    _msg(project, datetime(2026, 3, 1, 12, tzinfo=UTC), text="still listed")
    r = admin.get(log_url(project), params)
    assert r.status_code == 200
    page = r.content.decode()
    assert 'class="errorlist' in page and "still listed" in page
    assert exported(admin, project, **params)[0]["text"] == "still listed"


def test_log_htmx_returns_only_the_results(admin, project):
    _msg(project, datetime(2026, 3, 1, 12, tzinfo=UTC), text="hello there")
    r = admin.get(log_url(project), {"q": "hello"}, HTTP_HX_REQUEST="true")
    assert r.status_code == 200 and "<html" not in r.content.decode() and "hello there" in r.content.decode()


def test_csv_export_neutralises_formulas(admin, project):
    _msg(project, datetime(2026, 3, 1, 12, tzinfo=UTC), text="=cmd|' /C calc'!A0", direction="in", status="received")
    (row,) = exported(admin, project)
    assert row["text"] == "'=cmd|' /C calc'!A0"


def test_log_page_queries_do_not_grow_with_rows(admin, project, sandbox, django_assert_max_num_queries):
    for i in range(30):
        c = make_case(project, f"c{i}", name=f"N{i}", parent_id="mum")
        _msg(
            project,
            datetime(2026, 3, 1, 12, tzinfo=UTC),
            case=c,
            text="",
            status=Message.FAILED,
            error=errors.NO_CONSENT,
            content={"text": "Hi {case.name} of {case.parent.name}"},
        )
    make_case(project, "mum", name="Mama")
    with django_assert_max_num_queries(20):
        r = admin.get(log_url(project))
    assert r.content.decode().count("(would have been sent)") == 30


# --- failed messages and resend --------------------------------------------------------------------
def test_failed_message_shows_its_would_be_text_and_can_be_resent(admin, project, sandbox):
    case = make_case(project, "us-1", "Maria", contact_phone_number=US, language_code="sw")
    admin.post(
        case_url(project, "us-1"),
        {"action": "send", "channel": "sms", "text": "Hello {case.name}, your visit is due."},
    )
    failed = Message.objects.get()
    assert failed.status == Message.FAILED and failed.error == errors.NO_CONSENT and failed.text == ""
    for url in (log_url(project), case_url(project, "us-1")):  # the log, and the case's recent messages
        page = admin.get(url).content.decode()
        assert "Hello Maria, your visit is due." in page and "(would have been sent)" in page
    assert f'action="/projects/{project.slug}/messages/{failed.pk}/resend/"' in page

    # resending before the problem is fixed: a new message, failed for the same reason
    r = admin.post(log_url(project, f"messages/{failed.pk}/resend/"), {"next": log_url(project)})
    assert r.status_code == 302 and r["Location"] == log_url(project)
    assert Message.objects.filter(status=Message.FAILED, error=errors.NO_CONSENT).count() == 2
    # record consent, then resend: it goes
    cases.update_case(project, case, cases.CaseChange(properties={"contact_phone_number_is_verified": "1"}))
    r = admin.post(log_url(project, f"messages/{failed.pk}/resend/"), {"next": "https://evil.example/"})
    assert r["Location"] == log_url(project)  # never sent off-site
    pipeline.deliver_due()
    new = Message.objects.latest("pk")
    assert new.pk != failed.pk and new.status == Message.SENT and new.text == "Hello Maria, your visit is due."
    assert new.event is not None and new.event.description == f"sms resend of message {failed.pk}"
    failed.refresh_from_db()
    assert failed.status == Message.FAILED  # the failed one stays as it was in the log


def test_resend_refuses_what_cannot_be_resent(admin, project, sandbox):
    sent = _msg(project, datetime(2026, 3, 1, 12, tzinfo=UTC))
    r = admin.post(log_url(project, f"messages/{sent.pk}/resend/"))
    assert r.status_code == 302
    assert "Only a failed outbound message can be resent" in admin.get(r["Location"]).content.decode()
    other, _ = create_project("zz", "Other")
    theirs = _msg(other, datetime(2026, 3, 1, 12, tzinfo=UTC), status=Message.FAILED, content={"text": "x"})
    r = admin.post(log_url(project, f"messages/{theirs.pk}/resend/"))
    assert errors.MESSAGE_NOT_FOUND in admin.get(r["Location"]).content.decode()
    assert admin.get(log_url(project, f"messages/{sent.pk}/resend/")).status_code == 405
    assert Message.objects.count() == 2


def test_viewer_cannot_send_or_resend(project, sandbox):
    user = get_user_model().objects.create_user("vera", password="pw-vera-1")
    add_member(project, user, "viewer")
    viewer = logged_in(user)
    make_case(project, "ke-1", contact_phone_number=KE)
    failed = _msg(project, datetime(2026, 3, 1, 12, tzinfo=UTC), status=Message.FAILED, content={"text": "x"})
    assert 'id="send-form"' not in viewer.get(case_url(project, "ke-1")).content.decode()
    assert ">Resend<" not in viewer.get(log_url(project)).content.decode()
    assert viewer.post(case_url(project, "ke-1"), {"channel": "sms", "text": "Hi"}).status_code == 403
    assert viewer.post(log_url(project, f"messages/{failed.pk}/resend/")).status_code == 403
    assert Message.objects.count() == 1
