"""The README's gateway example, run as written against a fresh database with the demo loaded: while its
route is in place, numbers starting 1 go to Twilio (here the fake Twilio on 127.0.0.1: the block's config
pointed at it), and once the block has run the demo's US numbers — and any number starting 1 — go through
the sandbox again. A README block that left its route behind fails here."""

from __future__ import annotations

import json
import re
import shlex
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from casemsg.cases.models import Case
from casemsg.core import phone
from casemsg.gateways.models import Gateway
from casemsg.gateways.routing import Router
from casemsg.messaging.models import Message
from casemsg.messaging.pipeline import MessageSpec, deliver_due, queue
from casemsg.projects.models import Project

README = Path(__file__).resolve().parents[1] / "README.md"
CANADA = "16135550123"  # a number starting 1 outside the consent regions: it is sent without asking first


def gateway_block() -> list[list[str]]:
    """The commands of the README's shell block that adds a gateway, as argument lists (comments dropped)."""
    blocks = re.findall(r"```sh\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    (block,) = [b for b in blocks if "casemsg gateway add" in b]
    return [shlex.split(line, comments=True) for line in block.splitlines() if line.strip()]


def route_of(project: Project, number: str) -> str:
    choice = Router({project.pk}).choose(project.pk, number, phone.check(number).region)
    assert choice.gateway is not None, choice
    return choice.gateway.name


def send(project: Project, number: str) -> Message:
    (msg,) = queue(project, [MessageSpec(to=number, text="through the README's route")], None)
    deliver_due(max_batches=1)
    msg.refresh_from_db()
    return msg


@pytest.mark.django_db
def test_the_readme_gateway_block_leaves_the_demo_on_the_sandbox(fake_twilio, settings, tmp_path) -> None:
    settings.DATA_DIR = str(tmp_path)  # the demo keeps its credentials there
    call_command("demo", stdout=StringIO())
    demo = Project.objects.get(slug="demo")
    us = [
        c.properties["contact_phone_number"]
        for c in Case.objects.filter(project=demo)
        if phone.check(c.properties["contact_phone_number"]).region == "US"
    ]
    assert us, "the demo has US numbers"
    assert {route_of(demo, n) for n in [*us, CANADA]} == {"sandbox"}

    commands = gateway_block()
    assert [c[:3] for c in commands][:2] == [
        [".venv/bin/casemsg", "gateway", "add"],
        [".venv/bin/casemsg", "gateway", "map"],
    ]
    for args in commands:
        assert args[0] == ".venv/bin/casemsg", args
        name, *rest = args[1:]
        if rest[:1] == ["add"]:
            # the block's config, with the fake Twilio's account and address in place of the real one's
            at = rest.index("--config") + 1
            rest[at] = json.dumps({**json.loads(rest[at]), **fake_twilio.gateway_config()})
        call_command(name, *rest, stdout=StringIO())
        if rest[:1] == ["map"]:
            # the example's route is in place: numbers starting 1 go to Twilio
            assert {route_of(demo, n) for n in us} == {"twilio-us"}
            msg = send(demo, CANADA)
            assert (msg.status, msg.gateway_name) == (Message.SENT, "twilio-us"), msg.error_detail
            (got,) = fake_twilio.requests()
            assert got.to.lstrip("+") == CANADA

    # afterwards: the demo's US numbers (and every number starting 1) go through the sandbox again
    assert not Gateway.objects.filter(name="twilio-us").exists()
    assert {route_of(demo, n) for n in [*us, CANADA]} == {"sandbox"}
    msg = send(demo, CANADA)
    assert (msg.status, msg.gateway_name) == (Message.SENT, "sandbox")
    assert len(fake_twilio.requests()) == 1
