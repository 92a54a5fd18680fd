"""Fairness: one project's flood — of inbound messages or of a broadcast — does not hold up another
project's keyword replies and STOP confirmations. Inbound batches are taken round-robin across projects;
replies are claimed for sending before bulk messages."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from casemsg.gateways.base import InboundSms
from casemsg.gateways.models import Gateway
from casemsg.gateways.services import add_gateway, map_prefix
from casemsg.inbound import claim, receive, router
from casemsg.messaging import pipeline
from casemsg.messaging.models import Message, MessagingEvent
from casemsg.projects.models import Project
from tests.conftest import Api
from tests.inbound.conftest import KE, KE2, OPT_OUT_CONFIRMATION

pytestmark = pytest.mark.django_db

FLOOD = 2 * claim.CLAIM_LIMIT + 50


def sandbox_of(project: Project) -> Gateway:
    gw = add_gateway(f"sandbox-{project.slug}", "sandbox", project=project)
    map_prefix("*", gw.name, project)
    return gw


@pytest.fixture
def two(project, other_project):
    """Alpha and beta, each with its own sandbox gateway and a CLINIC keyword."""
    gws = {}
    for p in (project, other_project):
        gws[p.slug] = sandbox_of(p)
        r = Api(p.api_key, p.slug).post("keywords", {"keyword": "CLINIC", "reply": {"en": f"{p.slug} clinic"}})
        assert r.status_code == 201, r.content
    return gws


def flood(gw: Gateway, n: int = FLOOD) -> list[int]:
    return receive.receive(gw, [InboundSms(from_number=f"25473300{i:04d}", text="CLINIC") for i in range(n)])


def test_an_inbound_flood_in_one_project_does_not_delay_anothers_replies(two):
    flood(two["alpha"])
    kw, stop = receive.receive(
        two["beta"], [InboundSms(from_number=KE, text="clinic hours"), InboundSms(from_number=KE2, text="STOP")]
    )
    first = claim.claim()
    assert len(first) == claim.CLAIM_LIMIT
    assert {kw, stop} <= {m.pk for m in first}  # arrived after the whole flood, handled in the first batch
    router.process_batch(first)
    pipeline.deliver_due(max_batches=1)
    texts = dict(Message.objects.filter(direction="out", to__in=[KE, KE2], status="sent").values_list("to", "text"))
    assert texts == {KE: "beta clinic", KE2: OPT_OUT_CONFIRMATION}
    # the flood is handled too, in arrival order, batch after batch
    assert router.process_due() == FLOOD - (claim.CLAIM_LIMIT - 2)
    pipeline.deliver_due()
    assert Message.objects.filter(direction="out", text="alpha clinic", status="sent").count() == FLOOD


def test_round_robin_takes_turns_between_projects(two):
    """Two floods: each batch takes from both, oldest first within each."""
    a = flood(two["alpha"], 300)
    b = receive.receive(two["beta"], [InboundSms(from_number=f"25472200{i:04d}", text="CLINIC") for i in range(300)])
    first = [m.pk for m in claim.claim()]
    assert first == sorted(a[:100] + b[:100])


def test_replies_are_sent_before_a_broadcast_queued_earlier(two, project, other_project):
    """A broadcast of alpha (bulk, queued first) and beta's keyword reply and STOP confirmation: the first
    batch a worker claims for sending holds the replies."""
    event = MessagingEvent.objects.create(project=project, source="broadcast")
    numbers = [f"25474400{i:04d}" for i in range(pipeline.BATCH + 100)]
    pipeline.queue(project, [pipeline.MessageSpec(to=n, text="news") for n in numbers], event, precheck=False)
    Message.objects.filter(direction="out").update(next_attempt_on=timezone.now() - timedelta(minutes=1))
    receive.receive(two["beta"], [InboundSms(from_number=KE, text="CLINIC"), InboundSms(from_number=KE2, text="stop")])
    router.process_due()
    replies = Message.objects.filter(direction="out", to__in=[KE, KE2])
    assert {m.priority for m in replies} == {Message.REPLY}
    assert not Message.objects.filter(event=event).exclude(priority=Message.BULK).exists()
    claimed = pipeline.claim()
    assert len(claimed) == pipeline.BATCH
    assert {KE, KE2} <= {m.to for m in claimed}
    pipeline.process(claimed)
    assert set(replies.values_list("status", flat=True)) == {"sent"}
    assert Message.objects.filter(event=event, status="queued").count() == len(numbers) - (pipeline.BATCH - 2)


def test_a_number_flooding_a_project_holds_up_only_itself(two):
    """One number sends hundreds of messages: the project's other senders are not queued behind them."""
    spam = receive.receive(two["alpha"], [InboundSms(from_number=KE, text=f"CLINIC {i}") for i in range(300)])
    (other,) = receive.receive(two["alpha"], [InboundSms(from_number=KE2, text="CLINIC")])
    first = claim.claim()
    assert [m.pk for m in first] == [spam[0], other]  # the number's next message, and everyone else's
    router.process_batch(first)
    assert [m.pk for m in claim.claim()] == [spam[1]]
