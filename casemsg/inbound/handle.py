"""Handling one inbound message: the one handler of every path (`handle`, and the batch in
`casemsg.inbound.router`, which decides only *when* its writes happen, never *what* they are).

Order of handling, for every gateway:
1. STOP words (whole message, one word) → opted out (installation-wide through an installation gateway, the
   project's own through a project's channel: `routing.authority`) + one confirmation. Always first.
2. START words → opted back in + confirmation; YES also passes on (to a pending consent question).
3. HELP/INFO → the project's help text.
4. A pending opt-in request or verification on the number → its answer (Yes/1, No, the code).
5. An open survey session on (gateway, number) → the answer to its question (`#STOP` ends it); a STOP
   word (step 1) ends every open session on the number.
6. The project's keywords (first word), then its surveys' keywords.
7. Otherwise: logged; unknown senders get the project's optional reply.

Routing (`casemsg.inbound.routing.Route`): an answer to a pending request belongs to the contact that was
asked; anything else belongs to the number's two-way owner (the registry), else to nobody ("unknown
sender"). Through a project's own gateway or its phone simulator, all of it within that project only.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import nullcontext

from django.db import transaction
from django.utils import timezone

from casemsg.cases.models import Case
from casemsg.consent import optout, texts, verification, words
from casemsg.consent.models import ConsentRequest
from casemsg.contacts.status import resolve_language
from casemsg.core import bulk, errors
from casemsg.gateways.models import Gateway
from casemsg.inbound import inbox
from casemsg.inbound.actions import start_survey
from casemsg.inbound.actions.base import KeywordContext
from casemsg.inbound.actions.registry import ACTIONS
from casemsg.inbound.routing import Lookups, Route
from casemsg.messaging import pipeline, render
from casemsg.messaging.models import Message, MessagingEvent
from casemsg.projects.models import Project
from casemsg.surveys import consent as survey_consent
from casemsg.surveys import engine as surveys
from casemsg.workers.models import MobileWorker

# What handling writes on the inbound row.
DONE_FIELDS = ["case", "worker", "project", "error_detail", "claim", "history"]


class Writes:
    """Where the handler's writes go. `eager`: at once, in the handler's transaction (a message that changes
    state: its replies are queued in order with what the change queues itself, e.g. a keyword's reply before
    the survey's first question). Otherwise collected, and written by `flush` for many messages together:
    the batch's messages that need nothing but a reply, in one transaction and a few statements."""

    def __init__(self, eager: bool):
        self.eager = eager
        self.replies: list[tuple[Project | None, pipeline.MessageSpec, MessagingEvent | None]] = []
        self.done: list[Message] = []

    def reply(self, project: Project | None, spec: pipeline.MessageSpec, event: MessagingEvent | None) -> None:
        if not self.eager:
            self.replies.append((project, spec, event))
            return
        if event is not None:
            event.save()
        # no eligibility check now (nobody waits for it): it runs at send time, batched with the others,
        # and keeps the inbound transaction — the database's write lock on SQLite — short
        pipeline.queue(project, [spec], event, precheck=False)

    def finish(self, msg: Message) -> None:
        if self.eager:
            msg.save(update_fields=DONE_FIELDS)
            inbox.add([msg])  # nothing handled it: it waits in the inbox, written with it
        else:
            self.done.append(msg)

    def flush(self) -> None:
        """Write what was collected: the replies' events, the replies (one insert), the handled rows and the
        inbox items of those nothing handled."""
        if not self.done and not self.replies:
            return
        with transaction.atomic():
            MessagingEvent.objects.bulk_create([e for _p, _s, e in self.replies if e is not None])
            pipeline.queue_each(self.replies)
            bulk.update_rows(self.done, DONE_FIELDS)
            inbox.add(self.done)
        self.replies, self.done = [], []


def changes_state(msg: Message, route: Route, lookups: Lookups) -> bool:
    """Whether handling this message may change more than the message itself and its replies: an opt-out or
    opt-in word, an answer to a pending question or an open survey, a keyword whose action is not a reply, a
    survey's keyword. Such a message is handled in a transaction of its own, its writes made at once."""
    if route.pending is not None or route.session is not None:
        return True
    project, gw = route.project, msg.gateway
    word = words.single_word(msg.text or "")
    if word and (word in words.opt_out_words(project, gw) or word in words.opt_in_words(project, gw)):
        return True
    if project is None or word in words.HELP_WORDS:
        return False
    first = words.first_word(msg.text or "")[0]
    if not first:
        return False
    kw = lookups.keyword(project, first)
    if kw is not None:
        return kw.action != "reply"
    return lookups.survey_keyword(project, first) is not None


def handle(msg: Message, lookups: Lookups | None = None) -> str:
    """Route and act on one inbound message, its writes made at once; returns what was done (for the log
    and tests)."""
    with pipeline.replying():  # what it queues answers a person: claimed before bulk sends
        lookups = lookups or Lookups([msg])
        return act(msg, Route(msg, lookups), lookups, Writes(eager=True))


def act(msg: Message, route: Route, lookups: Lookups, writes: Writes) -> str:
    """The one handler: what an inbound message does, in the order of this module's docstring."""
    number = msg.to
    gw = msg.gateway
    contact, project, pending, session = route.contact, route.project, route.pending, route.session
    route.attribute(msg)
    reply = _Reply(msg, project, contact, writes)
    text = msg.text or ""
    word = words.single_word(text)
    outcome = "unhandled"
    about: dict[str, str | int] = {}  # which keyword, survey session and question: kept with the outcome

    # `#STOP` ends the running survey only (punctuation aside it reads as STOP, which opts out of everything)
    survey_stop = session is not None and text.strip().upper() == surveys.STOP_WORD
    # (a message that only needs a reply writes nothing here: no transaction for it)
    with transaction.atomic() if writes.eager else nullcontext():
        if word and word in words.opt_out_words(project, gw) and not survey_stop:
            optout.opt_out(
                number,
                project=project,
                case=msg.case,
                worker=msg.worker,
                source="keyword",
                gateway_name=gw.name if gw else "",
                text_shown="",
                answer=text,
                scope=route.scope,
            )
            reply.send_text("opt_out_confirmation", kind=Message.COMPLIANCE)
            surveys.end_for_number(number, errors.PHONE_OPTED_OUT, project_id=route.scope.pk if route.scope else None)
            outcome = "opt_out"
        else:
            passes_on = True
            if word and word in words.opt_in_words(project, gw):
                was_out = optout.is_opted_out(number, route.scope)
                if was_out or word != "YES":
                    optout.opt_in(
                        number,
                        project=project,
                        case=msg.case,
                        worker=msg.worker,
                        source="keyword",
                        answer=text,
                        scope=route.scope,
                    )
                    if route.scope is not None and optout.is_opted_out(number):
                        # a project's channel never lifts the installation-wide opt-out: nothing to confirm
                        outcome = "opt_in_not_lifted"
                    else:
                        reply.send_text("opt_in_confirmation", kind=Message.COMPLIANCE)
                        outcome = "opt_in"
                # YES also passes on to a pending consent question or a running survey
                passes_on = word == "YES"
            if passes_on and word in words.HELP_WORDS:
                reply.send_text("help_text", kind=Message.COMPLIANCE)
                outcome, passes_on = "help", False
            if passes_on and pending is not None:
                outcome = _answer_pending(msg, pending, text, writes) or outcome
                if outcome in ("consent", "refusal", "verified", "wrong_code"):
                    passes_on = False
            if passes_on and outcome == "unhandled" and session is not None:
                asked = session.current_question  # (answering moves the session on)
                answered = surveys.answer(session, text)
                if answered is not None:
                    outcome, passes_on = answered, False
                    about = {"survey_session": session.pk, "question": asked}
                    if answered == surveys.COMPLETED and surveys.saves_contact_properties(session):
                        lookups.changed = True  # the answers saved to the case may move the registry
            if passes_on and outcome == "unhandled" and project is not None:
                outcome = _keyword(project, contact, reply, text, lookups, gw) or outcome
                if outcome != "unhandled":
                    about = {"keyword": words.first_word(text)[0]}
            if outcome == "unhandled" and contact is None and texts.enabled(project, "unknown_sender_reply"):
                reply.send_text("unknown_sender_reply", source="system")
                outcome = "unknown_sender"
            elif outcome == "unhandled" and contact is not None and texts.enabled(project, "catch_all_reply"):
                reply.send_text("catch_all_reply", source="system")  # (still unhandled: nothing took it)
        msg.error_detail = _unhandled_detail(outcome, contact)
        msg.claim = ""
        # what was done, for the phone simulator and the API (the row's history, like a send's)
        msg.history = [*(msg.history or []), {"at": timezone.now().isoformat(), "outcome": outcome, **about}]
        writes.finish(msg)
    lookups.seen.add(number)
    if outcome in ("consent", "verified"):
        lookups.changed = True  # the registry may have moved two-way ownership
    return outcome


class _Reply:
    """The replies to one inbound message: built here, written by `writes` (at once, or with the batch)."""

    def __init__(self, msg: Message, project: Project | None, contact: Case | MobileWorker | None, writes: Writes):
        self.msg, self.project, self.contact, self.writes = msg, project, contact, writes

    def language(self) -> str:
        if self.project is None or self.contact is None:
            return ""
        raw = (
            (self.contact.properties or {}).get("language_code", "")
            if isinstance(self.contact, Case)
            else self.contact.language_code
        )
        return resolve_language(raw, self.project)[0]

    def send(
        self,
        translations: dict[str, str],
        kind: str = Message.NORMAL,
        source: str = "keyword",
        template_rest: str | None = None,
    ) -> None:
        """Answer through the gateway the message came in on, in the contact's language.

        Compliance texts go out as written. With `template_rest` the text is a template (a keyword's
        reply): `{rest}` becomes those words (literally: braces in them are not placeholders) and the
        pipeline renders the rest, e.g. `{case.name}`, with an unknown value shown as `(?)`."""
        built = self.build(translations, kind, source, template_rest)
        if built is not None:
            self.writes.reply(self.project, *built)

    def send_text(
        self,
        key: str,
        values: Mapping[str, object] | None = None,
        kind: str = Message.NORMAL,
        source: str = "keyword",
    ) -> None:
        """Send one of the texts casemsg itself sends (casemsg.consent.texts), in the contact's language by
        the fallback chain (contact → project default → English), its placeholders filled from `values`,
        otherwise as written; nothing when it is empty."""
        text, lang = texts.pick(self.project, key, self.language(), **(values or {}))
        self.send({lang: text}, kind=kind, source=source)

    def build(
        self,
        translations: dict[str, str],
        kind: str = Message.NORMAL,
        source: str = "keyword",
        template_rest: str | None = None,
    ) -> tuple[pipeline.MessageSpec, MessagingEvent | None] | None:
        """The reply's message and its event (unsaved), or None when there is nothing to say."""
        text, lang = (next(iter(translations.values()), ""), "")
        if self.project is not None:
            chain = [self.language(), self.project.default_language, "en"]
            chosen, lang = render.choose_text({"translations": translations, "text": text}, chain)
            text = chosen or ""
        if not text.strip():
            return None
        case = self.contact if isinstance(self.contact, Case) else None
        worker = self.contact if self.contact is not None and case is None else None
        event = None
        if self.project is not None:
            event = MessagingEvent(
                project=self.project,
                source=source,
                source_id=str(self.msg.pk),
                description=f"reply to inbound {self.msg.pk}",
            )
        if template_rest is None:
            escaped = render.literal(text)
        else:
            escaped = text.replace("{rest}", render.literal(template_rest))
        spec = pipeline.MessageSpec(
            to=self.msg.to if case is None else "",
            case=case,
            worker=None,
            text=escaped,
            kind=kind,
            gateway=self.msg.gateway,
        )
        if lang:  # recorded on the message, like any translated text
            spec.translations, spec.default_language = {lang: escaped}, lang
        if worker is not None:
            spec.to = self.msg.to
        spec.simulated = self.msg.simulated
        return spec, event


def _unhandled_detail(outcome: str, contact: Case | MobileWorker | None) -> str:
    if outcome == "opt_in_not_lifted":
        return (
            "The number stays opted out installation-wide: a START through a project's own gateway or phone "
            "simulator lifts only that project's opt-out."
        )
    if outcome != "unhandled":
        return ""
    return "No contact holds this number for two-way SMS." if contact is None else "No keyword matched."


def _answer_pending(msg: Message, pending: ConsentRequest, text: str, writes: Writes) -> str | None:
    contact = pending.case or pending.worker
    reply = _Reply(msg, pending.project, contact, writes)
    msg.case, msg.worker, msg.project = pending.case, pending.worker, pending.project
    if pending.kind == ConsentRequest.OPT_IN:
        result = survey_consent.answer(pending, text)
        if result == "consent":
            reply.send_text("consent_thanks", kind=Message.COMPLIANCE, source="survey")
        return result
    verified = verification.answer_verification(pending, text)
    if verified is None:
        return None
    if verified:
        reply.send_text("number_verified", kind=Message.COMPLIANCE, source="system")
        return "verified"
    reply.send_text("wrong_code", kind=Message.COMPLIANCE, source="system")
    return "wrong_code"


def _keyword(
    project: Project,
    contact: Case | MobileWorker | None,
    reply: _Reply,
    text: str,
    lookups: Lookups,
    gateway: Gateway | None = None,
) -> str | None:
    """The project's keyword matching the first word, if any, does its action (actions.registry); else a
    survey whose keyword it is starts for the sender."""
    word, rest = words.first_word(text)
    kw = lookups.keyword(project, word) if word else None
    if kw is None:
        survey = lookups.survey_keyword(project, word) if word else None
        if survey is None:
            return None
        return start_survey.start(project, contact, survey, gateway, reply.send_text)

    def send_reply(translations: dict[str, str]) -> None:
        # A keyword's reply is a template like every message: the pipeline renders {case.name} for the
        # sender's case at send time; {rest} is the sender's own words, taken literally.
        reply.send(translations, template_rest=rest)

    ctx = KeywordContext(
        keyword=kw,
        project=project,
        contact=contact,
        rest=rest,
        send_reply=send_reply,
        send_text=reply.send_text,
        gateway=gateway,
    )
    try:
        return ACTIONS[kw.action].handle(ctx)
    finally:
        if ctx.contacts_changed:
            lookups.changed = True
