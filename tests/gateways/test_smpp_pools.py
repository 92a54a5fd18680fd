"""Number pools: each recipient keeps its sender (stored), across restarts and a new number; sends go out
from it on the SMPP bind; a person who writes to another pool number is answered from that one, in the
gateway's project; each number's own rate limit; the API and the CLI."""

from __future__ import annotations

from collections import Counter
from io import StringIO

import pytest
from django.core.management import call_command

from casemsg.gateways import pools
from casemsg.gateways.carrier.models import StickySender
from casemsg.gateways.models import Gateway
from casemsg.gateways.services import add_gateway, add_pool_number, map_prefix, set_enabled
from casemsg.inbound import router
from casemsg.messaging import pipeline
from casemsg.messaging.models import Message
from tests.gateways.test_smpp import REPLY, smpp_gateway, until
from tests.messaging.conftest import KE, deliver, msg, send

POOL = ["254700000001", "254700000002", "254700000003"]


def pool_of(gw: Gateway) -> list:
    return pools.numbers([gw.pk])[gw.pk]


def senders(gw: Gateway, recipients: list[str]) -> dict[str, str]:
    return {r: n.number for r, n in pools.assign(gw, pool_of(gw), recipients).items()}


@pytest.mark.django_db
def test_1000_recipients_over_3_numbers_keep_their_sender_across_restarts_and_a_fourth_number(project):
    gw = add_gateway("pooled", "sandbox", project=project)
    for n in POOL:
        add_pool_number("pooled", project, n)
    recipients = [f"2547{i:08d}" for i in range(1000)]
    first = senders(gw, recipients)
    assert set(first) == set(recipients)
    assert sorted(Counter(first.values()).values()) == [333, 333, 334]  # spread evenly
    # a restart: nothing is held in memory; what is stored answers (and is not recomputed)
    pools.forget_pools()
    assert senders(gw, recipients) == first
    # a fourth number moves nobody; new recipients fill it first
    add_pool_number("pooled", project, "254700000004")
    assert senders(gw, recipients) == first
    newcomers = [f"2548{i:08d}" for i in range(300)]
    assert set(senders(gw, newcomers).values()) == {"254700000004"}
    assert StickySender.objects.filter(gateway=gw).count() == 1300


@pytest.mark.django_db(transaction=True)
def test_sends_go_out_from_each_recipients_number_and_a_reply_from_the_number_written_to(api, project, smsc):
    gw = smpp_gateway(smsc, prefix=None)
    gw.project = project
    gw.save(update_fields=["project"])
    map_prefix("*", gw.name, project)
    for n in POOL:
        add_pool_number(gw.name, project, n)
    numbers = [f"2547120{i:05d}" for i in range(6)]
    cases = [api.case({"contact_phone_number": n, "contact_phone_number_is_verified": "1"}) for n in numbers]
    for c in cases:
        send(api, c["case_id"], text="Reminder")
    deliver()
    sent_from = {s.destination: s.source for s in smsc.submits}
    assert set(sent_from) == set(numbers) and set(sent_from.values()) == set(POOL)
    assert sent_from == senders(gw, numbers)  # what is stored
    # again: everyone hears from the same number
    smsc.submits.clear()
    for c in cases:
        send(api, c["case_id"], text="Second reminder")
    deliver()
    assert {s.destination: s.source for s in smsc.submits} == sent_from

    # a person writes to another number of the pool: the keyword reply comes from that one
    assert api.post("keywords", {"keyword": "clinic", "reply": {"en": REPLY}}).status_code == 201
    person = numbers[0]
    other = next(n for n in POOL if n != sent_from[person])
    smsc.submits.clear()
    smsc.deliver_mo(person, other, "clinic")

    def replied() -> bool:
        router.process_due()
        pipeline.deliver_due()
        return any(s.destination == person for s in smsc.submits)

    until(replied)
    (mo,) = Message.objects.filter(direction="in")
    assert mo.project_id == project.pk  # any pool number reaches the gateway's project
    (reply,) = [s for s in smsc.submits if s.destination == person]
    assert (reply.source, reply.text) == (other, REPLY)
    assert senders(gw, [person]) == {person: other}  # and from now on


@pytest.mark.django_db
def test_each_number_has_its_own_rate_limit(api, project, smsc):
    gw = smpp_gateway(smsc, prefix=None, registered_delivery=False)
    map_prefix("*", gw.name)
    add_pool_number(gw.name, None, POOL[0], rate_limit=2)
    case = api.case({"contact_phone_number": KE})
    ids = [send(api, case["case_id"], text=f"m{i}")["id"] for i in range(6)]
    deliver()
    statuses = Counter(msg(i).delay_reason or msg(i).status for i in ids)
    assert statuses["RATE_LIMITED"] == 4  # 2 segments a second from that number: the rest waits
    assert len(smsc.submits) == 2
    assert all(s.source == POOL[0] for s in smsc.submits)


@pytest.mark.django_db
def test_pool_numbers_in_the_api_and_the_cli(api, project):
    assert api.post("gateways", {"name": "pooled", "type": "sandbox"}).status_code == 201
    r = api.post("gateways/pooled/numbers", {"number": "+254700000001", "rate_limit": 5})
    assert r.status_code == 201 and r.json() == {"number": "254700000001", "rate_limit": 5, "recipients": 0}
    assert api.post("gateways/pooled/numbers", {"number": "CLINIC"}).status_code == 201
    again = api.post("gateways/pooled/numbers", {"number": "254700000001"})
    assert again.status_code == 422 and again.json()["error"]["code"] == "INVALID_GATEWAY_CONFIG"
    assert api.post("gateways/pooled/numbers", {"number": "not a number!"}).status_code == 422
    gw = Gateway.objects.get(name="pooled")
    senders(gw, ["254711111111"])
    items = api.get("gateways/pooled/numbers").json()["items"]
    assert {i["number"]: i["recipients"] for i in items} == {"254700000001": 1, "CLINIC": 0}
    out = StringIO()
    call_command("gateway", "numbers", "pooled", "--project", project.slug, "--add", "254700000009", stdout=out)
    assert "254700000009\trate=no limit\trecipients=0" in out.getvalue()
    assert api.delete("gateways/pooled/numbers/CLINIC").status_code == 204
    assert api.delete("gateways/pooled/numbers/CLINIC").status_code == 404
    assert api.get("gateways/nowhere/numbers").status_code == 404


@pytest.mark.django_db
def test_the_gateway_page_shows_pools_circuits_and_route_order(project, admin):
    add_gateway("pooled", "sandbox", project=project)
    add_gateway("backup", "sandbox", project=project)
    add_pool_number("pooled", project, "254700000001", rate_limit=3)
    map_prefix("*", "pooled", project, then=["backup"])
    set_enabled("backup", project, enabled=False)
    page = admin.get(f"/projects/{project.slug}/gateways/").content.decode()
    assert "<code>254700000001</code>" in page and "0 recipients, 3/s" in page
    assert "disabled" in page
    assert "→ pooled → backup" in page
