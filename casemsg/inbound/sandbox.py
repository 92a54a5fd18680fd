"""The sandbox's simulated inbound messages: reply as one of the project's own contacts.

The sandbox is a test tool. A project may simulate a message only from a number that one of its own
contacts holds and that the sandbox serves for it (the project's routes send that number through a
sandbox gateway); a production installation switches the sandbox off (`CASEMSG_SANDBOX=0`). Otherwise any
API key could text START "from" another project's contact and lift its opt-out, or answer its consent
question. The router keeps a simulated message within its project too (see `casemsg.inbound.routing`).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from casemsg.consent import optout
from casemsg.consent.models import ConsentRequest
from casemsg.contacts import whatsapp as wa_windows
from casemsg.contacts.models import PhoneEntry, WhatsAppWindow
from casemsg.core import errors, phone
from casemsg.core.errors import InputError
from casemsg.gateways.base import InboundSms
from casemsg.gateways.models import Gateway
from casemsg.gateways.routing import Router
from casemsg.gateways.whatsapp import SANDBOX_TYPE as WHATSAPP_SANDBOX
from casemsg.inbound import receive
from casemsg.messaging.models import Message
from casemsg.projects.models import Project
from casemsg.surveys.models import SurveySession

MAX_TEXT = 1600  # ten concatenated SMS: more than any phone sends as one message


def _own_number(project: Project, raw_number: str) -> tuple[str, phone.PhoneCheck]:
    """The one rule of both simulators (SMS and WhatsApp): the sandbox is on, and the number is valid and
    held by one of the project's own contacts — it never acts for another project's people."""
    if not settings.CASEMSG_SANDBOX:
        raise InputError(errors.SANDBOX_DISABLED, "The sandbox is switched off on this installation.", 404)
    chk = phone.check(raw_number)
    if chk.number is None:
        raise InputError(errors.INVALID_PHONE_NUMBER, chk.message or "phone_number is not a valid phone number.")
    number = chk.number
    if not PhoneEntry.objects.filter(project=project, phone_number=number).exists():
        raise InputError(
            errors.NOT_A_PROJECT_NUMBER,
            f"No contact of this project has the number {number}: the sandbox acts only for the project's own "
            "contacts.",
            403,
        )
    return number, chk


def sandbox_number(
    project: Project, raw_number: str, refused: str = "only the person can text from it"
) -> tuple[str, Gateway]:
    """The number, and the sandbox gateway serving it, when the sandbox may act for it in this project:
    one of the project's own contacts holds it and the project's routes send it through a sandbox gateway.
    `refused` ends the sentence when another gateway serves it. Raises InputError otherwise."""
    number, chk = _own_number(project, raw_number)
    gw: Gateway | None = Router({project.pk}).choose(project.pk, number, chk.region).gateway
    if gw is None or gw.type != "sandbox":
        served_by = f"gateway '{gw.name}'" if gw is not None else "no gateway"
        raise InputError(
            errors.NOT_A_PROJECT_NUMBER, f"{number} is served by {served_by}, not the sandbox: {refused}.", 403
        )
    return number, gw


def simulate(project: Project, raw_number: str, text: str, provider_id: str = "") -> list[int]:
    """Store an SMS from `raw_number` as if it came through the sandbox gateway; returns the new row ids
    (none when `provider_id` repeats an earlier one). Raises InputError when it is not allowed."""
    if len(text) > MAX_TEXT:
        raise InputError(errors.VALUE_TOO_LONG, f"text is longer than {MAX_TEXT} characters.")
    number, gw = sandbox_number(project, raw_number)
    sms = InboundSms(from_number=number, text=text, provider_id=provider_id)
    return receive.receive(gw, [sms], project=project, simulated=True)


# --- WhatsApp: the simulator as a WhatsApp user -----------------------------------------------------
def whatsapp_sandbox_number(project: Project, raw_number: str) -> tuple[str, Gateway]:
    """The number, and the WhatsApp sandbox gateway (`gateways.whatsapp_sandbox`) the simulator plays it
    on, when it may: one of the project's own contacts holds the number, and the project has a WhatsApp
    sandbox (its own first, else the installation's). Raises InputError otherwise."""
    number, chk = _own_number(project, raw_number)
    gw = whatsapp_sandbox_gateway(project)
    if gw is None:
        raise InputError(
            errors.GATEWAY_NOT_FOUND,
            "There is no WhatsApp sandbox gateway: add one with `casemsg gateway add wa-sandbox --type "
            "whatsapp_sandbox`.",
            404,
        )
    return number, gw


def whatsapp_sandbox_gateway(project: Project) -> Gateway | None:
    """The project's WhatsApp sandbox, else the installation's (one query)."""
    rows = Gateway.objects.filter(Q(project=project) | Q(project__isnull=True), type=WHATSAPP_SANDBOX)
    return min(rows, key=lambda g: (g.project_id is None, g.pk), default=None)


def simulate_whatsapp(project: Project, raw_number: str, text: str, reply_title: str = "") -> list[int]:
    """Store a WhatsApp message from `raw_number` as if it came through the WhatsApp sandbox, simulated
    (it speaks for this project only, like the SMS simulator's); a tapped button or list row sends its id
    as the text and its title as `reply_title`, as the providers' webhooks do. Its 24-hour window opens:
    the sandbox sends nothing, so no provider's window is pretended. Returns the new row ids."""
    if len(text) > MAX_TEXT:
        raise InputError(errors.VALUE_TOO_LONG, f"text is longer than {MAX_TEXT} characters.")
    number, gw = whatsapp_sandbox_number(project, raw_number)
    now = timezone.now()
    extra = {"channel": "whatsapp", **({"reply_title": reply_title[:100]} if reply_title else {})}
    with transaction.atomic():
        ids = receive.receive(
            gw,
            [InboundSms(from_number=number, text=text, received_on=now, extra=extra)],
            project=project,
            simulated=True,
        )
        wa_windows.touch(gw.pk, [(number, now)])
    return ids


@dataclass
class ResetResult:
    opt_out_lifted: bool
    questions: int
    surveys: int
    messages: int


def reset_contact(project: Project, number: str) -> ResetResult:
    """Clear the simulated conversation of a sandbox number (checked by `sandbox_number`), in one
    transaction: lift its opt-out (a ledger row, source `page`, names the user), withdraw the project's
    pending consent questions to it, end its open survey sessions in the project and delete the project's
    sandbox messages with it."""
    now = timezone.now()
    with transaction.atomic():
        # only the project's own opt-out: the installation-wide one is the person's word, never a test's
        lifted = optout.is_opted_out(number, project) and optout.opt_in(
            number, project=project, source="page", answer="reset in the phone simulator", scope=project
        )
        questions = ConsentRequest.objects.filter(
            project=project, phone_number=number, status__in=[ConsentRequest.QUEUED, ConsentRequest.PENDING]
        ).update(status=ConsentRequest.EXPIRED)
        ended = SurveySession.objects.filter(project=project, phone_number=number, status=SurveySession.OPEN).update(
            status=SurveySession.CANCELLED, completed_on=now, next_reminder_on=None
        )
        removed, _ = Message.objects.filter(
            project=project, to=number, gateway__type__in=["sandbox", WHATSAPP_SANDBOX]
        ).delete()
        # the WhatsApp sandbox's window closes again (the project's own sandbox only: an installation's is shared)
        WhatsAppWindow.objects.filter(
            phone_number=number, gateway__type=WHATSAPP_SANDBOX, gateway__project=project
        ).delete()
    return ResetResult(bool(lifted), questions, ended, removed)
