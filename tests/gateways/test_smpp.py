"""The `smpp` gateway against a real SMPP server on 127.0.0.1 (fakes/smsc.py): bind, submit in both
encodings and both concatenations, receipts, MO into the keyword router, throttling, a connection dropped
mid-window, a refused bind."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.utils import timezone

from casemsg.cases.services import CaseChange, bulk_upsert
from casemsg.core import errors
from casemsg.gateways import smpp_bind, smpp_codec
from casemsg.gateways.carrier.models import SubmitAck
from casemsg.gateways.models import Gateway
from casemsg.gateways.services import add_gateway, map_prefix
from casemsg.inbound import router
from casemsg.messaging import pipeline, segments
from casemsg.messaging.models import Message, MessagingEvent
from fakes.smsc import ESME_RINVDSTADR, ESME_RMSGQFUL, FakeSmsc
from tests.messaging.conftest import KE, deliver, msg, send

# Receipts and MO are stored by the bind's own thread: those tests commit (transaction=True); the others
# ask for no receipts and roll back, which is much faster on PostgreSQL.
NO_RECEIPTS = {"registered_delivery": False}

REPLY = "Karibu! Clinic hours are 8 to 5."


def smpp_gateway(smsc: FakeSmsc, name: str = "operator", prefix: str | None = "*", **config) -> Gateway:
    base = {
        "host": "127.0.0.1",
        "port": smsc.port,
        "system_id": "casemsg",
        "password": "secret",
        "source_addr": "22555",
        "timeout": 2,
    }
    gw = add_gateway(name, "smpp", {**base, **config})
    if prefix is not None:
        map_prefix(prefix, name)
    return gw


def until(check: Callable[[], object], seconds: float = 8.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


@pytest.mark.django_db(transaction=True)
def test_bind_submit_and_receipt_delivers(api, smsc):
    gw = smpp_gateway(smsc)
    case = api.case({"contact_phone_number": KE})
    data = send(api, case["case_id"], text="Hello from the clinic")
    deliver()
    m = msg(data)
    assert m.status in (Message.SENT, Message.DELIVERED) and m.segments == 1
    (sub,) = smsc.submits
    assert (sub.destination, sub.source, sub.data_coding, sub.esm_class) == (KE, "22555", 0, 0)
    assert sub.text == "Hello from the clinic" and sub.registered_delivery == 1
    assert m.provider_id == sub.message_id
    assert smsc.binds == [("casemsg", 0x09, 0)]  # one transceiver bind
    assert smpp_bind.bound(gw)
    until(lambda: msg(data).status == Message.DELIVERED)  # the receipt came back on the same bind


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("text", "coding", "payload"),
    [
        ("Karibu kliniki [Jumatatu] €5", 0, None),  # GSM-7 with extension characters: one septet a byte
        ("Караибу 🙂 kliniki", 8, "Караибу 🙂 kliniki".encode("utf-16-be")),  # UCS-2
    ],
)
def test_one_part_in_both_encodings(api, smsc, text, coding, payload):
    smpp_gateway(smsc, **NO_RECEIPTS)
    case = api.case({"contact_phone_number": KE})
    data = send(api, case["case_id"], text=text)
    deliver()
    m = msg(data)
    assert m.status == Message.SENT and m.segments == 1
    (sub,) = smsc.submits
    assert (sub.data_coding, sub.esm_class, sub.udh, sub.text) == (coding, 0, b"", text)
    if payload is not None:
        assert sub.short_message == payload
    else:  # the extension characters go as escape pairs
        assert b"\x1b\x3c" in sub.short_message and b"\x1b\x65" in sub.short_message


@pytest.mark.django_db
@pytest.mark.parametrize("mode", ["udh", "sar"])
@pytest.mark.parametrize(
    ("text", "coding"),
    [
        ("Visit the clinic on Monday. " * 12, 0),  # 336 GSM-7 characters: 3 parts of 153
        ("Tembelea kliniki Jumatatu 🙂 " * 6, 8),  # UCS-2 (the emoji): 3 parts of 67
    ],
)
def test_three_parts_in_both_encodings(api, smsc, mode, text, coding):
    smpp_gateway(smsc, long_messages=mode, **NO_RECEIPTS)
    text = text.strip()
    case = api.case({"contact_phone_number": KE})
    data = send(api, case["case_id"], text=text)
    deliver()
    m = msg(data)
    assert m.status in (Message.SENT, Message.DELIVERED)  # (the receipt may be in already)
    assert len(smsc.submits) == m.segments == segments.count(text) == 3
    assert {s.data_coding for s in smsc.submits} == {coding}
    if mode == "udh":
        heads = [s.udh for s in smsc.submits]
        assert all(h[:3] == b"\x05\x00\x03" for h in heads)
        assert [h[4:6] for h in heads] == [b"\x03\x01", b"\x03\x02", b"\x03\x03"]
        assert len({h[3] for h in heads}) == 1  # one reference
        assert {s.esm_class for s in smsc.submits} == {0x40}
    else:
        assert [s.tlvs[smpp_codec.TLV_SAR_SEGMENT_SEQNUM] for s in smsc.submits] == [b"\x01", b"\x02", b"\x03"]
        assert {s.tlvs[smpp_codec.TLV_SAR_TOTAL_SEGMENTS] for s in smsc.submits} == {b"\x03"}
        assert {s.esm_class for s in smsc.submits} == {0}
    assert "".join(s.text for s in smsc.submits) == text
    assert m.provider_id == smsc.submits[0].message_id


@pytest.mark.django_db(transaction=True)
def test_mo_reaches_the_keyword_router_and_the_reply_goes_out_on_the_bind(api, smsc):
    gw = smpp_gateway(smsc)
    assert api.post("keywords", {"keyword": "clinic", "reply": {"en": REPLY}}).status_code == 201
    api.case({"contact_phone_number": KE, "contact_phone_number_is_verified": "1"}, name="Asha")
    smpp_bind.hold([gw])  # a worker binds at start: MO flows before anything is sent
    until(lambda: smpp_bind.bound(gw))
    smsc.deliver_mo(KE, "22555", "clinic hours?")

    def replied() -> bool:
        router.process_due()
        pipeline.deliver_due()
        return any(s.destination == KE for s in smsc.submits)

    until(replied)
    (mo,) = Message.objects.filter(direction="in")
    assert (mo.to, mo.text, mo.gateway_id, mo.project.slug) == (KE, "clinic hours?", gw.pk, "alpha")
    (reply,) = smsc.submits
    assert reply.text == REPLY


@pytest.mark.django_db
def test_throttled_submits_are_retried_and_sent_once(api, smsc):
    smpp_gateway(smsc, **NO_RECEIPTS)
    case = api.case({"contact_phone_number": KE})
    smsc.throttle(2)
    first = send(api, case["case_id"], text="One")
    deliver()
    smsc.throttle(2, ESME_RMSGQFUL)
    second = send(api, case["case_id"], text="Two")
    deliver()
    assert smsc.throttled == 4
    assert [s.text for s in smsc.submits] == ["One", "Two"]  # each once
    assert {msg(first).status, msg(second).status} <= {Message.SENT, Message.DELIVERED}
    assert msg(first).attempts == msg(second).attempts == 1  # the bind's back-off, not a new attempt


@pytest.mark.django_db
def test_permanent_status_fails_with_its_name(api, smsc):
    smpp_gateway(smsc, **NO_RECEIPTS)
    case = api.case({"contact_phone_number": KE})
    smsc.refuse_submits(ESME_RINVDSTADR)
    data = send(api, case["case_id"])
    deliver()
    m = msg(data)
    assert m.status == Message.FAILED and m.error == errors.INVALID_DESTINATION_NUMBER
    assert "ESME_RINVDSTADR" in m.error_detail


def queue_held(project, texts: dict[str, str]) -> list[int]:
    """Messages (number → text) queued but not due, so that nothing goes out before the test says (a
    transactional test's queue runs each message at its commit otherwise); `due` releases them."""
    cases = bulk_upsert(
        project,
        [CaseChange(case_type="person", name=n, properties={"contact_phone_number": n}) for n in texts],
    )
    event = MessagingEvent.objects.create(project=project, source="system", description="held")
    later = timezone.now() + timedelta(hours=1)
    by_phone = {c.properties["contact_phone_number"]: c for c in cases}
    pipeline.queue(
        project, [pipeline.MessageSpec(case=by_phone[n], text=t, send_after=later) for n, t in texts.items()], event
    )
    return list(Message.objects.filter(event=event).order_by("pk").values_list("pk", flat=True))


def due(ids: list[int]) -> None:
    Message.objects.filter(pk__in=ids, status=Message.QUEUED).update(next_attempt_on=timezone.now())


def unknown_marks(m: Message) -> list[dict]:
    return [e for e in m.history or [] if e.get("code") == errors.SENDING_OUTCOME_UNKNOWN]


@pytest.mark.django_db(transaction=True)  # the bind's thread journals the acknowledged submits
def test_connection_dropped_mid_window_resubmits_only_what_was_not_acknowledged(project, smsc):
    smpp_gateway(smsc, window=10, **NO_RECEIPTS)
    numbers = [f"2547120{i:05d}" for i in range(40)]
    ids = queue_held(project, {n: f"for {n}" for n in numbers})
    due(ids)
    # 15 answered; then the SMSC takes 4 more without answering them and the line goes, with the rest of the
    # window on the wire
    smsc.drop_after(15, unanswered=4)
    deliver()
    # (the submits still waiting for a window slot when the line went were never written: they wait for the
    # rebind and go on it)
    assert (smsc.dropped, len(smsc.unanswered)) == (1, 4) and len(smsc.answered) >= 15
    answered = {s.destination for s in smsc.submits if s.message_id in smsc.answered}
    retried = list(Message.objects.filter(pk__in=ids, status=Message.QUEUED))
    assert 4 <= len(retried) <= 10  # only what was on the wire unanswered
    assert not {m.to for m in retried} & answered
    for m in retried:  # each marked, once, as a possible duplicate
        assert "No submit_sm_resp" in m.error_detail
        assert [e["attempt"] for e in unknown_marks(m)] == [1]
    for m in Message.objects.filter(pk__in=ids, status=Message.SENT):  # acknowledged: kept their id, no mark
        assert m.provider_id in smsc.answered and not unknown_marks(m)
    due(ids)
    deliver()  # the bind is back; the unanswered ones go again
    assert all(m.attempts == 2 for m in Message.objects.filter(pk__in=[m.pk for m in retried]))
    assert Message.objects.filter(pk__in=ids, status__in=[Message.SENT, Message.DELIVERED]).count() == 40
    counts = Counter(s.destination for s in smsc.submits)
    assert set(counts) == set(numbers)
    twice = {n for n, c in counts.items() if c > 1}
    assert twice == {s.destination for s in smsc.unanswered}  # the SMSC's duplicates: only unanswered submits
    assert twice <= {m.to for m in retried}  # and each of them marked
    assert all(counts[n] == 1 for n in answered)  # nothing acknowledged went twice
    assert len(smsc.binds) == 2  # rebound after the drop


@pytest.mark.django_db(transaction=True)
def test_a_long_message_cut_mid_parts_resubmits_only_its_unacknowledged_parts(project, smsc):
    smpp_gateway(smsc, window=1, **NO_RECEIPTS)
    text = "Visit the clinic on Monday. " * 12  # 3 parts
    (data,) = queue_held(project, {KE: text.strip()})
    due([data])
    smsc.drop_after(1, unanswered=1)  # part 1 answered, part 2 taken unanswered, the line goes
    deliver()
    m = msg(data)
    assert m.status == Message.QUEUED and "part 2 of 3" in m.error_detail
    until(lambda: SubmitAck.objects.filter(message_id=m.pk).count() == 1)  # part 1 is journaled
    due([m.pk])
    deliver()
    m = msg(data)
    assert m.status == Message.SENT and m.attempts == 2
    heads = [s.udh for s in smsc.submits]
    assert [h[5] for h in heads] == [1, 2, 2, 3]  # part 1 once; part 2 again (unanswered); then part 3
    assert len({h[3] for h in heads}) == 1  # one concatenation reference across both attempts
    assert m.provider_id == smsc.submits[0].message_id
    assert [e["attempt"] for e in unknown_marks(m)] == [1]


@pytest.mark.django_db
def test_refused_bind_is_not_taken_and_retried(api, smsc, settings):
    smsc.refuse_bind = True
    smpp_gateway(smsc, **NO_RECEIPTS)
    case = api.case({"contact_phone_number": KE})
    data = send(api, case["case_id"])
    deliver()
    m = msg(data)
    assert m.status == Message.QUEUED and m.attempts == 1
    assert "bind" in m.error_detail
    assert smsc.submits == []
