"""The send path's WhatsApp step: for each claimed WhatsApp message, which rule sends it, or why it
cannot go (docs/whatsapp.md).

    gateway: the message's own WhatsApp gateway, else the project's first, else the installation's
    window open (the person wrote to that number in the last 24 hours)  → free text (or buttons/list)
    window closed, the content names an approved template               → the template, variables bound
    otherwise                                                           → WHATSAPP_WINDOW_CLOSED /
                                                                          WHATSAPP_TEMPLATE_NOT_APPROVED /
                                                                          NO_SUITABLE_GATEWAY
    … unless the content allows the fallback: then it goes as an SMS (WHATSAPP_SENT_AS_SMS in its history,
      with the reason), through the SMS rules and routes like any SMS.

A message's content names its template as {"whatsapp": {"template": NAME, "language": "en",
"variables": ["{case.name}", "{case.edd}"], "fallback_sms": true}}; its `text`/`translations` are what
goes inside the window and by SMS. A survey question may carry {"interactive": {…}}
(`casemsg.surveys.whatsapp`).

It is one of the send path's parts (`messaging.pipeline`) because it is a send-time decision taken on a
claimed batch, between rendering and routing; the facts it reads live below it: the window in
`contacts.whatsapp`, the templates in `gateways.whatsapp_templates`. A batch costs three queries: its
gateways, its windows, its templates.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.utils import timezone

from casemsg.contacts import whatsapp as windows
from casemsg.contacts.status import ContactStatus
from casemsg.core import errors
from casemsg.gateways import whatsapp_templates
from casemsg.gateways.base import SendResult
from casemsg.gateways.models import Gateway, WhatsAppTemplate
from casemsg.gateways.whatsapp import DEFAULT_RATE_LIMIT, WHATSAPP_TYPE_NAMES, fill
from casemsg.messaging import render
from casemsg.messaging.models import Message
from casemsg.messaging.pipeline.checks import contact_of, fail

CHANNEL = "whatsapp"


def is_whatsapp(m: Message) -> bool:
    """A WhatsApp message: its channel says so, or it answers through a WhatsApp gateway (a reply to a
    WhatsApp message is queued on the gateway it came in on)."""
    if m.channel == CHANNEL:
        return True
    gw = m.gateway if m.gateway_id else None
    return gw is not None and gw.type in WHATSAPP_TYPE_NAMES


def spec(m: Message) -> dict[str, Any]:
    value = (m.content or {}).get("whatsapp")
    return value if isinstance(value, dict) else {}


def prepare(msgs: list[Message], sts: dict[int, ContactStatus], now: datetime) -> list[Message]:
    """Decide each (rendered, still sending) WhatsApp message: gateway, free text or template, or the
    fallback to SMS, or fail it. Returns the messages going out on WhatsApp (paced like SMS, one
    "segment" each); those falling back are now `sms` messages for the SMS step."""
    if not msgs:
        return []
    gateways = _gateways({m.project_id for m in msgs})
    chosen: list[tuple[Message, Gateway]] = []
    for m in msgs:
        m.channel = CHANNEL
        gw = _gateway_for(m, gateways)
        if gw is None:
            _cannot(m, sts, errors.NO_SUITABLE_GATEWAY, "The project has no WhatsApp gateway.", now)
            continue
        chosen.append((m, gw))
    open_windows = windows.windows((gw.pk, m.to) for m, gw in chosen)
    need_template = [(m, gw) for m, gw in chosen if not windows.is_open(open_windows.get((gw.pk, m.to)), now)]
    names = {(gw.pk, str(spec(m).get("template"))) for m, gw in need_template if spec(m).get("template")}
    approved = whatsapp_templates.approved((g, n, "") for g, n in names)
    going: list[Message] = []
    closed = {id(m) for m, _gw in need_template}
    for m, gw in chosen:
        w = open_windows.get((gw.pk, m.to))
        if _unreachable(w):
            _cannot(m, sts, errors.WHATSAPP_NOT_ON_WHATSAPP, f"WhatsApp said {m.to} cannot be reached.", now)
            continue
        m._rich = None
        if id(m) in closed:
            problem = _template(m, gw, approved)
            if problem is not None:
                _cannot(m, sts, problem[0], problem[1], now)
                continue
        else:
            inter = (m.content or {}).get("interactive")
            if isinstance(inter, dict) and inter.get("choices"):
                m._rich = {"interactive": inter}
        m.gateway, m.gateway_name, m.segments = gw, gw.name, 1
        going.append(m)
    return going


def _gateways(project_ids: set[int | None]) -> dict[int | None, list[Gateway]]:
    out: dict[int | None, list[Gateway]] = {}
    for pid in project_ids:
        out[pid] = whatsapp_templates.whatsapp_gateways(pid)
        for gw in out[pid]:
            if not gw.rate_limit:
                gw.rate_limit = DEFAULT_RATE_LIMIT  # per business number, unless the gateway sets its own
    return out


def _gateway_for(m: Message, gateways: dict[int | None, list[Gateway]]) -> Gateway | None:
    usable = gateways.get(m.project_id) or []
    if m.gateway_id:
        mine = next((g for g in usable if g.pk == m.gateway_id), None)
        if mine is not None:
            return mine
    return usable[0] if usable else None


def _template(
    m: Message, gw: Gateway, approved: dict[tuple[int, str, str], WhatsAppTemplate]
) -> tuple[str, str] | None:
    """Outside the window: bind the content's template, or say why it cannot go."""
    s = spec(m)
    name = str(s.get("template") or "")
    if not name:
        return (
            errors.WHATSAPP_WINDOW_CLOSED,
            f"{m.to} has not written in the last 24 hours and the message names no template.",
        )
    wanted = [str(s.get("language") or ""), m.language, m.project.default_language if m.project else "", "en"]
    found = [t for (g, n, _l), t in approved.items() if g == gw.pk and n == name]
    tpl = next((t for lang in wanted if lang for t in found if t.language == lang), found[0] if found else None)
    if tpl is None:
        return errors.WHATSAPP_TEMPLATE_NOT_APPROVED, f"Template '{name}' is not an approved template of {gw.name}."
    contact = contact_of(m)
    ctx = render.Context(case=m.case, parent=None, recipient_name=getattr(contact, "name", "") or "")
    raw = s.get("variables") or []
    values = [raw[k] for k in sorted(raw, key=_order)] if isinstance(raw, dict) else list(raw)
    try:
        params = [render.render(str(v), ctx) for v in values]
    except render.RenderError as exc:
        return errors.CANNOT_RENDER_MESSAGE, str(exc)
    m._rich = {
        "template": {"name": tpl.name, "language": tpl.language, "provider_id": tpl.provider_id, "params": params}
    }
    m.text = fill(tpl.body, params, list(tpl.variables or [])) or m.text
    m.language = tpl.language
    # which rule sent it, for whoever reads the message (the phone simulator shows it as a template)
    used = {"whatsapp": "template", "template": tpl.name, "language": tpl.language}
    last = (m.history or [{}])[-1]
    if {k: last.get(k) for k in used} != used:  # (once, however many attempts)
        m.history = [*(m.history or []), {"at": timezone.now().isoformat(), **used}]
    return None


def _order(key: str) -> tuple[int, str]:
    return (int(key), "") if str(key).isdigit() else (10**6, str(key))


def _cannot(m: Message, sts: dict[int, ContactStatus], code: str, detail: str, now: datetime) -> None:
    """Fail the message, or, when its content allows it, turn it into an SMS saying why in its history."""
    if not spec(m).get("fallback_sms") and not (m.content or {}).get("fallback_sms"):
        fail(m, code, detail)
        return
    st = sts.get(id(m))
    sms_problem = st.sms.error if st is not None else None
    if sms_problem is not None:
        fail(m, sms_problem.code, f"Not on WhatsApp ({code}) and not by SMS: {sms_problem.detail or sms_problem.code}")
        return
    m.channel = "sms"
    if st is not None and st.phone_number:
        m.to = st.phone_number
    if m.gateway is not None and m.gateway.type in WHATSAPP_TYPE_NAMES:
        m.gateway, m.gateway_name = None, ""
    m._rich = None
    m.history = [
        *(m.history or []),
        {"at": now.isoformat(), "code": errors.WHATSAPP_SENT_AS_SMS, "reason": code, "detail": detail},
    ]


def fall_back_after_send(msgs: list[Message], results: Mapping[int, SendResult], now: datetime) -> set[int]:
    """The provider said the window is closed when the message went (Meta 131047, Twilio 63016: our window
    said open, theirs did not — a clock apart, an inbound webhook lost): a message whose content allows
    the fallback goes back to the queue as an SMS at once (its history says why: WHATSAPP_SENT_AS_SMS with
    the provider's words), checked and routed by the SMS rules on its next claim; without the fallback it
    fails with WHATSAPP_WINDOW_CLOSED as the result says. Returns the ids moved (`apply_result` must not
    see them)."""
    moved: set[int] = set()
    for m in msgs:
        r = results.get(m.pk)
        if r is None or r.status != "failed" or r.error != errors.WHATSAPP_WINDOW_CLOSED or m.channel != CHANNEL:
            continue
        if _to_sms(m, r.error, r.detail, now):
            moved.add(m.pk)
    return moved


def fall_back_reported(msgs: Sequence[Message], now: datetime) -> list[Message]:
    """The same fallback when the window's closing comes in a failed status report after the provider took
    the message (Meta's usual way to tell 131047): the failed WhatsApp messages whose content allows it go
    back to the queue as SMS. Returns those moved (to be written with REQUEUE_FIELDS)."""
    return [
        m
        for m in msgs
        if m.channel == CHANNEL
        and m.status == Message.FAILED
        and m.error == errors.WHATSAPP_WINDOW_CLOSED
        and _to_sms(m, m.error, m.error_detail, now)
    ]


# what `_to_sms` changes on a message
REQUEUE_FIELDS = (
    "channel",
    "gateway",
    "gateway_name",
    "status",
    "claim",
    "next_attempt_on",
    "error",
    "error_detail",
    "history",
)


def _to_sms(m: Message, reason: str, detail: str, now: datetime) -> bool:
    """Back to the queue as an SMS, if its content allows the fallback; its history says why."""
    if not spec(m).get("fallback_sms") and not (m.content or {}).get("fallback_sms"):
        return False
    m.history = [
        *(m.history or []),
        {"at": now.isoformat(), "code": errors.WHATSAPP_SENT_AS_SMS, "reason": reason, "detail": (detail or "")[:300]},
    ]
    m.channel, m.gateway, m.gateway_name, m._rich = "sms", None, "", None
    m.status, m.claim, m.next_attempt_on, m.error, m.error_detail = Message.QUEUED, "", now, "", ""
    return True


def remember_unreachable(msgs: list[Message], at: datetime) -> None:
    """WhatsApp answered that these numbers cannot be reached (131026 / 63003): later messages to them fail
    at once, or fall back to SMS, until the person writes from the number (contacts.whatsapp)."""
    by_gateway: dict[int, set[str]] = {}
    for m in msgs:
        if m.channel == CHANNEL and m.error == errors.WHATSAPP_NOT_ON_WHATSAPP and m.gateway_id and m.to:
            by_gateway.setdefault(m.gateway_id, set()).add(m.to)
    for gateway_id, numbers in by_gateway.items():
        windows.not_on_whatsapp(gateway_id, numbers, at)


# --- the same decision over a population (a broadcast's pre-flight, the send form) --------------------
FREE_TEXT, TEMPLATE, SMS = "free_text", "template", "sms"


def decide(
    *,
    whatsapp_problem: str | None,
    sms_problem: str | None,
    has_gateway: bool,
    window: Any,
    now: datetime,
    template: str,
    template_ok: bool,
    fallback: bool,
) -> tuple[str, str]:
    """(how, why) for one recipient, in `prepare`'s order: how is FREE_TEXT, TEMPLATE, SMS (why: the
    WhatsApp code it falls back from) or "" (why: the code the message fails with). A problem of the
    WhatsApp channel itself (opted out, no number) fails it at eligibility, before any fallback."""
    if whatsapp_problem:
        return "", whatsapp_problem
    if not has_gateway:
        why = errors.NO_SUITABLE_GATEWAY
    elif _unreachable(window):
        why = errors.WHATSAPP_NOT_ON_WHATSAPP
    elif windows.is_open(window, now):
        return FREE_TEXT, ""
    elif not template:
        why = errors.WHATSAPP_WINDOW_CLOSED
    elif not template_ok:
        why = errors.WHATSAPP_TEMPLATE_NOT_APPROVED
    else:
        return TEMPLATE, ""
    if not fallback:
        return "", why
    if sms_problem:
        return "", sms_problem
    return SMS, why


def _unreachable(w: Any) -> bool:
    """WhatsApp said the number cannot be reached, and the person has not written from it since."""
    return (
        w is not None
        and w.not_on_whatsapp_on is not None
        and (w.last_inbound_on or w.not_on_whatsapp_on) <= w.not_on_whatsapp_on
    )


@dataclass
class Reach:
    """How a WhatsApp content reaches a population: free text inside the window, its template outside,
    SMS in its place (by reason), or not at all (by code). Counted page by page: per page one query for
    the windows, whatever its size; the gateway and the template are read once."""

    gateway: str = ""
    template: str = ""
    template_status: str = ""  # APPROVED, the provider's other status (PENDING, REJECTED…), or "" (not synced)
    fallback_sms: bool = False
    free_text: int = 0
    by_template: int = 0
    by_sms: dict[str, int] = field(default_factory=dict)  # WhatsApp code it falls back from → recipients
    unreachable: dict[str, int] = field(default_factory=dict)  # code → recipients

    def as_dict(self) -> dict[str, Any]:
        return {
            "gateway": self.gateway or None,
            "template": self.template or None,
            "template_status": self.template_status or None,
            "fallback_sms": self.fallback_sms,
            "window_open": self.free_text,
            "template_sends": self.by_template,
            "sms": dict(sorted(self.by_sms.items())),
            "unreachable": dict(sorted(self.unreachable.items())),
        }


class Planner:
    """`decide` for pages of recipients of one WhatsApp content (`spec`: its {"template", …})."""

    def __init__(self, project_id: int | None, spec: Mapping[str, Any], now: datetime) -> None:
        self.now = now
        usable = whatsapp_templates.whatsapp_gateways(project_id)
        self.gateway = usable[0] if usable else None  # as `_gateway_for` picks it for a message naming none
        name = str(spec.get("template") or "")
        self.reach = Reach(
            gateway=self.gateway.name if self.gateway else "",
            template=name,
            fallback_sms=bool(spec.get("fallback_sms")),
        )
        self.template_ok = False
        if name and self.gateway is not None:
            statuses = set(
                WhatsAppTemplate.objects.filter(gateway=self.gateway, name=name).values_list("status", flat=True)
            )
            self.template_ok = whatsapp_templates.APPROVED in statuses
            self.reach.template_status = whatsapp_templates.APPROVED if self.template_ok else ",".join(sorted(statuses))

    def page(self, sts: Sequence[ContactStatus | None]) -> list[tuple[str, str]]:
        """(how, why) per status (None: a recipient not asked), counted into `reach`."""
        gw = self.gateway
        found = windows.windows((gw.pk, st.whatsapp_number) for st in sts if gw and st and st.whatsapp_number)
        out = []
        for st in sts:
            if st is None:
                out.append(("", ""))
                continue
            how, why = decide(
                whatsapp_problem=st.whatsapp.error.code if st.whatsapp.error else None,
                sms_problem=st.sms.error.code if st.sms.error else None,
                has_gateway=gw is not None,
                window=found.get((gw.pk, st.whatsapp_number)) if gw is not None else None,
                now=self.now,
                template=self.reach.template,
                template_ok=self.template_ok,
                fallback=self.reach.fallback_sms,
            )
            r = self.reach
            if how == FREE_TEXT:
                r.free_text += 1
            elif how == TEMPLATE:
                r.by_template += 1
            elif how == SMS:
                r.by_sms[why] = r.by_sms.get(why, 0) + 1
            else:
                r.unreachable[why] = r.unreachable.get(why, 0) + 1
            out.append((how, why))
        return out
