"""Every error code the send pipeline can give a message, produced for real: queued through the API (or
`pipeline.queue`, the path broadcasts, alerts and surveys use), delivered by the worker's own function
against real fake providers and a real SMTP server, and read back through the API."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from casemsg.cases.models import Case
from casemsg.consent.models import ConsentRecord
from casemsg.consent.optout import opt_out
from casemsg.contacts.models import OptOut
from casemsg.core import errors
from casemsg.gateways.services import add_gateway, map_prefix
from casemsg.messaging import pipeline
from casemsg.messaging.models import Message, MessagingEvent
from tests.conftest import closed_port, sandbox_gateway
from tests.messaging.conftest import IN, KE, KE2, US, deliver, msg, send, use_smtp

pytestmark = pytest.mark.django_db


def failed_with(api, data: dict, code: str) -> Message:
    """The message failed with `code`, and the API shows the catalogue's words for it."""
    m = msg(data)
    assert (m.status, m.error) == ("failed", code), (m.status, m.error, m.error_detail)
    got = api.get(f"messages/{m.pk}").json()
    assert got["status"] == "failed"
    assert got["error"]["code"] == code
    entry = errors.get(code)
    assert got["error"]["title"] == entry.title and got["error"]["fix"] == entry.fix
    assert not entry.delay
    return m


def queue_direct(project, case: Case, **spec) -> Message:
    """Queue as broadcasts, alerts and surveys do: straight into the pipeline, no API validation."""
    event = MessagingEvent.objects.create(project=project, source="system")
    (m,) = pipeline.queue(project, [pipeline.MessageSpec(case=case, **spec)], event)
    return m


def case_row(api, properties=None, **fields) -> Case:
    return Case.objects.get(project__slug=api.slug, case_id=api.case(properties, **fields)["case_id"])


# --- the contact ---------------------------------------------------------------------------------
def test_contact_is_inactive(api, sandbox):
    closed = api.case({"contact_phone_number": KE})
    api.patch(f"cases/{closed['case_id']}", {"closed": True})
    m = send(api, closed["case_id"])
    assert (m["status"], m["error"]["code"]) == ("failed", "CONTACT_IS_INACTIVE")  # told at once
    failed_with(api, m, "CONTACT_IS_INACTIVE")

    # closed after queuing: re-checked at send time
    later = api.case({"contact_phone_number": KE2})
    m2 = send(api, later["case_id"])
    assert m2["status"] == "queued"
    api.patch(f"cases/{later['case_id']}", {"closed": True})
    deliver()
    failed_with(api, m2, "CONTACT_IS_INACTIVE")


def test_inactive_mobile_worker(api, sandbox):
    r = api.post("mobile-workers", {"username": "otieno", "phone_numbers": [KE]})
    assert r.status_code == 201, r.content
    wid = r.json()["id"]
    assert api.patch(f"mobile-workers/{wid}", {"active": False}).status_code == 200
    r = api.post("messages", {"recipient": {"mobile_worker_id": wid}, "text": "Hi"})
    assert r.status_code == 202
    failed_with(api, r.json(), "CONTACT_IS_INACTIVE")


def test_no_phone_number(api, sandbox):
    case = api.case({"village": "Kisumu"})
    failed_with(api, send(api, case["case_id"]), "NO_PHONE_NUMBER")
    # the number removed after queuing
    case2 = api.case({"contact_phone_number": KE})
    m = send(api, case2["case_id"])
    api.patch(f"cases/{case2['case_id']}", {"properties": {"contact_phone_number": None}})
    deliver()
    failed_with(api, m, "NO_PHONE_NUMBER")


def test_invalid_phone_number(api, sandbox):
    case = api.case({"contact_phone_number": "1-206-617-1234"})
    m = failed_with(api, send(api, case["case_id"]), "INVALID_PHONE_NUMBER")
    assert "1-206-617-1234" in m.error_detail and "dashes" in m.error_detail


def test_no_consent_for_an_unverified_us_number(api, sandbox):
    unverified = api.case({"contact_phone_number": US})
    failed_with(api, send(api, unverified["case_id"]), "NO_CONSENT")
    verified = api.case({"contact_phone_number": "12066171235", "contact_phone_number_is_verified": "1"})
    ok = send(api, verified["case_id"])
    deliver()
    assert msg(ok).status == "sent"


def test_no_consent_rechecked_at_send_time(api, sandbox):
    case = api.case({"contact_phone_number": US, "contact_phone_number_is_verified": "1"})
    m = send(api, case["case_id"])
    assert m["status"] == "queued"
    api.patch(f"cases/{case['case_id']}", {"properties": {"contact_phone_number_is_verified": "0"}})
    deliver()
    failed_with(api, m, "NO_CONSENT")


def test_phone_opted_out(api, other_api, project, sandbox):
    opt_out(KE, project=project, source="keyword", answer="STOP")
    case = api.case({"contact_phone_number": KE})
    failed_with(api, send(api, case["case_id"]), "PHONE_OPTED_OUT")
    # global: another project's contact with the number is blocked too
    theirs = other_api.case({"contact_phone_number": KE})
    failed_with(other_api, send(other_api, theirs["case_id"]), "PHONE_OPTED_OUT")
    # opted out while the message waited in the queue
    case2 = api.case({"contact_phone_number": KE2})
    m = send(api, case2["case_id"])
    assert m["status"] == "queued"
    opt_out(KE2, project=project)
    deliver()
    failed_with(api, m, "PHONE_OPTED_OUT")


def test_phone_number_in_use_blocks_only_when_the_project_says_so(api, project, sandbox):
    first = api.case({"contact_phone_number": KE, "contact_phone_number_is_verified": "1"})
    second = api.case({"contact_phone_number": KE})
    a = send(api, second["case_id"])
    deliver()
    assert msg(a).status == "sent"  # shared numbers stay usable one-way by default

    project.block_shared_numbers = True
    project.save(update_fields=["block_shared_numbers"])
    m = failed_with(api, send(api, second["case_id"]), "PHONE_NUMBER_IN_USE")
    assert first["case_id"] in m.error_detail  # who holds it (same project: named)
    # and re-checked at send time: queued before the setting changed
    project.block_shared_numbers = False
    project.save(update_fields=["block_shared_numbers"])
    b = send(api, second["case_id"])
    project.block_shared_numbers = True
    project.save(update_fields=["block_shared_numbers"])
    deliver()
    failed_with(api, b, "PHONE_NUMBER_IN_USE")


def test_no_two_way_phone_number(api, project, sandbox):
    unverified = case_row(api, {"contact_phone_number": KE})
    m = queue_direct(project, unverified, text="Reply YES", requires_two_way=True)
    deliver()
    failed_with(api, {"id": m.pk}, "NO_TWO_WAY_PHONE_NUMBER")
    # one-way to the same contact is fine, and two-way to a verified owner is fine
    one_way = queue_direct(project, unverified, text="FYI")
    verified = case_row(api, {"contact_phone_number": KE2, "contact_phone_number_is_verified": "1"})
    two_way = queue_direct(project, verified, text="Reply YES", requires_two_way=True)
    deliver()
    assert msg(one_way.pk).status == "sent"
    assert msg(two_way.pk).status == "sent"


def test_two_way_needs_the_number_not_held_by_another_contact(api, project, sandbox):
    api.case({"contact_phone_number": KE, "contact_phone_number_is_verified": "1"})
    second = case_row(api, {"contact_phone_number": KE, "contact_phone_number_is_verified": "1"})
    m = queue_direct(project, second, text="Reply YES", requires_two_way=True)
    deliver()
    failed_with(api, {"id": m.pk}, "PHONE_NUMBER_IN_USE")


# --- email addresses -----------------------------------------------------------------------------
def test_no_email_address(api):
    case = api.case({"contact_phone_number": KE})
    failed_with(api, send(api, case["case_id"], channel="email", subject="Hi"), "NO_EMAIL_ADDRESS")


def test_invalid_email_address(api):
    case = api.case({"commcare_email_address": "asha(at)example.org"})
    m = failed_with(api, send(api, case["case_id"], channel="email", subject="Hi"), "INVALID_EMAIL_ADDRESS")
    assert "asha(at)example.org" in m.error_detail


# --- content -------------------------------------------------------------------------------------
def test_no_message_for_language(api, sandbox):
    case = api.case({"contact_phone_number": KE, "language_code": "sw"})
    m = send(api, case["case_id"], text=None, translations={"fr": "Bonjour"}, default_language="de")
    deliver()
    failed_with(api, m, "NO_MESSAGE_FOR_LANGUAGE")
    assert msg(m).text == ""


def test_cannot_render_message_is_refused_by_the_api(api, sandbox):
    case = api.case({"contact_phone_number": KE})
    for bad in ["Hi {case.name", "Hi {name}", "Hi } there", "{case.parent.x.y}"]:
        r = api.post("messages", {"recipient": {"case_id": case["case_id"]}, "text": bad})
        assert r.status_code == 422, bad
        assert r.json()["error"]["code"] == "CANNOT_RENDER_MESSAGE", bad
    r = api.post(
        "messages",
        {
            "recipient": {"case_id": case["case_id"]},
            "translations": {"en": "Hi {case.name}", "sw": "Habari {case.name"},
        },
    )
    assert r.status_code == 422 and r.json()["error"]["code"] == "CANNOT_RENDER_MESSAGE"
    assert not Message.objects.exists()


def test_cannot_render_message_at_send_time(api, project, sandbox):
    case = case_row(api, {"contact_phone_number": KE})
    m = queue_direct(project, case, text="Hi {case.name")
    assert m.status == "queued"
    deliver()
    row = failed_with(api, {"id": m.pk}, "CANNOT_RENDER_MESSAGE")
    assert "unclosed" in row.error_detail


def test_message_blank(api, project, sandbox):
    case = api.case({"contact_phone_number": KE, "note": "   "})
    for text in ["", "   "]:
        r = api.post("messages", {"recipient": {"case_id": case["case_id"]}, "text": text})
        assert r.status_code == 422 and r.json()["error"]["code"] == "MESSAGE_BLANK"
    r = api.post("messages", {"recipient": {"case_id": case["case_id"]}})
    assert r.status_code == 422 and r.json()["error"]["code"] == "MESSAGE_BLANK"
    # a template that renders to nothing but spaces
    m = send(api, case["case_id"], text="{case.note}")
    deliver()
    failed_with(api, m, "MESSAGE_BLANK")


def test_message_too_long_for_the_gateway(api):
    sandbox_gateway("short", "*", max_segments=1)
    case = api.case({"contact_phone_number": KE})
    fits = send(api, case["case_id"], text="a" * 160)
    gsm_two = send(api, case["case_id"], text="a" * 161)
    ucs_two = send(api, case["case_id"], text="ü" * 60 + "अ" * 11)  # 71 UCS-2 characters
    deliver()
    assert (msg(fits).status, msg(fits).segments) == ("sent", 1)
    m = failed_with(api, gsm_two, "MESSAGE_TOO_LONG")
    assert m.segments == 2 and "short" in m.error_detail
    assert failed_with(api, ucs_two, "MESSAGE_TOO_LONG").segments == 2


# --- gateways ------------------------------------------------------------------------------------
def test_gateway_not_found(api, sandbox):
    case = api.case({"contact_phone_number": KE, "contact_backend_id": "no-such-gateway"})
    m = failed_with(api, send(api, case["case_id"]), "GATEWAY_NOT_FOUND")
    assert "no-such-gateway" in m.error_detail


def test_gateway_not_found_when_the_gateway_is_removed_after_queuing(api, project):
    sandbox_gateway("fallback", "*")
    r = api.post("gateways", {"name": "mine", "type": "sandbox"})
    assert r.status_code == 201
    case = api.case({"contact_phone_number": KE, "contact_backend_id": "mine"})
    m = send(api, case["case_id"])
    assert m["status"] == "queued"
    assert api.delete("gateways/mine").status_code == 204
    deliver()
    failed_with(api, m, "GATEWAY_NOT_FOUND")


def test_no_suitable_gateway(api):
    sandbox_gateway("ke-only", "254")
    case = api.case({"contact_phone_number": IN})
    m = send(api, case["case_id"])
    deliver()
    row = failed_with(api, m, "NO_SUITABLE_GATEWAY")
    assert IN in row.error_detail


def test_unsupported_country(api):
    sandbox_gateway("ke-gw", "*", countries=["KE"])
    case = api.case({"contact_phone_number": IN})
    m = send(api, case["case_id"])
    deliver()
    failed_with(api, m, "UNSUPPORTED_COUNTRY")


def test_twilio_21211_is_invalid_destination_number(api, fake_twilio, twilio_gateway):
    fake_twilio.error_for(KE, 21211)
    case = api.case({"contact_phone_number": KE})
    m = send(api, case["case_id"])
    deliver()
    row = failed_with(api, m, "INVALID_DESTINATION_NUMBER")
    assert "21211" in row.error_detail and row.attempts == 1
    assert len(fake_twilio.requests()) == 1  # permanent: not retried
    assert not OptOut.objects.exists()


def test_twilio_21610_is_phone_opted_out_and_opts_the_number_out(api, other_api, fake_twilio, twilio_gateway):
    fake_twilio.error_for(KE, 21610)
    case = api.case({"contact_phone_number": KE})
    m = send(api, case["case_id"])
    deliver()
    failed_with(api, m, "PHONE_OPTED_OUT")
    row = OptOut.objects.get(phone_number=KE)
    assert (row.source, row.gateway_name) == ("gateway", "twilio-fake")
    assert ConsentRecord.objects.filter(phone_number=KE, kind="opt_out", source="gateway").count() == 1
    # from now on nothing is even tried to this number, from any project
    theirs = other_api.case({"contact_phone_number": KE})
    failed_with(other_api, send(other_api, theirs["case_id"]), "PHONE_OPTED_OUT")
    deliver()
    assert len(fake_twilio.requests()) == 1


def test_gateway_error_on_a_permanent_4xx(api, fake_http, http_gateway):
    fake_http.fail(times=None, status=400)
    case = api.case({"contact_phone_number": KE})
    m = send(api, case["case_id"])
    deliver()
    row = failed_with(api, m, "GATEWAY_ERROR")
    assert row.attempts == 1 and "400" in row.error_detail
    assert len(fake_http.requests()) == 1


def test_too_many_unsuccessful_attempts(api, settings, fake_http, http_gateway):
    settings.CASEMSG_RETRY_BASE_SECONDS = 0
    fake_http.fail(times=None, status=500)
    case = api.case({"contact_phone_number": KE})
    m = send(api, case["case_id"])
    for _ in range(5):
        deliver()
    row = failed_with(api, m, "TOO_MANY_UNSUCCESSFUL_ATTEMPTS")
    assert row.attempts == 3 and "500" in row.error_detail
    got = fake_http.requests()
    assert len(got) == 3 and all(r.message_id == str(row.pk) and r.status == 500 for r in got)


def test_connection_errors_count_as_unsuccessful_attempts(api, settings, db):
    settings.CASEMSG_RETRY_BASE_SECONDS = 0
    add_gateway("down", "http", {"url": f"http://127.0.0.1:{closed_port()}/send"})
    map_prefix("*", "down")
    case = api.case({"contact_phone_number": KE})
    m = send(api, case["case_id"])
    for _ in range(5):
        deliver()
    assert failed_with(api, m, "TOO_MANY_UNSUCCESSFUL_ATTEMPTS").attempts == 3


def test_message_is_stale(api, sandbox):
    case = api.case({"contact_phone_number": KE})
    old = send(api, case["case_id"])
    recent = send(api, case["case_id"], text="Recent")
    Message.objects.filter(pk=old["id"]).update(created_on=timezone.now() - timedelta(days=8))
    Message.objects.filter(pk=recent["id"]).update(created_on=timezone.now() - timedelta(days=6))
    deliver()
    row = failed_with(api, old, "MESSAGE_IS_STALE")
    assert row.sent_on is None and row.gateway_name == ""
    assert msg(recent).status == "sent"


def test_stale_limit_is_configurable(api, settings, sandbox):
    settings.CASEMSG_STALE_AFTER_DAYS = 1
    case = api.case({"contact_phone_number": KE})
    m = send(api, case["case_id"])
    Message.objects.filter(pk=m["id"]).update(created_on=timezone.now() - timedelta(days=2))
    deliver()
    failed_with(api, m, "MESSAGE_IS_STALE")


def test_loop_detected(api, settings, fake_http, http_gateway):
    settings.CASEMSG_LOOP_LIMIT = 3
    case = api.case({"contact_phone_number": KE})
    other = api.case({"contact_phone_number": KE2})
    first = [send(api, case["case_id"], text="Same text") for _ in range(2)]
    deliver()
    # the third and fourth of the same text to the same number in the window: 3 allowed, then stopped
    later = [send(api, case["case_id"], text="Same text") for _ in range(2)]
    different_text = send(api, case["case_id"], text="Another text")
    different_number = send(api, other["case_id"], text="Same text")
    deliver()
    assert [msg(m).status for m in first] == ["sent", "sent"]
    assert msg(later[0]).status == "sent"
    failed_with(api, later[1], "LOOP_DETECTED")
    assert msg(different_text).status == msg(different_number).status == "sent"
    assert fake_http.count_by_text()["Same text"] == 4  # 3 to KE, 1 to KE2


def test_loop_window_forgets_old_sends(api, settings, sandbox):
    settings.CASEMSG_LOOP_LIMIT = 1
    case = api.case({"contact_phone_number": KE})
    a = send(api, case["case_id"], text="Again")
    deliver()
    assert msg(a).status == "sent"
    Message.objects.filter(pk=a["id"]).update(sent_on=timezone.now() - timedelta(hours=2))
    b = send(api, case["case_id"], text="Again")
    c = send(api, case["case_id"], text="Again")
    deliver()
    assert msg(b).status == "sent"
    failed_with(api, c, "LOOP_DETECTED")


def test_email_gateway_error_when_the_smtp_server_is_down(api, settings):
    settings.CASEMSG_RETRY_BASE_SECONDS = 0
    use_smtp(settings, "127.0.0.1", closed_port())
    case = api.case({"commcare_email_address": "asha@example.org"})
    m = send(api, case["case_id"], channel="email", subject="Hello")
    for _ in range(5):
        deliver()
    row = failed_with(api, m, "EMAIL_GATEWAY_ERROR")
    assert row.attempts == 3


def test_email_gateway_error_on_an_smtp_5xx(api, smtp):
    smtp.refuse(times=None, reply="554 5.7.1 Message rejected as spam")
    case = api.case({"commcare_email_address": "asha@example.org"})
    m = send(api, case["case_id"], channel="email", subject="Hello")
    deliver()
    row = failed_with(api, m, "EMAIL_GATEWAY_ERROR")
    assert row.attempts == 1 and "554" in row.error_detail  # permanent: not retried
    assert smtp.messages == []


# --- delays are not failures ---------------------------------------------------------------------
def test_rate_limited_is_a_delay_not_a_failure(api):
    sandbox_gateway("slow", "*", rate_limit=1)
    case = api.case({"contact_phone_number": KE})
    ms = [send(api, case["case_id"], text=f"Message {i}") for i in range(3)]
    deliver()
    rows = [msg(m) for m in ms]
    assert [r.status for r in rows].count("sent") == 1
    waiting = [r for r in rows if r.status == "queued"]
    assert len(waiting) == 2
    for r in waiting:
        assert (r.delay_reason, r.error) == ("RATE_LIMITED", "")
        assert r.next_attempt_on > timezone.now()
        got = api.get(f"messages/{r.pk}").json()
        assert (got["status"], got["error"], got["delay_reason"]) == ("queued", None, "RATE_LIMITED")
    assert errors.get("RATE_LIMITED").delay


def test_every_pipeline_code_is_in_the_catalogue():
    produced = {
        "CONTACT_IS_INACTIVE",
        "NO_PHONE_NUMBER",
        "INVALID_PHONE_NUMBER",
        "NO_CONSENT",
        "PHONE_OPTED_OUT",
        "PHONE_NUMBER_IN_USE",
        "NO_TWO_WAY_PHONE_NUMBER",
        "NO_EMAIL_ADDRESS",
        "INVALID_EMAIL_ADDRESS",
        "NO_MESSAGE_FOR_LANGUAGE",
        "CANNOT_RENDER_MESSAGE",
        "MESSAGE_BLANK",
        "MESSAGE_TOO_LONG",
        "GATEWAY_NOT_FOUND",
        "NO_SUITABLE_GATEWAY",
        "UNSUPPORTED_COUNTRY",
        "INVALID_DESTINATION_NUMBER",
        "GATEWAY_ERROR",
        "TOO_MANY_UNSUCCESSFUL_ATTEMPTS",
        "MESSAGE_IS_STALE",
        "LOOP_DETECTED",
        "EMAIL_GATEWAY_ERROR",
        "RATE_LIMITED",
        "SENDING_OUTCOME_UNKNOWN",
    }
    assert produced <= set(errors.CATALOGUE)
