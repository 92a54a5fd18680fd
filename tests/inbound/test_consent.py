"""US consent: nothing but the opt-in request reaches a consent-region number until the person answers
Yes; the answer is stored through the normal case update, so the registry and two-way ownership follow.

Outbound goes through a Twilio gateway at a fake Twilio on 127.0.0.1 (real HTTP); answers arrive in
Twilio's own webhook format, signed as Twilio signs them."""

from __future__ import annotations

import io
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from casemsg.consent import services as consent
from casemsg.consent import texts as system_texts
from casemsg.consent.models import ConsentRequest
from casemsg.contacts.models import PhoneEntry
from casemsg.gateways.services import add_gateway, inbound_url, map_prefix
from casemsg.messaging.models import Message
from tests.inbound.conftest import (
    CONSENT_THANKS,
    KE,
    OPT_IN_CONFIRMATION,
    OPT_OUT_CONFIRMATION,
    QUESTION,
    US,
    US2,
    is_opted_out,
    ledger_kinds,
    outbox,
    send,
    sms_in,
    work,
)
from tests.servers.webhooks import FORM, twilio_inbound, twilio_signature

pytestmark = pytest.mark.django_db


@pytest.fixture
def twilio(db, fake_twilio):
    """An installation-wide Twilio gateway (at the fake) routing every number."""
    gw = add_gateway("twilio", "twilio", fake_twilio.gateway_config())
    map_prefix("*", "twilio")
    return gw


def twilio_in(gw, number: str, text: str, sid: str | None = None) -> int:
    """Twilio posts an inbound SMS to our webhook, signed with the account's auth token."""
    path = inbound_url(gw)
    fields = twilio_inbound(number, text, sid=sid)
    sig = twilio_signature("http://testserver" + path, fields, gw.config["auth_token"])
    r = Client().post(path, urlencode(fields), content_type=FORM, headers={"X-Twilio-Signature": sig})
    assert r.status_code == 200, r.content
    work()
    return r.status_code


def texts(fake) -> list[str]:
    return [r.text for r in fake.messages()]


def ask(api, case_id: str) -> dict:
    r = api.post(f"cases/{case_id}/opt-in-request")
    assert r.status_code == 202, r.content
    work()
    return r.json()


@pytest.mark.parametrize("answer", ["Yes", "yes", "1", " YES ", "y"])
def test_yes_records_consent_through_the_case_update(api, twilio, fake_twilio, answer):
    c = api.case({"contact_phone_number": US}, name="Maria")
    cid = c["case_id"]
    assert send(api, cid)["error"]["code"] == "NO_CONSENT"
    req = ask(api, cid)
    # queued until the question went out; waiting for the answer since
    assert (req["phone_number"], req["text_shown"], req["status"]) == (US, QUESTION, "queued")
    assert texts(fake_twilio) == [QUESTION]
    assert ConsentRequest.objects.get(pk=req["id"]).status == "pending"
    assert send(api, cid, "still waiting")["error"]["code"] == "NO_CONSENT"
    contact = api.contact(cid)
    assert not contact["verified"] and not contact["two_way"]

    twilio_in(twilio, US, answer)

    case = api.get(f"cases/{cid}").json()
    assert case["properties"]["contact_phone_number_is_verified"] == "1"
    contact = api.contact(cid)
    assert contact["verified"] and contact["two_way"] and contact["sms"]["ok"] and contact["two_way_sms"]["ok"]
    entry = PhoneEntry.objects.get(phone_number=US)
    assert entry.verified and entry.two_way and entry.case.case_id == cid
    assert ConsentRequest.objects.get(pk=req["id"]).status == "consented"
    assert texts(fake_twilio) == [QUESTION, CONSENT_THANKS]
    # the inbound answer is logged against the case that was asked
    (inbound,) = api.get("messages", direction="in").json()["items"]
    assert inbound["recipient"] == {"case_id": cid} and inbound["text"] == answer
    # now messages go
    assert send(api, cid, "Hello {case.name}")["status"] == "queued"
    work()
    assert texts(fake_twilio) == [QUESTION, CONSENT_THANKS, "Hello Maria"]
    # and the ledger holds the request and the consent, with what was shown and answered
    rows = api.get("consents").json()["items"]
    assert [(r["kind"], r["source"], r["text_shown"], r["answer"]) for r in rows] == [
        ("request", "api", QUESTION, ""),
        ("consent", "survey", QUESTION, answer),
    ]


@pytest.mark.parametrize("answer", ["No", "no", "0", " NO "])
def test_no_records_a_refusal_and_nothing_is_sent(api, twilio, fake_twilio, answer):
    cid = api.case({"contact_phone_number": US})["case_id"]
    req = ask(api, cid)

    twilio_in(twilio, US, answer)

    assert ConsentRequest.objects.get(pk=req["id"]).status == "refused"
    assert "contact_phone_number_is_verified" not in api.get(f"cases/{cid}").json()["properties"]
    assert api.contact(cid)["sms"]["error"]["code"] == "NO_CONSENT"
    assert send(api, cid)["error"]["code"] == "NO_CONSENT"
    work()
    assert texts(fake_twilio) == [QUESTION]  # no thanks, nothing else
    assert ledger_kinds(US) == ["request", "refusal"]
    assert api.get("consents", kind="refusal").json()["items"][0]["answer"] == answer
    # the question is answered: a later "yes" is not taken as consent
    twilio_in(twilio, US, "yes")
    assert api.contact(cid)["sms"]["error"]["code"] == "NO_CONSENT"
    assert ledger_kinds(US) == ["request", "refusal"]


def test_other_replies_leave_the_question_pending(api, twilio, fake_twilio):
    cid = api.case({"contact_phone_number": US})["case_id"]
    req = ask(api, cid)
    twilio_in(twilio, US, "who is this?")
    assert ConsentRequest.objects.get(pk=req["id"]).status == "pending"
    # but the reply is logged against the case that was asked
    (inbound,) = api.get("messages", direction="in").json()["items"]
    assert inbound["recipient"] == {"case_id": cid}
    twilio_in(twilio, US, "yes")
    assert api.contact(cid)["sms"]["ok"]


def test_unanswered_request_expires(api, project, twilio, fake_twilio):
    cid = api.case({"contact_phone_number": US})["case_id"]
    req = ask(api, cid)
    row = ConsentRequest.objects.get(pk=req["id"])
    assert row.expires_on - row.sent_on == timedelta(hours=project.opt_in_expiry_hours)  # counted from sending
    assert consent.expire_requests() == 0  # not yet due
    assert ConsentRequest.objects.get(pk=req["id"]).status == "pending"

    # the expiry passes without an answer
    ConsentRequest.objects.filter(pk=req["id"]).update(
        created_on=row.created_on - timedelta(hours=73), expires_on=timezone.now() - timedelta(seconds=1)
    )
    assert consent.expire_requests() == 1
    assert consent.expire_requests() == 0
    assert ConsentRequest.objects.get(pk=req["id"]).status == "expired"
    rows = api.get("consents").json()["items"]
    assert [(r["kind"], r["source"], r["case_id"], r["text_shown"]) for r in rows] == [
        ("request", "api", cid, QUESTION),
        ("expired", "system", cid, QUESTION),
    ]

    # a late yes no longer routes to the case: no consent, no thanks
    twilio_in(twilio, US, "yes")
    assert api.contact(cid)["sms"]["error"]["code"] == "NO_CONSENT"
    assert "contact_phone_number_is_verified" not in api.get(f"cases/{cid}").json()["properties"]
    assert texts(fake_twilio) == [QUESTION]
    assert Message.objects.get(direction="in").case_id is None

    # it can be asked again, and that answer counts
    ask(api, cid)
    twilio_in(twilio, US, "yes")
    assert api.contact(cid)["sms"]["ok"]


def test_at_most_one_request_per_contact_per_interval(api, project, twilio, fake_twilio):
    cid = api.case({"contact_phone_number": US})["case_id"]
    first = ask(api, cid)
    r = api.post(f"cases/{cid}/opt-in-request")
    assert r.status_code == 429 and r.json()["error"]["code"] == "RATE_LIMITED"
    assert "24 hours" in r.json()["error"]["message"]
    # the CLI obeys the same limit
    with pytest.raises(CommandError, match="RATE_LIMITED"):
        call_command("consents", "request", "--project", "alpha", "--case", cid, stdout=io.StringIO())
    work()
    assert texts(fake_twilio) == [QUESTION]
    assert ConsentRequest.objects.count() == 1

    # a contact's limit is its own
    other = api.case({"contact_phone_number": US2})["case_id"]
    ask(api, other)

    # once the interval has passed, asking again works; the new question replaces the old one
    ConsentRequest.objects.filter(pk=first["id"]).update(created_on=timezone.now() - timedelta(hours=25))
    out = io.StringIO()
    call_command("consents", "request", "--project", "alpha", "--case", cid, stdout=out)
    assert f"Opt-in request sent to {US}" in out.getvalue()
    work()
    assert texts(fake_twilio) == [QUESTION, QUESTION, QUESTION]
    assert ConsentRequest.objects.get(pk=first["id"]).status == "expired"
    assert ConsentRequest.objects.filter(case__case_id=cid, status="pending").count() == 1
    # a shorter project interval applies at once
    project.opt_in_interval_hours = 0
    project.save()
    assert api.post(f"cases/{other}/opt-in-request").status_code == 202


def test_request_refused_when_not_needed_or_not_possible(api, sandbox):
    ke = api.case({"contact_phone_number": KE})["case_id"]
    consented = api.case({"contact_phone_number": US, "contact_phone_number_is_verified": "1"})["case_id"]
    none = api.case({})["case_id"]
    bad = api.case({"contact_phone_number": "1-206-617-1234"})["case_id"]
    closed = api.case({"contact_phone_number": US2})["case_id"]
    api.patch(f"cases/{closed}", {"closed": True})
    expected = {
        consented: (409, "CONSENT_ALREADY_RECORDED"),
        none: (422, "NO_PHONE_NUMBER"),
        bad: (422, "INVALID_PHONE_NUMBER"),
        closed: (422, "CONTACT_IS_INACTIVE"),
        "no-such-case": (404, "CASE_NOT_FOUND"),
    }
    for cid, (status, code) in expected.items():
        r = api.post(f"cases/{cid}/opt-in-request")
        assert (r.status_code, r.json()["error"]["code"]) == (status, code), cid
    assert ConsentRequest.objects.count() == 0
    # a number outside the consent regions may be asked (a program may want consent anyway) or not;
    # either way it needs no consent to receive messages
    assert send(api, ke)["status"] == "queued"


def test_us_contact_receives_nothing_but_the_question_until_yes(api, twilio, fake_twilio):
    cid = api.case({"contact_phone_number": US}, name="Maria")["case_id"]
    before = [send(api, cid, f"reminder {i}") for i in range(3)]
    assert {(m["status"], m["error"]["code"]) for m in before} == {("failed", "NO_CONSENT")}
    ask(api, cid)
    during = send(api, cid, "while pending")
    assert during["error"]["code"] == "NO_CONSENT"
    # a keyword reply or help text to the pending number is fine (compliance), a normal message is not
    work()
    assert texts(fake_twilio) == [QUESTION]
    for m in [*before, during]:
        assert Message.objects.get(pk=m["id"]).status == "failed"

    twilio_in(twilio, US, "1")
    after = send(api, cid, "Your appointment is Monday")
    assert after["status"] == "queued"
    work()
    assert texts(fake_twilio) == [QUESTION, CONSENT_THANKS, "Your appointment is Monday"]
    assert Message.objects.get(pk=after["id"]).status == "sent"


def test_consent_revoked_by_the_worker_blocks_again(api, twilio, fake_twilio):
    cid = api.case({"contact_phone_number": US})["case_id"]
    ask(api, cid)
    twilio_in(twilio, US, "yes")
    queued = send(api, cid, "queued while consented")
    assert queued["status"] == "queued"
    api.patch(f"cases/{cid}", {"properties": {"contact_phone_number_is_verified": "0"}})
    work()
    assert Message.objects.get(pk=queued["id"]).error == "NO_CONSENT"
    assert "queued while consented" not in texts(fake_twilio)


def test_answer_when_someone_else_owns_the_number(api, other_api, twilio, fake_twilio):
    # a beta case registered the number first, verified: it holds it for two-way SMS
    holder = other_api.case({"contact_phone_number": US, "contact_phone_number_is_verified": "1"})["case_id"]
    cid = api.case({"contact_phone_number": US}, name="Maria")["case_id"]
    assert api.contact(cid)["sms"]["error"]["code"] == "NO_CONSENT"
    ask(api, cid)

    twilio_in(twilio, US, "Yes")

    # the answer went to the contact that was asked, not to the number's owner
    assert api.get(f"cases/{cid}").json()["properties"]["contact_phone_number_is_verified"] == "1"
    rows = api.get("consents").json()["items"]
    assert [(r["kind"], r["case_id"]) for r in rows] == [("request", cid), ("consent", cid)]
    contact = api.contact(cid)
    assert contact["verified"] and contact["sms"]["ok"]  # one-way SMS may go now
    assert not contact["two_way"]
    assert contact["two_way_sms"]["error"]["code"] == "PHONE_NUMBER_IN_USE"
    assert "another project" in contact["two_way_sms"]["error"]["detail"]
    assert other_api.contact(holder)["two_way"]
    owner = PhoneEntry.objects.get(phone_number=US, two_way=True)
    assert owner.project.slug == "beta"
    assert send(api, cid, "one-way is fine")["status"] == "queued"

    # when the holder lets go of the number, the consented case takes it over
    other_api.patch(f"cases/{holder}", {"closed": True})
    assert api.contact(cid)["two_way"]


def test_pending_answer_wins_over_the_owners_keywords(api, other_api, twilio, fake_twilio, other_project):
    other_api.case({"contact_phone_number": US, "contact_phone_number_is_verified": "1"})
    r = other_api.post("keywords", {"keyword": "YESPLEASE", "reply": {"en": "beta keyword"}})
    assert r.status_code == 201
    cid = api.case({"contact_phone_number": US})["case_id"]
    ask(api, cid)
    twilio_in(twilio, US, "yes")
    assert api.contact(cid)["verified"]
    # with the question answered, the owner's keywords apply again
    twilio_in(twilio, US, "yesplease")
    assert texts(fake_twilio)[-1] == "beta keyword"


def test_yes_after_stop_opts_in_and_answers_the_question(api, twilio, fake_twilio):
    cid = api.case({"contact_phone_number": US})["case_id"]
    ask(api, cid)
    twilio_in(twilio, US, "STOP")
    assert is_opted_out(US)
    twilio_in(twilio, US, "YES")
    assert not is_opted_out(US)
    assert api.contact(cid)["sms"]["ok"]
    assert texts(fake_twilio) == [QUESTION, OPT_OUT_CONFIRMATION, OPT_IN_CONFIRMATION, CONSENT_THANKS]
    assert ledger_kinds(US) == ["request", "opt_out", "opt_in", "consent"]


def test_plain_yes_to_a_pending_question_is_consent_not_an_opt_in(api, twilio, fake_twilio):
    cid = api.case({"contact_phone_number": US})["case_id"]
    ask(api, cid)
    twilio_in(twilio, US, "YES")
    assert api.contact(cid)["sms"]["ok"]
    assert texts(fake_twilio) == [QUESTION, CONSENT_THANKS]
    assert ledger_kinds(US) == ["request", "consent"]


def test_translated_question(api, project, twilio, fake_twilio):
    project.sms_languages = ["en", "sw", "es"]
    project.save()
    system_texts.update(
        project, {"opt_in_question": {"en": QUESTION, "es": "¿Acepta recibir mensajes SMS? Responda SÍ o NO."}}
    )
    cid = api.case({"contact_phone_number": US, "language_code": "es"})["case_id"]
    req = ask(api, cid)
    assert req["text_shown"] == "¿Acepta recibir mensajes SMS? Responda SÍ o NO."
    assert texts(fake_twilio) == [req["text_shown"]]
    twilio_in(twilio, US, "1")
    (row,) = api.get("consents", kind="consent").json()["items"]
    assert row["text_shown"] == req["text_shown"]


def test_auto_opt_in_on_registration(api, project, sandbox):
    project.auto_opt_in = True
    project.save()
    us = api.case({"contact_phone_number": US}, name="Maria")["case_id"]
    api.case({"contact_phone_number": KE})  # needs no consent
    api.case({"contact_phone_number": US2, "contact_phone_number_is_verified": "1"})  # already consented
    work()
    assert outbox(api) == [QUESTION]
    (req,) = ConsentRequest.objects.all()
    assert (req.case.case_id, req.phone_number, req.source, req.status) == (us, US, "system", "pending")
    rows = api.get("consents").json()["items"]
    assert [(r["kind"], r["source"], r["case_id"]) for r in rows] == [
        ("request", "system", us),
        ("consent", "api", rows[1]["case_id"]),  # created through the API with the property set
    ]
    # editing the case again does not ask again within the interval
    api.patch(f"cases/{us}", {"properties": {"edd": "2025-01-01"}})
    work()
    assert outbox(api) == [QUESTION]
    sms_in(api, US, "yes")
    assert api.contact(us)["two_way"]


def test_auto_opt_in_asks_when_a_number_is_added_later(api, project, sandbox):
    project.auto_opt_in = True
    project.save()
    cid = api.case({})["case_id"]
    work()
    assert outbox(api) == []
    api.patch(f"cases/{cid}", {"properties": {"contact_phone_number": US}})
    work()
    assert outbox(api) == [QUESTION]


def test_auto_opt_in_is_off_by_default(api, sandbox):
    api.case({"contact_phone_number": US})
    work()
    assert outbox(api) == []
    assert ConsentRequest.objects.count() == 0


def test_auto_opt_in_for_a_bulk_import(api, project, sandbox):
    project.auto_opt_in = True
    project.save()
    body = [
        {"case_type": "patient", "name": f"p{i}", "properties": {"contact_phone_number": f"1206617{i:04d}"}}
        for i in range(1000, 1010)
    ]
    r = api.post("cases/bulk", {"cases": body})
    assert r.status_code in (200, 201), r.content
    work()
    assert outbox(api) == [QUESTION] * 10
    assert ConsentRequest.objects.filter(status="pending").count() == 10


def test_replies_from_a_pending_number_route_to_the_contact_asked(api, project, twilio, fake_twilio):
    project.sms_languages = ["en", "sw", "es"]
    project.save()
    system_texts.update(project, {"opt_out_confirmation": {"en": OPT_OUT_CONFIRMATION, "es": "Se ha dado de baja."}})
    cid = api.case({"contact_phone_number": US, "language_code": "es"}, name="Maria")["case_id"]
    ask(api, cid)
    twilio_in(twilio, US, "stop")
    assert texts(fake_twilio)[-1] == "Se ha dado de baja."
    (row,) = api.get("consents", kind="opt_out").json()["items"]
    assert (row["case_id"], row["contact"]) == (cid, f"case {cid} (Maria)")
    (inbound,) = api.get("messages", direction="in").json()["items"]
    assert inbound["recipient"] == {"case_id": cid}
