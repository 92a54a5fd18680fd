"""Number pools on the HTTP gateway types (twilio, telerivet, africastalking, http), against their fake
providers on 127.0.0.1: each recipient's stored pool number goes out as the sender the provider reads
(Twilio `From`, Telerivet the number's `route_id`, Africa's Talking `from`, the http type's `{from}`); a
person who writes to another number of the pool reaches the gateway's project and is answered from the
number they wrote to."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from casemsg.gateways import pools
from casemsg.gateways.services import add_gateway, add_pool_number, map_prefix
from casemsg.inbound import router
from casemsg.messaging import pipeline
from casemsg.messaging.models import Message
from tests.gateways.webhook_posts import TOKEN, post_inbound
from tests.messaging.conftest import deliver, send

REPLY = "Karibu! Clinic hours are 8 to 5."
PEOPLE = [f"2547120{i:05d}" for i in range(4)]

# Per type: its pool (numbers, or Africa's Talking short codes), extra config, and the sender the fake
# provider received for a request, as the pool number it stands for.
POOLS: dict[str, list[str]] = {
    "twilio": ["15550002001", "15550002002", "15550002003"],
    "telerivet": ["254700000101", "254700000102", "254700000103"],
    "africastalking": ["20881", "20882", "20883"],
    "http": ["254700000201", "254700000202", "254700000203"],
}
ROUTES = {n: f"PN{n[-3:]}route" for n in POOLS["telerivet"]}


def extra_config(kind: str) -> dict[str, Any]:
    if kind == "telerivet":
        return {"routes": {"+" + n: r for n, r in ROUTES.items()}}
    if kind == "http":
        return {"params": {"to": "{to}", "text": "{text}", "message_id": "{message_id}", "from": "{from}"}}
    return {}


def sender_of(kind: str, fields: dict[str, Any]) -> str:
    """The pool number a request went out from, read from what the fake provider received."""
    if kind == "twilio":
        return str(fields["From"]).lstrip("+")
    if kind == "telerivet":
        return {r: n for n, r in ROUTES.items()}[fields["route_id"]]
    return str(fields["from"])


def inbound_extra(kind: str, number: str) -> dict[str, str]:
    """The field of the provider's inbound webhook that names the number the person wrote to."""
    if kind == "twilio":
        return {"To": "+" + number}
    if kind == "telerivet":
        return {"to_number": "+" + number}
    return {"to": number}


@pytest.mark.django_db
@pytest.mark.parametrize("kind", list(POOLS))
def test_pool_sender_is_the_providers_from_and_replies_leave_from_the_number_written_to(
    kind, api, project, fake_gateway
):
    fake = fake_gateway(kind, **({"auth_token": TOKEN} if kind == "twilio" else {}))  # webhooks signed with it
    gw = add_gateway(f"pooled-{kind}", kind, {**fake.gateway_config(), **extra_config(kind)}, project=project)
    map_prefix("*", gw.name, project)
    for n in POOLS[kind]:
        add_pool_number(gw.name, project, n)
    cases = [api.case({"contact_phone_number": p, "contact_phone_number_is_verified": "1"}) for p in PEOPLE]
    for c in cases:
        send(api, c["case_id"], text="Reminder")
    deliver()
    stored = {r: n.number for r, n in pools.assign(gw, pools.numbers([gw.pk])[gw.pk], PEOPLE).items()}
    sent_from = {r.to: sender_of(kind, r.fields) for r in fake.requests()}
    assert sent_from == stored  # each went out from its recipient's stored number
    assert len(set(sent_from.values())) == 3  # spread over the pool
    assert Message.objects.filter(direction="out", status=Message.SENT).count() == len(PEOPLE)

    # again: everyone hears from the same number
    fake.reset()
    for c in cases:
        send(api, c["case_id"], text="Second reminder")
    deliver()
    assert {r.to: sender_of(kind, r.fields) for r in fake.requests()} == stored

    # a person writes to another number of the pool: the gateway's project gets it, the reply leaves from it
    assert api.post("keywords", {"keyword": "clinic", "reply": {"en": REPLY}}).status_code == 201
    person = PEOPLE[0]
    other = next(n for n in POOLS[kind] if n != stored[person])
    fake.reset()
    resp = post_inbound(Client(), gw, "+" + person, "clinic", f"mo-{kind}-1", **inbound_extra(kind, other))
    assert resp.status_code == 200, resp.content
    router.process_due()
    pipeline.deliver_due()
    (mo,) = Message.objects.filter(direction="in")
    assert (mo.project_id, mo.gateway_id) == (project.pk, gw.pk)
    (reply,) = [r for r in fake.requests() if r.to == person]
    assert (sender_of(kind, reply.fields), reply.text) == (other, REPLY)
    assert pools.assign(gw, pools.numbers([gw.pk])[gw.pk], [person])[person].number == other  # from now on


@pytest.mark.django_db
def test_a_telerivet_pool_number_without_a_route_fails_and_says_which(api, project, fake_telerivet):
    gw = add_gateway("pooled", "telerivet", fake_telerivet.gateway_config(), project=project)
    map_prefix("*", gw.name, project)
    add_pool_number(gw.name, project, "254700000101")
    case = api.case({"contact_phone_number": PEOPLE[0]})
    data = send(api, case["case_id"], text="Reminder")
    deliver()
    m = Message.objects.get(pk=data["id"])
    assert (m.status, m.error) == (Message.FAILED, "INVALID_GATEWAY_CONFIG")
    assert "254700000101" in m.error_detail and "routes" in m.error_detail
    assert fake_telerivet.requests() == []
