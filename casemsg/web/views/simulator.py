"""The phone simulator: be the person at the other end of the sandbox gateway.

A reply goes in exactly as the sandbox webhook would take it (inbound.receive.receive). Then, because
this is a development tool and the conversation should show the answer at once, the view processes it
and delivers what it queued right here instead of waiting for the worker; the worker, if running, simply
finds nothing left (both paths claim rows with a conditional UPDATE, so nothing is handled twice).

Under each inbound message the conversation says what happened to it, read from the outcome the inbound
router records in the message's history (`describe`): the keyword matched, an opt-out or opt-in, a consent
answer, a survey answer (which survey and question), or "not handled" and why.

As a WhatsApp user (`channel=whatsapp`): the person writes through the WhatsApp sandbox gateway
(`gateways.whatsapp_sandbox`, `inbound.sandbox.simulate_whatsapp`: the same inbound router, simulated, for
this project only), which opens its 24-hour window; the phone shows that window (open until …, or closed),
the templates sent outside it, and a question's reply buttons or list as buttons that answer with the
choice's id, as the providers' webhooks do.

"Reset" clears a test contact's simulated conversation: the number's opt-out (with a ledger row naming the
user), its pending consent questions and open survey sessions in this project, and its sandbox messages.
It is allowed for exactly the numbers the sandbox may simulate (docs/security.md): a number one of the
project's own contacts holds and the project's routes send through a sandbox gateway, so nobody can use it
to lift a real person's STOP.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.contrib import messages as flash
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from casemsg.cases import queries as case_queries
from casemsg.contacts import queries as contact_queries
from casemsg.core import phone
from casemsg.core.errors import InputError
from casemsg.gateways import queries as gateway_queries
from casemsg.gateways.base import digits
from casemsg.gateways.models import Gateway
from casemsg.inbound import router as inbound
from casemsg.inbound import sandbox
from casemsg.messaging import pipeline
from casemsg.messaging import queries as message_queries
from casemsg.messaging.models import Message
from casemsg.projects.models import Project
from casemsg.surveys import engine as survey_engine
from casemsg.surveys import queries as survey_queries
from casemsg.web.forms import ReplyForm, SimulatorForm
from casemsg.web.views.common import is_htmx, project_or_404, staff_required, with_query
from casemsg.web.views.keywords import require_role, role_allows
from casemsg.web.views.picker import picker
from casemsg.web.views.surveys import open_sessions_of

log = logging.getLogger(__name__)

CONVERSATION_LENGTH = 100


def clean_number(raw: str) -> tuple[str, str | None]:
    """(digits, problem). A simulated phone may type '+1 206…': keep the digits, as gateways do."""
    number = digits(raw)
    if not number:
        return "", "Enter a phone number: its digits, country code first (e.g. 15551234567)."
    if len(number) > phone.MAX_DIGITS:
        return "", f"A phone number has at most {phone.MAX_DIGITS} digits."
    return number, None


def channel_of(raw: str | None) -> str:
    return "whatsapp" if raw == "whatsapp" else "sms"


def conversation(project: Project, number: str, channel: str = "sms") -> list[Message]:
    newest = message_queries.conversation(project, number, CONVERSATION_LENGTH, channel)
    describe([m for m in newest if m.direction == Message.IN])
    if channel == "whatsapp":
        as_whatsapp_shows(newest)
    return newest[::-1]  # oldest first, as a phone shows it


@dataclass
class WhatsAppLook:
    """How an outgoing message looked on WhatsApp: a template (its name), reply buttons or a list (the
    choices, each answering with its id), or plain text."""

    template: str = ""
    kind: str = ""  # buttons | list | ""
    choices: list[dict[str, str]] = field(default_factory=list)


SHOWN = frozenset({Message.SENT, Message.DELIVERED, Message.READ})


def as_whatsapp_shows(msgs: list[Message]) -> None:
    """Set `m.wa` on outgoing messages, from what the send path recorded: the template it used (the
    message's history), else the buttons or list its content carries (sent inside the window)."""
    for m in msgs:
        if m.direction != Message.OUT:
            continue
        look = WhatsAppLook()
        used = next((h for h in reversed(m.history or []) if h.get("whatsapp") == "template"), None)
        inter: Any = (m.content or {}).get("interactive")
        if used is not None:
            look.template = str(used.get("template") or "")
        elif isinstance(inter, dict) and m.status in SHOWN:
            look.kind = str(inter.get("kind") or "")
            look.choices = [
                {"id": str(c.get("id") or ""), "title": str(c.get("title") or c.get("id") or "")}
                for c in inter.get("choices") or []
                if isinstance(c, dict) and c.get("id")
            ]
        m.wa = look  # type: ignore[attr-defined]


def whatsapp_window(project: Project, number: str) -> tuple[Gateway | None, datetime | None]:
    """The WhatsApp sandbox the simulator plays the number on, and until when its window is open (None:
    closed, or no sandbox)."""
    gw = sandbox.whatsapp_sandbox_gateway(project)
    if gw is None or not number:
        return gw, None
    until = contact_queries.whatsapp_open_until(gw.pk, number)
    return gw, until if until is not None and until > timezone.now() else None


@dataclass
class Outcome:
    """What the inbound router did with one message, as the simulator shows it under the message."""

    kind: str  # handled | unhandled | waiting
    text: str


# The router's outcomes (inbound.handle.act, keywords' handlers, the survey engine) in words.
OUTCOMES = {
    "opt_out": "Opted out (STOP): the number gets nothing more until START.",
    "opt_in": "Opted back in (START).",
    "help": "Help word: the project's help text was sent.",
    "consent": "Consent answer: yes, consent recorded.",
    "refusal": "Consent answer: no.",
    "verified": "Verification code right: the number is verified.",
    "wrong_code": "Verification code wrong.",
    "unknown_sender": "Unknown sender: the project's reply to unknown senders was sent.",
    "survey_started": "Survey started.",
    "survey_not_started": "The survey could not start for this contact (see the worker log).",
    "keyword_no_case": "No case holds this number, so the keyword could not act.",
    survey_engine.ANSWERED: "Survey answer accepted",
    survey_engine.RETRY: "Survey answer not understood; the question was asked again",
    survey_engine.COMPLETED: "Survey answer accepted; the survey is complete",
    survey_engine.STOPPED: "#STOP: the survey ended",
}


def describe(msgs: list[Message]) -> None:
    """Set `m.outcome` on inbound messages from the outcome their history records (one query for the
    survey sessions named, whatever the number of messages)."""
    handled = {m.pk: next((h for h in reversed(m.history or []) if "outcome" in h), None) for m in msgs}
    session_ids = {h["survey_session"] for h in handled.values() if h and "survey_session" in h}
    sessions = survey_queries.sessions_by_id(session_ids)
    for m in msgs:
        h = handled[m.pk]
        if h is None:
            if m.next_attempt_on is not None:
                m.outcome = Outcome("waiting", "Waiting to be handled.")  # type: ignore[attr-defined]
            else:
                why = m.error_detail or "it is being handled"
                m.outcome = Outcome("unhandled", f"Not handled: {why}")  # type: ignore[attr-defined]
            continue
        code, word = h["outcome"], h.get("keyword", "")
        if code == "unhandled":
            m.outcome = Outcome("unhandled", f"Not handled: {m.error_detail or 'nothing matched.'}")  # type: ignore[attr-defined]
            continue
        if code.startswith("keyword:"):
            text = f"Keyword {code.split(':', 1)[1]} matched."
        else:
            text = OUTCOMES.get(code, code)
            if word:
                text = f"Keyword {word} matched. {text}"
        session = sessions.get(h.get("survey_session"))
        if session is not None:
            text = f"{text}: survey “{session.survey_version.survey.name}”, question {h.get('question', '')}."
        m.outcome = Outcome("handled", text)  # type: ignore[attr-defined]


def _case_picker(project: Project, value: str) -> dict[str, Any]:
    """The case to open, found by name, id or phone (the searchable picker; no list of every case)."""
    return picker(project, "case", value, "or a case", "find it by name, case id or phone number")


def _phone_context(
    request: HttpRequest, project: Project, number: str, reply_form: ReplyForm | None = None, channel: str = "sms"
) -> dict:
    wa_gateway, window_open_until = whatsapp_window(project, number) if channel == "whatsapp" else (None, None)
    return {
        "project": project,
        "number": number,
        "channel": channel,
        "wa_gateway": wa_gateway,
        "window_open_until": window_open_until,
        "conversation": conversation(project, number, channel),
        "survey_sessions": open_sessions_of(project, number),  # shown above the conversation
        "reply_form": reply_form or ReplyForm(initial={"number": number}),
        "gateway": gateway_queries.sandbox_gateway(project),
        "can_edit": role_allows(request, "editor"),
    }


@staff_required
def simulator(request: HttpRequest, slug: str) -> HttpResponse:
    project = project_or_404(slug)
    form = SimulatorForm(request.GET or None)
    channel = channel_of(request.GET.get("channel"))
    number = ""
    case = None
    if form.is_bound and form.is_valid():
        if form.cleaned_data["case"]:
            case = case_queries.case(project, form.cleaned_data["case"])
            if case is None:
                form.add_error("case", "No such case in this project.")
            else:
                chk = phone.check((case.properties or {}).get("contact_phone_number") or "")
                if chk.ok:
                    number = chk.number or ""
                else:
                    form.add_error("case", f"This case has no usable phone number ({chk.error}: {chk.message})")
        elif form.cleaned_data["number"]:
            number, problem = clean_number(form.cleaned_data["number"])
            if problem:
                form.add_error("number", problem)
    ctx = {
        "form": form,
        "case_picker": _case_picker(project, case.case_id if case is not None else str(form.data.get("case") or "")),
        "case": case,
        **_phone_context(request, project, number, channel=channel),
    }
    return render(request, "web/simulator.html", ctx)


@staff_required
def conversation_part(request: HttpRequest, slug: str) -> HttpResponse:
    """The conversation alone, polled by htmx so replies the worker sends later appear too."""
    project = project_or_404(slug)
    number, problem = clean_number(request.GET.get("number", ""))
    channel = channel_of(request.GET.get("channel"))
    return render(
        request,
        "web/_conversation.html",
        {
            "project": project,
            "number": number,
            "channel": channel,
            "conversation": conversation(project, number, channel) if not problem else [],
        },
    )


@staff_required
def reply(request: HttpRequest, slug: str) -> HttpResponse:
    project = project_or_404(slug)
    if request.method != "POST":
        return redirect(reverse("web:simulator", args=[project.slug]))
    form = ReplyForm(request.POST)
    channel = channel_of(request.POST.get("channel"))
    number = ""
    if form.is_valid():
        number, problem = clean_number(form.cleaned_data["number"])
        ids: list[int] | None = None
        if problem:
            form.add_error(None, problem)
        else:
            try:
                if channel == "whatsapp":  # a tapped button or list row sends its id, and its title
                    title = request.POST.get("reply_title", "")
                    ids = sandbox.simulate_whatsapp(project, number, form.cleaned_data["text"], title)
                else:
                    ids = sandbox.simulate(project, number, form.cleaned_data["text"])
            except InputError as exc:
                form.add_error(None, exc.message)
        if ids is not None:
            _process_now(ids)
            if not is_htmx(request):
                url = reverse("web:simulator", args=[project.slug])
                if channel == "whatsapp":
                    return redirect(with_query(url, number=number, channel=channel))
                return redirect(with_query(url, number=number))
            form = ReplyForm(initial={"number": number})  # a fresh, empty reply box
    else:
        number, _problem = clean_number(request.POST.get("number", ""))
    ctx = _phone_context(request, project, number, form, channel)
    if is_htmx(request):
        return render(request, "web/_phone.html", ctx)
    return render(
        request,
        "web/simulator.html",
        {
            **ctx,
            "form": SimulatorForm(initial={"number": number}),
            "case_picker": _case_picker(project, ""),
            "case": None,
        },
    )


def _process_now(ids: list[int]) -> None:
    inbound.process_due(ids)
    try:
        # One bounded batch: enough for the replies just queued; a large backlog stays with the worker.
        pipeline.deliver_due(max_batches=1)
    except Exception:  # noqa: BLE001 — the reply is stored and the worker retries; the page must not fail
        log.exception("simulator: delivering replies failed; the worker will retry")


# --- reset a test contact --------------------------------------------------------------------------
@staff_required
@require_POST
def reset(request: HttpRequest, slug: str) -> HttpResponse:
    project = project_or_404(slug)
    require_role(request, "editor")
    raw = request.POST.get("number", "")
    channel = channel_of(request.POST.get("channel"))
    try:
        if channel == "whatsapp":
            number, _gw = sandbox.whatsapp_sandbox_number(project, raw)
        else:
            number, _gw = sandbox.sandbox_number(project, raw, "its opt-out and questions belong to the person")
    except InputError as exc:
        flash.error(request, f"{exc.code}: {exc.message}")
        number = digits(raw)[: phone.MAX_DIGITS]
    else:
        r = sandbox.reset_contact(project, number)
        done = [
            "opt-out lifted" if r.opt_out_lifted else "",
            f"{r.questions} consent question(s) withdrawn" if r.questions else "",
            f"{r.surveys} survey session(s) ended" if r.surveys else "",
            f"{r.messages} message(s) removed",
        ]
        flash.success(request, f"{number} reset: {', '.join(d for d in done if d)}.")
    url = reverse("web:simulator", args=[project.slug])
    if number and channel == "whatsapp":
        return redirect(with_query(url, number=number, channel=channel))
    return redirect(with_query(url, number=number) if number else url)
