"""The sandbox's simulated inbound messages: reply as one of the project's own contacts.

The sandbox is a test tool. A project may simulate a message only from a number that one of its own
contacts holds and that the sandbox serves for it (the project's routes send that number through a
sandbox gateway); a production installation switches the sandbox off (`CASEMSG_SANDBOX=0`). Otherwise any
API key could text START "from" another project's contact and lift its opt-out, or answer its consent
question. The router keeps a simulated message within its project too (see `router.handle`).
"""

from __future__ import annotations

from django.conf import settings

from casemsg.contacts.models import PhoneEntry
from casemsg.core import errors, phone
from casemsg.core.errors import InputError
from casemsg.gateways.base import InboundSms
from casemsg.gateways.models import Gateway
from casemsg.gateways.routing import Router
from casemsg.inbound import router
from casemsg.projects.models import Project

MAX_TEXT = 1600  # ten concatenated SMS: more than any phone sends as one message


def simulate(project: Project, raw_number: str, text: str, provider_id: str = "") -> list[int]:
    """Store an SMS from `raw_number` as if it came through the sandbox gateway; returns the new row ids
    (none when `provider_id` repeats an earlier one). Raises InputError when it is not allowed."""
    if not settings.CASEMSG_SANDBOX:
        raise InputError(errors.SANDBOX_DISABLED, "The sandbox is switched off on this installation.", 404)
    chk = phone.check(raw_number)
    if chk.number is None:
        raise InputError(errors.INVALID_PHONE_NUMBER, chk.message or "phone_number is not a valid phone number.")
    number = chk.number
    if len(text) > MAX_TEXT:
        raise InputError(errors.VALUE_TOO_LONG, f"text is longer than {MAX_TEXT} characters.")
    if not PhoneEntry.objects.filter(project=project, phone_number=number).exists():
        raise InputError(
            errors.NOT_A_PROJECT_NUMBER,
            f"No contact of this project has the number {number}: the sandbox simulates replies from the "
            "project's own contacts only.",
            403,
        )
    choice = Router({project.pk}).choose(project.pk, number, chk.region)
    gw: Gateway | None = choice.gateway
    if gw is None or gw.type != "sandbox":
        served_by = f"gateway '{gw.name}'" if gw is not None else "no gateway"
        raise InputError(
            errors.NOT_A_PROJECT_NUMBER,
            f"{number} is served by {served_by}, not the sandbox: only the person can text from it.",
            403,
        )
    return router.receive(gw, [InboundSms(from_number=number, text=text, provider_id=provider_id)], project=project)
