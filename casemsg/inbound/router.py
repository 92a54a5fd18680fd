"""Inbound SMS: sender number → contact → handler.

Order of handling, for every gateway:
1. STOP words (whole message, one word) → opted out everywhere + one confirmation. Always first.
2. START words → opted back in + confirmation; YES also passes on (to a pending consent question).
3. HELP/INFO → the project's help text.
4. A pending opt-in request or verification on the number → its answer (Yes/1, No, the code).
5. An open survey session on (gateway, number) → the answer to its question (`#STOP` ends it); a STOP
   word (step 1) ends every open session on the number.
6. The project's keywords (first word), then its surveys' keywords.
7. Otherwise: logged; unknown senders get the project's optional reply.

Routing: an answer to a pending request belongs to the contact that was asked; anything else belongs to
the number's two-way owner (the registry), else to nobody ("unknown sender").
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from casemsg.cases.models import Case
from casemsg.consent import optout, verification, words
from casemsg.consent import services as consent
from casemsg.consent.models import ConsentRequest
from casemsg.contacts import registry
from casemsg.contacts.models import PhoneEntry
from casemsg.contacts.status import resolve_language
from casemsg.core import errors
from casemsg.gateways import cleaning
from casemsg.gateways.base import InboundSms
from casemsg.gateways.models import Gateway
from casemsg.inbound import keywords
from casemsg.inbound.models import Keyword
from casemsg.inbound.signals import inbound_received
from casemsg.messaging import pipeline, render
from casemsg.messaging.models import Message, MessagingEvent
from casemsg.projects.models import Project
from casemsg.surveys import consent as survey_consent
from casemsg.surveys import engine as surveys
from casemsg.surveys import services as survey_services
from casemsg.surveys.models import Survey, SurveySession
from casemsg.workers.models import MobileWorker

log = logging.getLogger(__name__)


# --- receiving (the webhook's fast part) ---------------------------------------------------------
def receive(
    gateway: Gateway, items: list[InboundSms], project: Project | None = None, raw: dict[str, Any] | None = None
) -> list[int]:
    """Store inbound messages (duplicates of a provider id are ignored) and queue their processing.

    Values are cleaned and bounded first (gateways.cleaning: no NUL, provider ids ≤ 128, a plausible
    time); a message whose sender is not a phone number is stored, with `raw` (what the provider sent),
    but never processed (INVALID_SENDER). Returns the ids of the new rows. Runs inside the webhook
    request: no routing here."""
    now = timezone.now()
    ids: list[int] = []
    queued: list[int] = []
    for item in items:
        clean = cleaning.clean_inbound(item, now)
        msg = Message(
            project_id=project.pk if project is not None else gateway.project_id,
            direction=Message.IN,
            channel="sms",
            to=clean.sender,
            text=clean.text,
            gateway=gateway,
            gateway_name=gateway.name,
            provider_id=clean.provider_id,
            status=Message.RECEIVED,
            error=clean.error,
            error_detail=clean.problem,
            created_on=clean.received_on,
            sent_on=now,
            next_attempt_on=None if clean.error else now,
            segments=0,
            raw=raw,
        )
        try:
            # one short transaction per message (a savepoint inside a caller's): the write lock of SQLite
            # is held for one INSERT only
            with transaction.atomic():
                msg.save()
        except IntegrityError:
            continue  # a provider retrying its webhook: already stored
        ids.append(msg.pk)
        if not clean.error:
            queued.append(msg.pk)
    if queued:
        transaction.on_commit(lambda: inbound_received.send(Message, ids=queued))
    return ids


# A claimed row not finished within this time belonged to a worker that died: it is processed again.
STUCK_AFTER = timedelta(minutes=5)


CLAIM_LIMIT = 200


def claim(ids: list[int] | None = None, limit: int = CLAIM_LIMIT, newer: bool = False) -> list[Message]:
    """Take received-but-unprocessed rows; a conditional update makes each processed once.

    `ids`: only these rows; with `newer`, also the rows that arrived after them and still wait, so that
    under load one job handles a whole batch (the other jobs then find their rows taken)."""
    token = uuid.uuid4().hex
    now = timezone.now()
    qs = Message.objects.filter(direction=Message.IN, next_attempt_on__isnull=False)
    if ids is not None:
        qs = qs.filter(pk__gte=min(ids)) if newer and ids else qs.filter(pk__in=ids)
    due = qs.order_by("next_attempt_on" if ids is None else "pk").values("pk")[:limit]
    # one conditional UPDATE (the pick is a subquery): a row goes to exactly one claimer
    if not Message.objects.filter(pk__in=due, next_attempt_on__isnull=False).update(
        next_attempt_on=None, claim=token, claimed_on=now
    ):
        return []
    return list(Message.objects.filter(claim=token).select_related("gateway", "project").order_by("pk"))


def has_waiting(older_than: timedelta) -> bool:
    """Whether an inbound row has waited longer than this for its job (uses the inbound-due index)."""
    return Message.objects.filter(
        direction=Message.IN, next_attempt_on__isnull=False, next_attempt_on__lt=timezone.now() - older_than
    ).exists()


def requeue_stuck(timeout: timedelta = STUCK_AFTER) -> int:
    """Inbound rows claimed by a worker that stopped before finishing (handling clears the claim) go
    back to the queue, so a STOP is never lost with a worker."""
    now = timezone.now()
    return (
        Message.objects.filter(direction=Message.IN, claimed_on__lt=now - timeout)
        .exclude(claim="")
        .update(claim="", next_attempt_on=now)
    )


def process_due(ids: list[int] | None = None, newer: bool = False) -> int:
    """The job body: handle the given inbound rows (with `newer`, and any that arrived after them), or
    (the ticker's sweep) every row still waiting. Returns how many were handled."""
    done = 0
    if ids is None:
        requeue_stuck()
    while True:
        msgs = claim(ids, newer=newer)
        if not msgs:
            return done
        lookups = Lookups(msgs)
        for m in msgs:
            try:
                handle(m, lookups)
            except Exception:  # noqa: BLE001 — one bad message must not stop the others
                log.exception("inbound message %s failed", m.pk)
                Message.objects.filter(pk=m.pk).update(error_detail="processing failed; see the worker log", claim="")
                lookups.changed = True
            done += 1
        if ids is not None and (not newer or len(msgs) < CLAIM_LIMIT):
            return done  # (rows that arrived meanwhile have jobs of their own)
        if ids is not None:
            ids = [msgs[-1].pk + 1]  # a full batch: then whatever arrived after it


class Lookups:
    """Who each sender is (the two-way owner, a pending question, an open survey session) and the projects'
    keywords, read for a whole batch in a few queries, outside any write transaction. Once a message of the
    batch has been handled for a number, that number is read live again; once a message changed a contact
    (a consent, a verification, a keyword updating a case, a survey saving a contact property), every
    number is."""

    def __init__(self, msgs: list[Message]):
        numbers = {m.to for m in msgs}
        self.owners = {
            e.phone_number: e
            for e in PhoneEntry.objects.filter(phone_number__in=numbers, two_way=True).select_related(
                "case", "worker", "project"
            )
        }
        self.pending: dict[str, ConsentRequest] = {}
        waiting = ConsentRequest.objects.filter(
            phone_number__in=numbers, status=ConsentRequest.PENDING, expires_on__gt=timezone.now()
        )
        pks = list(waiting.values_list("pk", flat=True))  # almost always none: a cheap query first
        if pks:
            for r in (
                ConsentRequest.objects.filter(pk__in=pks)
                .select_related("project", "case", "worker")
                .order_by("created_on", "pk")
            ):
                self.pending[r.phone_number] = r  # the newest wins
        self.sessions = surveys.open_sessions(numbers)  # (gateway id, number) -> open survey session
        self.keywords: dict[int, dict[str, Keyword]] = {}
        self.survey_keywords: dict[int, dict[str, Survey]] = {}
        self.seen: set[str] = set()
        self.changed = False

    def _live(self, number: str) -> bool:
        return self.changed or number in self.seen

    def owner(self, number: str) -> PhoneEntry | None:
        return registry.two_way_owner(number) if self._live(number) else self.owners.get(number)

    def pending_for(self, number: str) -> ConsentRequest | None:
        return consent.pending_for(number) if self._live(number) else self.pending.get(number)

    def session_for(self, gateway: Gateway | None, number: str) -> SurveySession | None:
        if gateway is None:
            return None
        return surveys.open_session(gateway, number) if self._live(number) else self.sessions.get((gateway.pk, number))

    def keyword(self, project: Project, word: str) -> Keyword | None:
        if project.pk not in self.keywords:
            self.keywords[project.pk] = {k.keyword: k for k in Keyword.objects.filter(project=project)}
        return self.keywords[project.pk].get(word)

    def survey_keyword(self, project: Project, word: str) -> Survey | None:
        if project.pk not in self.survey_keywords:
            self.survey_keywords[project.pk] = survey_services.keyword_surveys(project)
        return self.survey_keywords[project.pk].get(word)


# --- handling ------------------------------------------------------------------------------------
class _Reply:
    def __init__(self, msg: Message, project: Project | None, contact: Case | MobileWorker | None):
        self.msg, self.project, self.contact = msg, project, contact

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
        text, lang = (next(iter(translations.values()), ""), "")
        if self.project is not None:
            chain = [self.language(), self.project.default_language, "en"]
            chosen, lang = render.choose_text({"translations": translations, "text": text}, chain)
            text = chosen or ""
        if not text.strip():
            return
        case = self.contact if isinstance(self.contact, Case) else None
        worker = self.contact if self.contact is not None and case is None else None
        event = None
        if self.project is not None:
            event = MessagingEvent.objects.create(
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
        # no eligibility check now (nobody waits for it): it runs at send time, batched with the others,
        # and keeps the inbound transaction — the database's write lock on SQLite — short
        pipeline.queue(self.project, [spec], event, precheck=False)


def handle(msg: Message, lookups: Lookups | None = None) -> str:
    """Route and act on one inbound message; returns what was done (for the log and tests)."""
    number = msg.to
    gw = msg.gateway
    lookups = lookups or Lookups([msg])
    owner = lookups.owner(number)
    pending = lookups.pending_for(number)
    if gw is not None and gw.type == "sandbox" and msg.project_id is not None:
        # A simulated message stays within the project that simulated it: it reaches only that project's
        # contacts and questions, never another project's (see casemsg.inbound.sandbox).
        if owner is not None and owner.project_id != msg.project_id:
            # the project's own contact holding the number (one-way) stands in for the other project's owner
            owner = (
                PhoneEntry.objects.filter(project_id=msg.project_id, phone_number=number)
                .select_related("case", "worker", "project")
                .order_by("created_on", "pk")
                .first()
            )
        if pending is not None and pending.project_id != msg.project_id:
            pending = None
    session = lookups.session_for(gw, number)
    if session is not None and gw is not None and gw.type == "sandbox" and msg.project_id is not None:
        if session.project_id != msg.project_id:
            session = None
    contact: Case | MobileWorker | None
    project: Project | None
    if owner is not None:
        contact, project = owner.contact, owner.project
    elif pending is not None:
        # while a question waits for its answer, the number's replies route to the contact asked
        contact, project = pending.case or pending.worker, pending.project
    else:
        contact, project = None, msg.project

    def attribute(c: Case | MobileWorker | None, p: Project | None) -> None:
        msg.case = c if isinstance(c, Case) else None
        msg.worker = c if isinstance(c, MobileWorker) else None
        msg.project = p

    attribute(contact, project)
    if session is not None and (not isinstance(contact, Case) or session.case_id != contact.pk):
        session = None  # the number's two-way owner is someone else now: the survey is not theirs
    reply = _Reply(msg, project, contact)
    text = msg.text or ""
    word = words.single_word(text)
    outcome = "unhandled"

    # `#STOP` ends the running survey only (punctuation aside it reads as STOP, which opts out of everything)
    survey_stop = session is not None and text.strip().upper() == surveys.STOP_WORD
    with transaction.atomic():
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
            )
            reply.send(words.texts(project, "opt_out_confirmation"), kind=Message.COMPLIANCE)
            surveys.end_for_number(number, errors.PHONE_OPTED_OUT)
            outcome = "opt_out"
        else:
            passes_on = True
            if word and word in words.opt_in_words(project, gw):
                was_out = optout.is_opted_out(number)
                if was_out or word != "YES":
                    optout.opt_in(
                        number, project=project, case=msg.case, worker=msg.worker, source="keyword", answer=text
                    )
                    reply.send(words.texts(project, "opt_in_confirmation"), kind=Message.COMPLIANCE)
                    outcome = "opt_in"
                # YES also passes on to a pending consent question or a running survey
                passes_on = word == "YES"
            if passes_on and word in words.HELP_WORDS:
                reply.send(words.texts(project, "help_text"), kind=Message.COMPLIANCE)
                outcome, passes_on = "help", False
            if passes_on and pending is not None:
                outcome = _answer_pending(msg, pending, text, outcome) or outcome
                if outcome in ("consent", "refusal", "verified", "wrong_code"):
                    passes_on = False
            if passes_on and outcome == "unhandled" and session is not None:
                answered = surveys.answer(session, text)
                if answered is not None:
                    outcome, passes_on = answered, False
                    if answered == surveys.COMPLETED and surveys.saves_contact_properties(session):
                        lookups.changed = True  # the answers saved to the case may move the registry
            if passes_on and outcome == "unhandled" and project is not None:
                outcome = _keyword(project, contact, reply, text, lookups, gw) or outcome
            if outcome == "unhandled" and contact is None and project is not None and project.unknown_sender_reply:
                reply.send(words.texts(project, "unknown_sender_reply"), source="system")
                outcome = "unknown_sender"
        msg.error_detail = (
            ""
            if outcome != "unhandled"
            else ("No contact holds this number for two-way SMS." if contact is None else "No keyword matched.")
        )
        msg.claim = ""
        msg.save(update_fields=["case", "worker", "project", "error_detail", "claim"])
    lookups.seen.add(number)
    if outcome in ("consent", "verified"):
        lookups.changed = True  # the registry may have moved two-way ownership
    return outcome


def _answer_pending(msg: Message, pending: ConsentRequest, text: str, outcome: str) -> str | None:
    contact = pending.case or pending.worker
    reply = _Reply(msg, pending.project, contact)
    msg.case, msg.worker, msg.project = pending.case, pending.worker, pending.project
    if pending.kind == ConsentRequest.OPT_IN:
        result = survey_consent.answer(pending, text)
        if result == "consent":
            reply.send({"en": words.DEFAULT_TEXTS["consent_thanks"]}, kind=Message.COMPLIANCE, source="survey")
        return result
    verified = verification.answer_verification(pending, text)
    if verified is None:
        return None
    if verified:
        reply.send({"en": "Your phone number is verified."}, kind=Message.COMPLIANCE, source="system")
        return "verified"
    reply.send(
        {"en": "That code is not right; please check it and reply again."}, kind=Message.COMPLIANCE, source="system"
    )
    return "wrong_code"


def _keyword(
    project: Project,
    contact: Case | MobileWorker | None,
    reply: _Reply,
    text: str,
    lookups: Lookups,
    gateway: Gateway | None = None,
) -> str | None:
    """The project's keyword matching the first word, if any, does its action (keywords.ACTIONS); else a
    survey whose keyword it is starts for the sender."""
    word, rest = words.first_word(text)
    kw = lookups.keyword(project, word) if word else None
    if kw is None:
        survey = lookups.survey_keyword(project, word) if word else None
        if survey is None:
            return None
        return keywords.start_survey(project, contact, survey, gateway, reply.send)

    def send_reply(translations: dict[str, str]) -> None:
        # A keyword's reply is a template like every message: the pipeline renders {case.name} for the
        # sender's case at send time; {rest} is the sender's own words, taken literally.
        reply.send(translations, template_rest=rest)

    ctx = keywords.KeywordContext(
        keyword=kw, project=project, contact=contact, rest=rest, send_reply=send_reply, gateway=gateway
    )
    try:
        return keywords.ACTIONS[kw.action].handle(ctx)
    finally:
        if ctx.contacts_changed:
            lookups.changed = True
