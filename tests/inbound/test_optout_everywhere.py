"""A number that texted STOP to an installation gateway gets nothing more from any project, through any
gateway, whatever the content (PHONE_OPTED_OUT) — checked at queue time and again at send time, against a
real fake provider. (A STOP through a project's own gateway binds that project only:
tests/inbound/test_authority.py.)"""

from __future__ import annotations

import pytest

from casemsg.cases.models import Case
from casemsg.gateways.services import add_gateway, map_prefix
from casemsg.messaging import pipeline
from casemsg.messaging.models import Message, MessagingEvent
from casemsg.workers.models import MobileWorker
from tests.inbound.conftest import (
    KE,
    KE2,
    OPT_OUT_CONFIRMATION,
    US,
    gateway_in,
    gateway_post,
    is_opted_out,
    outbox,
    send,
    sent_to,
    work,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def beta_http(other_project, fake_http):
    """Beta sends through its own generic HTTP gateway at a fake provider on 127.0.0.1."""
    gw = add_gateway("beta-http", "http", fake_http.gateway_config(), project=other_project)
    map_prefix("*", gw.name, other_project)
    return gw


def broadcast(project, cases, text: str, workers=()) -> MessagingEvent:
    """What a broadcast does: queue one message per recipient straight into the pipeline (in bulk, so
    the contact rules run at send time)."""
    event = MessagingEvent.objects.create(project=project, source="broadcast", description="test broadcast")
    specs = [pipeline.MessageSpec(case=c, text=text) for c in cases]
    specs += [pipeline.MessageSpec(worker=w, text=text) for w in workers]
    pipeline.queue(project, specs, event)
    return event


def test_stop_in_one_project_blocks_a_broadcast_from_another(
    api, other_api, sandbox, beta_http, fake_http, other_project
):
    # three beta cases share KE (a household), one has another number
    shared = [other_api.case({"contact_phone_number": KE}, name=f"member {i}")["case_id"] for i in range(3)]
    other = other_api.case({"contact_phone_number": KE2}, name="neighbour")["case_id"]
    worker = other_api.post("mobile-workers", {"username": "chw1", "phone_numbers": [KE]})
    assert worker.status_code == 201, worker.content

    # the person texts STOP to the installation's number (an installation gateway): opted out everywhere
    gateway_in(sandbox, KE, " stop ")
    assert is_opted_out(KE)
    assert sent_to(KE) == [OPT_OUT_CONFIRMATION]
    assert outbox(api) == []

    # beta broadcasts to all four cases and the worker
    cases = list(Case.objects.filter(project=other_project).order_by("pk"))
    workers = list(MobileWorker.objects.filter(project=other_project))
    event = broadcast(other_project, cases, "Vaccination day is Saturday", workers)
    assert Message.objects.filter(event=event).count() == 5
    work()
    msgs = Message.objects.filter(event=event).select_related("case")
    by_case = {m.case.case_id if m.case_id else "worker": m for m in msgs}
    for cid in [*shared, "worker"]:
        assert (by_case[cid].status, by_case[cid].error) == ("failed", "PHONE_OPTED_OUT")
    assert by_case[other].status == "sent"
    # the API says the same, in words
    for cid in shared:
        assert other_api.contact(cid)["sms"]["error"]["code"] == "PHONE_OPTED_OUT"
        m = send(other_api, cid, "whatever the content")
        assert m["error"]["code"] == "PHONE_OPTED_OUT"

    work()
    # only the neighbour's message reached the provider
    assert [(r.to, r.text) for r in fake_http.messages()] == [(KE2, "Vaccination day is Saturday")]
    assert not Message.objects.filter(direction="out", to=KE, project=other_project, status="sent").exists()


def test_messages_queued_before_the_stop_are_not_sent_after_it(
    api, other_api, sandbox, beta_http, fake_http, other_project
):
    cids = [other_api.case({"contact_phone_number": KE}, name=f"member {i}")["case_id"] for i in range(3)]
    queued = [send(other_api, cid, "Clinic tomorrow") for cid in cids]
    assert {m["status"] for m in queued} == {"queued"}

    # STOP arrives before a worker sends them (processed alone, not the queued messages)
    assert len(gateway_post(sandbox, KE, "QUIT")) == 1
    from casemsg.inbound import router

    router.process_due()
    pipeline.deliver_due()

    assert fake_http.messages() == []
    for m in queued:
        row = Message.objects.get(pk=m["id"])
        assert (row.status, row.error) == ("failed", "PHONE_OPTED_OUT")
        got = other_api.get(f"messages/{m['id']}").json()
        assert got["error"]["code"] == "PHONE_OPTED_OUT" and got["error"]["fix"]


def test_stop_through_a_gateway_blocks_every_other_gateway_until_start(
    api, other_api, sandbox, beta_http, fake_http, other_project
):
    cid = other_api.case({"contact_phone_number": KE})["case_id"]
    gateway_in(sandbox, KE, "OPTOUT")
    assert send(other_api, cid)["error"]["code"] == "PHONE_OPTED_OUT"
    # also for an installation-wide gateway chosen by contact_backend_id
    add_gateway("global-http", "http", fake_http.gateway_config())
    other_api.patch(f"cases/{cid}", {"properties": {"contact_backend_id": "global-http"}})
    assert send(other_api, cid)["error"]["code"] == "PHONE_OPTED_OUT"
    work()
    assert fake_http.messages() == []

    # only the person can lift it, by texting an opt-in word to the installation
    gateway_in(sandbox, KE, "START")
    m = send(other_api, cid, "Welcome back")
    assert m["status"] == "queued"
    work()
    assert [r.text for r in fake_http.messages()] == ["Welcome back"]


def test_an_opted_out_us_number_gets_no_opt_in_request(api, other_api, sandbox):
    gateway_in(sandbox, US, "stop")
    cid = other_api.case({"contact_phone_number": US})["case_id"]
    r = other_api.post(f"cases/{cid}/opt-in-request")
    assert r.status_code == 409 and r.json()["error"]["code"] == "PHONE_OPTED_OUT"
    assert Message.objects.filter(direction="out", to=US).count() == 1  # the STOP confirmation only
