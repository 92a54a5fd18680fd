"""Verifying a mobile worker's number by SMS handshake: a code goes out, the worker replies with it, and
the number becomes verified — and two-way unless another contact registered it first."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from casemsg.consent import services as consent
from casemsg.consent.models import ConsentRequest
from casemsg.contacts.models import PhoneEntry
from casemsg.messaging.models import Message
from tests.inbound.conftest import KE, KE2, outbox, sms_in, work

pytestmark = pytest.mark.django_db

WRONG = "That code is not right; please check it and reply again."
VERIFIED = "Your phone number is verified."


def worker(api, *numbers: str, username: str = "chw1") -> dict:
    r = api.post("mobile-workers", {"username": username, "name": "Wanjiru", "phone_numbers": list(numbers)})
    assert r.status_code == 201, r.content
    return r.json()


def request_code(api, worker_id: int, number: str) -> tuple[dict, str]:
    r = api.post(f"mobile-workers/{worker_id}/verify", {"phone_number": number})
    assert r.status_code == 202, r.content
    work()
    text = outbox(api)[-1]
    match = re.fullmatch(
        r"Your verification code is (\d{6})\. Reply with this code to verify your phone number\.", text
    )
    assert match, text
    assert "code" not in r.json()  # the code is only in the SMS
    return r.json(), match.group(1)


def numbers(api, worker_id: int) -> dict[str, bool]:
    w = api.get(f"mobile-workers/{worker_id}").json()
    return {p["number"]: p["verified"] for p in w["phone_numbers"]}


def test_handshake_wrong_then_right_code(api, sandbox):
    w = worker(api, KE, KE2)
    assert (
        api.get(f"mobile-workers/{w['id']}/contact").json()["two_way_sms"]["error"]["code"] == "NO_TWO_WAY_PHONE_NUMBER"
    )
    req, code = request_code(api, w["id"], "+" + KE2)
    assert (req["phone_number"], req["status"]) == (KE2, "queued")  # pending once the code went out
    assert Message.objects.get(direction="out").to == KE2  # sent to exactly that number

    wrong = "000000" if code != "000000" else "111111"
    sms_in(api, KE2, wrong)
    assert outbox(api)[-1] == WRONG
    assert numbers(api, w["id"]) == {KE: False, KE2: False}
    assert ConsentRequest.objects.get(pk=req["id"]).status == "pending"

    sms_in(api, KE2, f" {code} ")
    assert outbox(api)[-1] == VERIFIED
    assert numbers(api, w["id"]) == {KE: False, KE2: True}
    assert ConsentRequest.objects.get(pk=req["id"]).status == "consented"
    entry = PhoneEntry.objects.get(phone_number=KE2)
    assert entry.verified and entry.two_way and entry.worker_id == w["id"]
    # the replies and the code are logged against the worker
    inbound = api.get("messages", direction="in", mobile_worker_id=w["id"]).json()["items"]
    assert [m["text"] for m in inbound] == [f" {code} ", wrong]
    # replying the code again changes nothing and sends nothing
    sent = len(outbox(api))
    sms_in(api, KE2, code)
    assert len(outbox(api)) == sent
    # from now on, the worker's messages route to the worker as the number's two-way owner
    assert PhoneEntry.objects.get(phone_number=KE2, two_way=True).worker_id == w["id"]


def test_the_code_must_come_from_the_number_being_verified(api, sandbox):
    w = worker(api, KE, KE2)
    _req, code = request_code(api, w["id"], KE2)
    sms_in(api, KE, code)  # the worker's other number
    assert numbers(api, w["id"]) == {KE: False, KE2: False}


def test_someone_else_owns_the_number(api, other_api, sandbox):
    holder = other_api.case({"contact_phone_number": KE, "contact_phone_number_is_verified": "1"})
    w = worker(api, KE)
    _req, code = request_code(api, w["id"], KE)
    sms_in(api, KE, code)
    assert outbox(api)[-1] == VERIFIED
    assert numbers(api, w["id"]) == {KE: True}
    contact = api.get(f"mobile-workers/{w['id']}/contact").json()
    assert contact["verified"] and not contact["two_way"]
    assert contact["two_way_sms"]["error"]["code"] == "PHONE_NUMBER_IN_USE"
    assert PhoneEntry.objects.get(phone_number=KE, two_way=True).case.case_id == holder["case_id"]
    # the holder releases the number: the verified worker takes it over
    other_api.patch(f"cases/{holder['case_id']}", {"closed": True})
    assert api.get(f"mobile-workers/{w['id']}/contact").json()["two_way"]


def test_verify_refuses_numbers_the_worker_does_not_have(api, sandbox):
    w = worker(api, KE)
    r = api.post(f"mobile-workers/{w['id']}/verify", {"phone_number": KE2})
    assert r.status_code == 422 and r.json()["error"]["code"] == "INVALID_PHONE_NUMBER"
    r = api.post("mobile-workers/999999/verify", {"phone_number": KE})
    assert r.status_code == 404
    assert ConsentRequest.objects.count() == 0


def test_a_new_code_replaces_the_old_one(api, sandbox):
    w = worker(api, KE)
    _first, old = request_code(api, w["id"], KE)
    _second, new = request_code(api, w["id"], KE)
    if old != new:
        sms_in(api, KE, old)
        assert outbox(api)[-1] == WRONG
        assert numbers(api, w["id"]) == {KE: False}
    sms_in(api, KE, new)
    assert numbers(api, w["id"]) == {KE: True}


def test_an_expired_code_no_longer_verifies(api, sandbox):
    w = worker(api, KE)
    req, code = request_code(api, w["id"], KE)
    ConsentRequest.objects.filter(pk=req["id"]).update(expires_on=timezone.now() - timedelta(minutes=1))
    assert consent.expire_requests() == 1
    sms_in(api, KE, code)
    assert numbers(api, w["id"]) == {KE: False}
    assert outbox(api)[-1] != VERIFIED


def test_stop_still_works_while_a_code_is_pending(api, sandbox):
    w = worker(api, KE)
    request_code(api, w["id"], KE)
    sms_in(api, KE, "STOP")
    assert outbox(api)[-1].startswith("You are unsubscribed")
    assert numbers(api, w["id"]) == {KE: False}
