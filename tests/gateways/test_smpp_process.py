"""`bind_per: process`: one `casemsg smpp` loop holds the gateway's only bind and two workers hand it their
messages through the database (gateways.smpp_handoff). Against the fake SMSC: exactly one bind, every
message sent once; with no smpp process running, nothing is submitted and the messages are free to move
to the route's next gateway (`not_taken`)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from casemsg.gateways import smpp_bind, smpp_handoff
from casemsg.gateways.carrier.models import SmppHandoff
from casemsg.gateways.services import serve_smpp
from casemsg.messaging import pipeline
from casemsg.messaging.models import Message
from tests.gateways.test_smpp import due, queue_held, smpp_gateway, until

pytestmark = pytest.mark.django_db(transaction=True)  # three threads share the database


def run_worker(ids: list[int], stop: threading.Event) -> None:
    """A worker's loop: claim and send what is due until every message is settled."""
    try:
        while not stop.is_set():
            if not pipeline.deliver_due(batch_size=20):
                if not Message.objects.filter(pk__in=ids, status__in=[Message.QUEUED, Message.SENDING]).exists():
                    return
                time.sleep(0.01)
    finally:
        connection.close()


def test_two_workers_and_one_smpp_process_make_one_bind_and_send_each_message_once(project, smsc):
    gw = smpp_gateway(smsc, window=5, bind_per="process", registered_delivery=False)
    numbers = [f"2547130{i:05d}" for i in range(60)]
    ids = queue_held(project, {n: f"for {n}" for n in numbers})
    stop = threading.Event()
    smpp = threading.Thread(target=serve_smpp, args=([gw.name], stop), name="casemsg-smpp")
    smpp.start()
    try:
        until(lambda: smsc.bound_sessions == 1)
        smpp_bind.hold([gw])  # what `casemsg worker` does at start: a process gateway is not bound by workers
        due(ids)
        workers = [threading.Thread(target=run_worker, args=(ids, stop)) for _ in range(2)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(20)
        assert not any(w.is_alive() for w in workers)
    finally:
        stop.set()
        smpp.join(15)
    assert len(smsc.binds) == 1 and smsc.binds[0][2] == 0  # exactly one bind, the smpp process's
    assert Counter(s.destination for s in smsc.submits) == Counter(numbers)  # every message once
    sent = dict(Message.objects.filter(pk__in=ids).values_list("status", "provider_id").distinct())
    assert set(sent) == {Message.SENT}
    assert set(Message.objects.filter(pk__in=ids).values_list("provider_id", flat=True)) == {
        s.message_id for s in smsc.submits
    }
    assert not SmppHandoff.objects.exists()  # each handed-over row removed once its outcome was read


def test_without_an_smpp_process_nothing_is_submitted_and_the_message_may_move(project, smsc, monkeypatch):
    monkeypatch.setattr(smpp_handoff, "WAIT_UNTAKEN", 0.3)
    gw = smpp_gateway(smsc, bind_per="process", registered_delivery=False)
    smpp_bind.hold([gw])  # a worker at start: no bind for a process gateway
    (mid,) = queue_held(project, {"254713000001": "Hello"})
    due([mid])
    pipeline.deliver_due()
    m = Message.objects.get(pk=mid)
    assert m.status == Message.QUEUED and "No casemsg smpp process took it" in m.error_detail
    assert smsc.binds == [] and smsc.submits == []
    assert not SmppHandoff.objects.exists()  # withdrawn


def test_the_command_refuses_a_gateway_that_is_not_bind_per_process(project, smsc):
    smpp_gateway(smsc, registered_delivery=False)
    with pytest.raises(CommandError, match="GATEWAY_NOT_FOUND"):
        call_command("smpp", "--gateway", "operator", stdout=StringIO())
    with pytest.raises(CommandError, match="No smpp gateway has bind_per: process"):
        call_command("smpp", stdout=StringIO())
