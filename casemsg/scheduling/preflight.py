"""A broadcast's pre-flight: whom it would reach, who is blocked and why, how many SMS segments it
costs and what the first messages will say, computed before anything is saved or sent. Nothing is
written (`POST …/broadcasts/preflight`, the broadcast form's preview).

`preflight(project, body)` takes the body `services.create_broadcast` takes and validates it the same
way (`specs.parse_broadcast`: a bad body raises the same InputError). Then, exactly as the broadcast
would:

- **recipients**: `recipients.recipient_querysets`, the query the broadcast itself starts its schedules
  from, read in primary-key pages of `CHUNK` rows (a large population never sits in memory);
- **first event**: each recipient's first event in its zone (the schedule's named zone, else its own
  ``time_zone``, else the project's), computed as `lifecycle.start_broadcast` does, once per zone. A
  recipient for whom no event is left (a one-off time already past in its zone) gets no message:
  counted in ``no_events``;
- **blocked**: the contact statuses of each page in one batch (`contacts.status.statuses`): a recipient
  whose channel (SMS, or email for an email broadcast) has a problem is blocked under that problem's
  catalogue code (INVALID_PHONE_NUMBER, NO_CONSENT, PHONE_OPTED_OUT, …), as the send pipeline would
  fail its message; so is one with no text in its language chain (NO_MESSAGE_FOR_LANGUAGE);
- **segments**: the SMS segments of the first message to every sendable recipient (0 for email). The
  text is chosen per recipient by the pipeline's chain (the contact's language, the broadcast's default,
  the project's); a text without placeholders is rendered and counted once per language, one with
  placeholders once per recipient;
- **first_sends**: the `limit` earliest first messages to sendable recipients (ties in recipient
  order), each rendered for its recipient.

- **at each send**: whether the broadcast reads its recipients again at each occurrence (a recurring
  broadcast to a case type, a group, case owners or every mobile worker), and a sentence saying what that
  means: the counts above are today's; a case that starts matching joins from the next send, one that
  stops matching leaves.

Not anticipated: routing (NO_SUITABLE_GATEWAY, MESSAGE_TOO_LONG for a gateway's segment limit) and quiet
hours, which depend on the gateways and the clock at send time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from django.db.models import Model, QuerySet
from django.utils import timezone

from casemsg.cases.models import Case
from casemsg.contacts.status import ContactStatus, statuses
from casemsg.core import errors, wallclock
from casemsg.messaging import render, segments
from casemsg.messaging.pipeline import whatsapp as wa_rule
from casemsg.projects.models import Project
from casemsg.scheduling import contents, events, lifecycle, recipients, specs
from casemsg.scheduling.models import Broadcast
from casemsg.surveys import engine as survey_engine
from casemsg.surveys.models import Survey
from casemsg.workers.models import MobileWorker

CHUNK = 1000
DEFAULT_LIMIT = 10
MAX_LIMIT = 100

Contact = Case | MobileWorker
M = TypeVar("M", bound=Model)


@dataclass(frozen=True)
class FirstSend:
    """One recipient's first message: when (UTC, and on its own clock), in which language, what it says."""

    case_id: str | None
    mobile_worker_id: int | None
    name: str
    due_utc: datetime
    local_time: str  # ISO, due_utc on the recipient's clock (no offset: see utc_offset)
    time_zone: str
    language: str  # the translation used; "" for the untranslated text
    text: str
    subject: str = ""  # emails
    segments: int = 0  # SMS
    gateway: str | None = None  # SMS: the gateway it would use now (its route's, or the next while that one is down)
    whatsapp: str = ""  # WhatsApp: free_text (inside the window), template, or sms (the fallback)
    utc_offset: str = ""  # the zone's offset at due_utc ("-04:00"): which of a fall-back fold's two 01:30s


@dataclass(frozen=True)
class Preflight:
    channel: str
    recipients: int  # every recipient selected
    sendable: int  # those whose first message would go
    blocked: dict[str, int]  # catalogue code → recipients whose message would fail with it
    no_events: int  # those for whom the schedule has no event left
    segments: int  # SMS segments of the first message to every sendable recipient
    first_sends: list[FirstSend] = field(default_factory=list)
    at_each_send: bool = False  # the recipients are read again at each occurrence
    recipients_note: str = ""  # what that means, in a sentence
    whatsapp: dict[str, Any] | None = None  # WhatsApp: how many inside the window, by template, by SMS, not at all

    def as_dict(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "recipients": self.recipients,
            "sendable": self.sendable,
            "blocked": dict(self.blocked),
            "no_events": self.no_events,
            "segments": self.segments,
            "first_sends": [f.__dict__ for f in self.first_sends],
            "at_each_send": self.at_each_send,
            "recipients_note": self.recipients_note,
            "whatsapp": self.whatsapp,
        }


def preflight(project: Project, data: object, now: datetime | None = None, limit: int = DEFAULT_LIMIT) -> Preflight:
    """The pre-flight of a broadcast body (as `services.create_broadcast` takes it). Raises the
    InputError that creating the broadcast would raise; writes nothing."""
    now = now or timezone.now()
    return of_spec(project, specs.parse_broadcast(data, project, now), now, limit)


def _pages(qs: QuerySet[M]) -> Iterator[list[M]]:
    last = 0
    while True:
        page = list(qs.filter(pk__gt=last).order_by("pk")[:CHUNK])
        if page:
            yield page
        if len(page) < CHUNK:
            return
        last = page[-1].pk


def _has_placeholders(template: str) -> bool:
    return "{" in template.replace("{{", "").replace("}}", "")


@dataclass
class _Candidate:
    due: events.Due
    order: int
    contact: Contact
    zone: str
    template: str
    language: str
    chain: list[str]
    gateway: str | None = None
    how: str = ""  # WhatsApp (messaging.pipeline.whatsapp.decide)


class _Tally:
    def __init__(self, content: contents.Content, content_json: dict[str, Any], limit: int) -> None:
        self.content, self.content_json, self.limit = content, content_json, limit
        self.recipients = self.sendable = self.no_events = self.segments = 0
        self.blocked: dict[str, int] = {}
        self.first: list[_Candidate] = []
        self.by_language: dict[str, int] = {}  # segments of a placeholder-free text, per language
        self.whatsapp: wa_rule.Planner | None = None

    def block(self, code: str) -> None:
        self.blocked[code] = self.blocked.get(code, 0) + 1


def of_spec(project: Project, spec: specs.BroadcastSpec, now: datetime, limit: int = DEFAULT_LIMIT) -> Preflight:
    """The pre-flight of an already validated broadcast (see the module docstring)."""
    limit = max(0, min(limit, MAX_LIMIT))
    schedule = spec.schedule
    draft = Broadcast(  # never saved
        project=project, recipients=spec.recipients.as_json(), schedule=spec.schedule.as_json(), created_on=now
    )
    cases, workers = recipients.recipient_querysets(draft, now)
    content = _as_sent(spec.content)
    tally = _Tally(content, content.as_json(), limit)
    if content.channel == "whatsapp":  # the send path's rule, counted page by page (one query a page)
        tally.whatsapp = wa_rule.Planner(project.pk, content.whatsapp, now)
    by_zone: dict[str, events.Due | None] = {}

    def first_event(zone: str) -> events.Due | None:
        if zone not in by_zone:  # as lifecycle.start_broadcast computes it
            anchor = events.anchor_for(schedule, zone, now, {})
            frame = events.Frame(schedule, zone, anchor or now)
            by_zone[zone] = events.first_event(frame, 0, now - events.EPSILON) if anchor else None
        return by_zone[zone]

    pages: list[Iterator[Sequence[Contact]]] = []
    if cases is not None:
        pages.append(_pages(cases))
    if workers is not None:
        pages.append(_pages(workers))
    for source in pages:
        for page in source:
            _tally_page(project, spec, page, tally, first_event)
    return Preflight(
        channel=spec.content.channel,
        recipients=tally.recipients,
        sendable=tally.sendable,
        blocked=dict(sorted(tally.blocked.items(), key=lambda kv: (-kv[1], kv[0]))),
        no_events=tally.no_events,
        segments=tally.segments,
        first_sends=_first_sends(project, tally),
        at_each_send=lifecycle.reads_recipients_again(draft),
        recipients_note=_recipients_note(draft, spec),
        whatsapp=tally.whatsapp.reach.as_dict() if tally.whatsapp is not None else None,
    )


def _recipients_note(draft: Broadcast, spec: specs.BroadcastSpec) -> str:
    """What the counts mean for who will get the messages: now, or at each send."""
    if lifecycle.reads_recipients_again(draft):
        return (
            "Recipients are read again at each send: these counts are today's. A case that starts matching "
            "(a new case, a changed property, a group's new member) joins from the next send; one that stops "
            "matching leaves and gets nothing more."
        )
    if spec.schedule.kind == "now":
        return "Sent now to the recipients counted here."
    return "The recipients counted here, fixed when the broadcast is saved (a list of cases or mobile workers)."


def _tally_page(
    project: Project,
    spec: specs.BroadcastSpec,
    page: Sequence[Contact],
    tally: _Tally,
    first_event: Callable[[str], events.Due | None],
) -> None:
    for c in page:
        c.project = project  # statuses() reads it; spare a query per row
    sts = statuses(list(page))
    parents = _parents(project, page, tally.content)
    candidates: list[_Candidate] = []
    ways: list[tuple[str, str]] = []
    if tally.whatsapp is not None:  # (those with no event left are not asked)
        zones = [events.zone_for_recipient(events.contact_time_zone(c), project, spec.schedule) for c in page]
        ways = tally.whatsapp.page([st if first_event(z) else None for st, z in zip(sts, zones, strict=True)])
    for i, (contact, st) in enumerate(zip(page, sts, strict=True)):
        order = tally.recipients
        tally.recipients += 1
        zone = events.zone_for_recipient(events.contact_time_zone(contact), project, spec.schedule)
        due = first_event(zone)
        if due is None:
            tally.no_events += 1
            continue
        how = ""
        if ways:
            how, why = ways[i]
            if not how:
                tally.block(why)
                continue
        code = _problem(spec.content.channel, contact, st) if not how else None
        if code is not None:
            tally.block(code)
            continue
        chain = _chain(st, spec, project)
        template, language = render.choose_text(tally.content_json, chain)
        if template is None:
            tally.block(_no_text_code(tally.content_json, chain))
            continue
        if tally.content.channel == "sms":
            if _has_placeholders(template):
                text = _render(template, contact, parents)
                if text is None:
                    tally.block(errors.CANNOT_RENDER_MESSAGE)
                    continue
                if not text.strip():
                    tally.block(errors.MESSAGE_BLANK)
                    continue
                tally.segments += segments.count(text)
            else:
                if language not in tally.by_language:
                    tally.by_language[language] = segments.count(render.render(template, render.Context()))
                tally.segments += tally.by_language[language]
        tally.sendable += 1
        if tally.limit:
            candidates.append(_Candidate(due, order, contact, zone, template, language, chain, st.gateway, how))
    if candidates:
        tally.first = sorted(tally.first + candidates, key=lambda c: (c.due.utc, c.order))[: tally.limit]


def _as_sent(content: contents.Content) -> contents.Content:
    """Survey content as its first SMS (notes and first question, per survey language, sent as written);
    other content as it is."""
    if content.channel != "survey":
        return content
    survey = Survey.objects.select_related("current_version").filter(pk=content.survey_id or 0).first()
    version = survey.current_version if survey is not None else None
    texts = survey_engine.opening_texts(version) if version is not None else {}
    return contents.Content("sms", None, {lang: render.literal(text) for lang, text in texts.items()})


def _problem(channel: str, contact: Contact, st: ContactStatus) -> str | None:
    """Why this contact would get nothing, as the send (or the survey start) would say it."""
    if channel == "survey":
        if not (contact.name or "").strip():
            return errors.NO_CASE_NAME
        problem = st.two_way_sms.error
        if problem is not None and problem.code == errors.PHONE_NUMBER_IN_USE:
            return errors.NO_TWO_WAY_PHONE_NUMBER
        return problem.code if problem is not None else None
    problem = (st.email if channel == "email" else st.sms).error
    return problem.code if problem is not None else None


def _chain(st: ContactStatus, spec: specs.BroadcastSpec, project: Project) -> list[str]:
    """The pipeline's language chain: the contact's own language (only when it is one of the project's),
    the broadcast's default, the project's."""
    own = st.language_code if st.language_source == "contact" else ""
    return [own, spec.default_language, project.default_language]


def _no_text_code(content: dict[str, Any], chain: list[str]) -> str:
    """As the pipeline words it: a text that is there but empty, or no text for these languages."""
    if "text" in content or any(k in chain for k in content.get("translations") or {}):
        return errors.MESSAGE_BLANK
    return errors.NO_MESSAGE_FOR_LANGUAGE


def _parents(project: Project, page: Sequence[Contact], content: contents.Content) -> dict[str, Case]:
    """The parent cases of the page's cases, when a text reads {case.parent.…} (one query)."""
    texts = [
        content.text or "",
        content.subject,
        *content.translations.values(),
        *content.subject_translations.values(),
    ]
    if not any("parent" in t for t in texts):
        return {}
    ids = {c.parent_id for c in page if isinstance(c, Case) and c.parent_id}
    return {p.case_id: p for p in Case.objects.filter(project=project, case_id__in=ids)} if ids else {}


def _render(template: str, contact: Contact, parents: dict[str, Case]) -> str | None:
    case = contact if isinstance(contact, Case) else None
    parent = parents.get(case.parent_id) if case is not None and case.parent_id else None
    ctx = render.Context(case=case, parent=parent, recipient_name=contact.name or "")
    try:
        return render.render(template, ctx)
    except render.RenderError:
        return None


def _first_sends(project: Project, tally: _Tally) -> list[FirstSend]:
    kept = tally.first
    parents = _parents(project, [c.contact for c in kept], tally.content)
    out = []
    for c in kept:
        seen = wallclock.wall(c.due.utc, c.zone)  # from the instant: a gap's 02:30 fires at 03:00
        text = _render(c.template, c.contact, parents) or ""
        subject = ""
        if tally.content.channel == "email":
            subject = _render(tally.content.subject_for(c.chain), c.contact, parents) or ""
        out.append(
            FirstSend(
                case_id=c.contact.case_id if isinstance(c.contact, Case) else None,
                mobile_worker_id=c.contact.pk if isinstance(c.contact, MobileWorker) else None,
                name=c.contact.name or (c.contact.username if isinstance(c.contact, MobileWorker) else ""),
                due_utc=c.due.utc,
                local_time=seen.naive.isoformat(),
                time_zone=c.zone,
                utc_offset=seen.offset,
                language=c.language,
                text=text,
                subject=subject,
                segments=segments.count(text) if tally.content.channel == "sms" else 0,
                gateway=c.gateway if tally.content.channel == "sms" else None,
                whatsapp=c.how,
            )
        )
    return out
