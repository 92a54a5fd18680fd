"""Shared pieces of the inbound tests.

Under pytest the queue is immediate but `db` tests run inside one transaction, so on_commit hooks never
fire: a test does what the worker does, `router.process_due()` then `pipeline.deliver_due()`."""

from __future__ import annotations

import json

import pytest
from django.db.models import Max
from django.test import Client

from casemsg.cases.models import Case
from casemsg.consent.models import ConsentRecord
from casemsg.contacts.models import OptOut
from casemsg.gateways.models import Gateway
from casemsg.gateways.services import add_gateway, inbound_url, map_prefix
from casemsg.inbound import router
from casemsg.messaging import pipeline
from casemsg.messaging.models import Message
from casemsg.projects.models import Project

KE = "254711000001"  # Kenya: one-way SMS needs only the number
KE2 = "254722000002"
KE3 = "254733000003"
US = "12066171234"  # United States: needs consent
US2 = "12066175678"

QUESTION = "Do you consent to receiving SMS messaging? Reply YES or NO."
OPT_OUT_CONFIRMATION = "You are unsubscribed and will receive no more messages. Reply START to resubscribe."
OPT_IN_CONFIRMATION = "You are subscribed again. Reply STOP to unsubscribe, HELP for help."
HELP_TEXT = "Reply STOP to unsubscribe, START to subscribe again."
CONSENT_THANKS = "Thank you. Reply STOP at any time to unsubscribe."


@pytest.fixture
def alpha_sandbox(project: Project) -> Gateway:
    """Alpha's own sandbox gateway, routing every number of alpha. A message reaching its webhook belongs to
    alpha even from an unknown sender (alpha's help text, keywords, unknown-sender reply, outbox), whereas
    one on the installation-wide gateway from an unknown sender belongs to no project."""
    gw = add_gateway("sandbox-alpha", "sandbox", project=project)
    map_prefix("*", gw.name, project)
    return gw


def work() -> None:
    """What a worker does after the webhook: process inbound rows, then deliver what they queued."""
    router.process_due()
    pipeline.deliver_due()


def sms_in(api, number: str, text: str, msg_id: str = "") -> list[int]:
    """A contact texts the project through the sandbox phone simulator; the worker then runs."""
    r = api.post("sandbox/incoming", {"phone_number": number, "text": text, "id": msg_id})
    assert r.status_code == 202, r.content
    work()
    return r.json()["ids"]


def gateway_post(gw: Gateway, number: str, text: str, msg_id: str = "") -> list[int]:
    """A provider delivers an SMS from `number` to the gateway's authenticated inbound webhook, in the
    sandbox gateway's JSON format: stored, not processed yet. Returns the ids of the new inbound rows."""
    last = Message.objects.filter(direction=Message.IN).aggregate(last=Max("pk"))["last"] or 0
    body = {"phone_number": number, "text": text, "id": msg_id}
    r = Client().post(inbound_url(gw), json.dumps(body), content_type="application/json")
    assert r.status_code == 200, r.content
    new = Message.objects.filter(direction=Message.IN, pk__gt=last).order_by("pk")
    return list(new.values_list("pk", flat=True))


def gateway_in(gw: Gateway, number: str, text: str, msg_id: str = "") -> list[int]:
    """Anyone (an unknown number, another project's contact) texts the number behind a gateway: the provider
    calls its webhook, then the worker runs. For the project's own contacts, `sms_in` simulates instead."""
    ids = gateway_post(gw, number, text, msg_id)
    work()
    return ids


def outbox(api) -> list[str]:
    """Texts the sandbox sent for the project, oldest first."""
    r = api.get("sandbox/outbox", limit=500)
    assert r.status_code == 200, r.content
    return [m["text"] for m in reversed(r.json()["items"])]


def sent_to(number: str) -> list[str]:
    """Every text that went out to this number, from any project, through any gateway, oldest first."""
    return list(
        Message.objects.filter(direction=Message.OUT, to=number, status__in=[Message.SENT, Message.DELIVERED])
        .order_by("sent_on", "pk")
        .values_list("text", flat=True)
    )


def case_row(api, properties=None, **fields) -> Case:
    return Case.objects.get(project__slug=api.slug, case_id=api.case(properties, **fields)["case_id"])


def is_opted_out(number: str) -> bool:
    return OptOut.objects.filter(phone_number=number).exists()


def ledger_kinds(number: str) -> list[str]:
    rows = ConsentRecord.objects.filter(phone_number=number).order_by("created_on", "pk")
    return list(rows.values_list("kind", flat=True))


def send(api, case_id: str, text: str = "Hello") -> dict:
    r = api.post("messages", {"recipient": {"case_id": case_id}, "text": text})
    assert r.status_code == 202, r.content
    return r.json()
