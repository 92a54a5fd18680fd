"""Failover along a route's gateways, against real SMPP servers (fakes/smsc.py): a refused bind moves the
message to the next gateway and its history shows the hop; an unknown outcome never moves; the circuit
opens after consecutive failures and re-closes after a probe."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from casemsg.core import errors
from casemsg.gateways import failover, smpp_bind
from casemsg.gateways.carrier.models import Circuit
from casemsg.gateways.models import Gateway
from casemsg.gateways.services import map_prefix
from casemsg.messaging.models import Message
from fakes.smsc import FakeSmsc
from tests.gateways.test_smpp import smpp_gateway
from tests.messaging.conftest import KE, deliver, msg, send

pytestmark = pytest.mark.django_db  # no receipts: nothing is written outside the test's transaction


@pytest.fixture
def backup_smsc():
    server = FakeSmsc().start()
    yield server
    server.stop()


def two_gateways(smsc: FakeSmsc, backup: FakeSmsc) -> None:
    smpp_gateway(smsc, "operator", prefix=None, timeout=1, registered_delivery=False)
    smpp_gateway(backup, "aggregator", prefix=None, timeout=1, registered_delivery=False)
    map_prefix("*", "operator", then=["aggregator"])


def hops(m: Message) -> list[tuple[str, str]]:
    return [(h["from"], h["to"]) for h in m.history if h.get("code") == errors.GATEWAY_FAILOVER]


def test_refused_bind_fails_over_to_the_second_gateway_and_the_history_shows_it(api, smsc, backup_smsc):
    smsc.refuse_bind = True
    two_gateways(smsc, backup_smsc)
    case = api.case({"contact_phone_number": KE})
    data = send(api, case["case_id"], text="Your visit is tomorrow")
    deliver()
    m = msg(data)
    assert m.status in (Message.SENT, Message.DELIVERED)
    assert m.gateway_name == "aggregator" and m.attempts == 1  # the hop was not an attempt
    assert hops(m) == [("operator", "aggregator")]
    (hop,) = [h for h in m.history if h.get("code") == errors.GATEWAY_FAILOVER]
    assert "bind" in hop["why"]
    assert smsc.submits == [] and [s.text for s in backup_smsc.submits] == ["Your visit is tomorrow"]
    # the API shows the hop too
    body = api.get(f"messages/{m.pk}").json()
    assert "aggregator" in str(body)


def test_an_unknown_outcome_never_moves(api, smsc, backup_smsc):
    two_gateways(smsc, backup_smsc)
    case = api.case({"contact_phone_number": KE})
    smsc.drop_after(0)  # the submit is written, then the line goes without an answer
    data = send(api, case["case_id"], text="Once only")
    deliver()
    m = msg(data)
    assert m.status == Message.QUEUED and m.gateway_name == "operator"
    assert hops(m) == [] and backup_smsc.submit_count == 0
    assert "No submit_sm_resp" in m.error_detail


def test_the_circuit_opens_after_consecutive_failures_and_recloses_after_a_probe(api, smsc, backup_smsc):
    smsc.refuse_bind = True
    two_gateways(smsc, backup_smsc)
    case = api.case({"contact_phone_number": KE})
    ids = [send(api, case["case_id"], text=f"m{i}")["id"] for i in range(failover.FAILURES_TO_OPEN)]
    deliver()
    circuit = Circuit.objects.get(gateway__name="operator")
    assert circuit.failures >= failover.FAILURES_TO_OPEN and circuit.open_until > timezone.now()
    assert {msg(i).gateway_name for i in ids} == {"aggregator"}
    # while open, a new message goes straight to the second gateway, the skip in its history
    later = send(api, case["case_id"], text="while open")["id"]
    deliver()
    m = msg(later)
    assert m.gateway_name == "aggregator" and m.status in (Message.SENT, Message.DELIVERED)
    assert hops(m) == [("operator", "aggregator")] and "circuit open" in m.history[-1]["why"]
    # the operator is back; once the open time passes, one message probes it and closes the circuit
    smsc.refuse_bind = False
    Circuit.objects.filter(pk=circuit.pk).update(open_until=timezone.now())
    probe = send(api, case["case_id"], text="probe")["id"]
    deliver()
    assert msg(probe).gateway_name in ("operator", "aggregator")  # the bind may still be in its back-off
    if msg(probe).gateway_name == "aggregator":
        Circuit.objects.filter(pk=circuit.pk).update(open_until=timezone.now())
        smpp_bind.shutdown()  # (the bind's back-off: a fresh bind for the next probe)
        probe = send(api, case["case_id"], text="probe again")["id"]
        deliver()
    assert msg(probe).gateway_name == "operator"
    circuit.refresh_from_db()
    assert circuit.failures == 0 and circuit.open_until is None


def test_a_disabled_gateway_is_skipped(api, smsc, backup_smsc):
    two_gateways(smsc, backup_smsc)
    operator = Gateway.objects.get(name="operator")
    failover.set_disabled(operator, True)
    case = api.case({"contact_phone_number": KE})
    data = send(api, case["case_id"])
    deliver()
    m = msg(data)
    assert m.gateway_name == "aggregator" and hops(m) == [("operator", "aggregator")]
    assert m.history[-1]["why"] == "disabled"
    failover.set_disabled(operator, False)


def test_a_route_lists_its_gateways_in_order_in_the_api_the_cli_and_contact_status(api, project):
    for name in ("primary", "backup"):
        assert api.post("gateways", {"name": name, "type": "sandbox"}).status_code == 201
    r = api.post("routes", {"prefix": "*", "gateway": "primary", "then": ["backup"]})
    assert r.status_code == 201 and r.json()["then"] == ["backup"]
    assert api.get("routes").json()["items"] == [
        {"prefix": "*", "gateway": "primary", "project": project.slug, "then": ["backup"]}
    ]
    bad = api.post("routes", {"prefix": "*", "gateway": "primary", "then": ["nowhere"]})
    assert bad.status_code == 404 and bad.json()["error"]["code"] == "GATEWAY_NOT_FOUND"
    case = api.case({"contact_phone_number": KE})
    assert api.contact(case["case_id"])["gateway"] == "primary"  # the gateway a message would use now

    preflight = {
        "name": "Reminder",
        "content": {"text": "Hello"},
        "recipients": {"case_ids": [case["case_id"]]},
        "schedule": {"type": "daily", "time": "09:00", "start_date": "2099-01-01", "count": 1, "time_zone": "UTC"},
    }

    def preflight_gateway() -> str | None:
        r = api.post("broadcasts/preflight", preflight)
        assert r.status_code == 200, r.content
        return r.json()["first_sends"][0]["gateway"]

    assert preflight_gateway() == "primary"

    call_command("gateway", "disable", "primary", "--project", project.slug, stdout=StringIO())
    assert api.contact(case["case_id"])["gateway"] == "backup"
    assert preflight_gateway() == "backup"
    circuits = {g["name"]: g["circuit"] for g in api.get("gateways").json()["items"]}
    assert circuits["primary"] == "disabled" and circuits["backup"] == "closed"
    out = StringIO()
    call_command("gateway", "list", stdout=out)
    assert "route * → primary → backup" in out.getvalue() and "circuit=disabled" in out.getvalue()
    data = send(api, case["case_id"])
    deliver()
    m = msg(data)
    assert m.gateway_name == "backup" and m.status == Message.SENT and hops(m) == [("primary", "backup")]

    call_command("gateway", "enable", "primary", "--project", project.slug, stdout=StringIO())
    assert api.contact(case["case_id"])["gateway"] == "primary"
