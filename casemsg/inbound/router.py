"""Inbound SMS: sender number → contact → handler.

Order of handling, for every gateway:
1. STOP words (whole message, one word) → opted out (installation-wide through an installation gateway, the
   project's own through a project's channel: `authority`) + one confirmation. Always first.
2. START words → opted back in + confirmation; YES also passes on (to a pending consent question).
3. HELP/INFO → the project's help text.
4. A pending opt-in request or verification on the number → its answer (Yes/1, No, the code).
5. An open survey session on (gateway, number) → the answer to its question (`#STOP` ends it); a STOP
   word (step 1) ends every open session on the number.
6. The project's keywords (first word), then its surveys' keywords.
7. Otherwise: logged; unknown senders get the project's optional reply.

Routing: an answer to a pending request belongs to the contact that was asked; anything else belongs to
the number's two-way owner (the registry), else to nobody ("unknown sender"). Through a project's own
gateway or its phone simulator, all of it within that project only (`authority`, docs/security.md).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from casemsg.cases.models import Case
from casemsg.consent import optout, verification, words
from casemsg.consent import services as consent
from casemsg.consent.models import ConsentRequest
from casemsg.contacts import registry
from casemsg.contacts.models import PhoneEntry
from casemsg.contacts.status import resolve_language
from casemsg.core import bulk, errors
from casemsg.gateways import cleaning
from casemsg.gateways.base import InboundSms
from casemsg.gateways.models import Gateway
from casemsg.inbound import keywords
from casemsg.inbound.models import Keyword
from casemsg.inbound.signals import inbound_received, inbound_stored
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
    gateway: Gateway,
    items: list[InboundSms],
    project: Project | None = None,
    raw: dict[str, Any] | None = None,
    simulated: bool = False,
) -> list[int]:
    """Store inbound messages (duplicates of a provider id are ignored) and queue their processing.

    Values are cleaned and bounded first (gateways.cleaning: no NUL, provider ids ≤ 128, a plausible
    time); a message whose sender is not a phone number is stored, with `raw` (what the provider sent),
    but never processed (INVALID_SENDER). Returns the ids of the new rows. Runs inside the webhook
    request: no routing here. `simulated` (the phone simulator, for `project`): the message speaks for
    that project only (`authority`)."""
    if simulated and project is None:
        raise ValueError("a simulated message belongs to the project that simulated it")
    now = timezone.now()
    ids: list[int] = []
    queued: list[int] = []
    for item in items:
        clean = cleaning.clean_inbound(item, now)
        pk = _insert_inbound(
            {
                "project_id": project.pk if project is not None else gateway.project_id,
                "direction": Message.IN,
                "channel": "sms",
                "to": clean.sender,
                "text": clean.text,
                "gateway_id": gateway.pk,
                "gateway_name": gateway.name,
                "provider_id": clean.provider_id,
                "status": Message.RECEIVED,
                "error": clean.error,
                "error_detail": clean.problem,
                "created_on": clean.received_on,
                "sent_on": now,
                "next_attempt_on": None if clean.error else now,
                "segments": 0,
                "raw": raw,
                "simulated": simulated,
            }
        )
        if pk is None:
            continue  # a provider retrying its webhook: already stored
        ids.append(pk)
        if not clean.error:
            queued.append(pk)
    if queued:
        transaction.on_commit(lambda: inbound_stored.send(Message, ids=queued))
    return ids


class _InboundInsert:
    """One prepared INSERT of an inbound row: Django's `Model.save()` builds and prepares the SQL of all
    35 columns for every webhook, which cost more CPU than the rest of the request; here the columns
    and the values every inbound row shares are prepared once per process."""

    def __init__(self) -> None:
        q = connection.ops.quote_name
        self.fields = [f for f in Message._meta.concrete_fields if not f.primary_key]
        columns = ", ".join(q(str(f.column)) for f in self.fields)
        self.sql = (
            f"INSERT INTO {q(Message._meta.db_table)} ({columns}) "
            f"VALUES ({', '.join(['%s'] * len(self.fields))}) RETURNING {q(str(Message._meta.pk.column))}"
        )
        self.defaults = {f.attname: f.get_db_prep_save(f.get_default(), connection) for f in self.fields}

    def values(self, row: dict[str, Any]) -> list[Any]:
        out = []
        for f in self.fields:
            if f.attname in row:
                out.append(f.get_db_prep_save(row[f.attname], connection))
            else:
                out.append(self.defaults[f.attname])
        return out


_inbound_insert: dict[str, _InboundInsert] = {}


def _insert_inbound(row: dict[str, Any]) -> int | None:
    """INSERT one inbound row; its id, or None when the provider's message id is stored already."""
    ins = _inbound_insert.get(connection.vendor)
    if ins is None:
        ins = _inbound_insert[connection.vendor] = _InboundInsert()
    params = ins.values(row)
    try:
        if connection.in_atomic_block:
            # inside a caller's transaction (the sandbox API): a savepoint, so a duplicate spoils nothing
            with transaction.atomic(), connection.cursor() as cur:
                cur.execute(ins.sql, params)
                return cur.fetchone()[0]
        # the webhook: one statement in autocommit, so SQLite's write lock is held for one INSERT only
        with connection.cursor() as cur:
            cur.execute(ins.sql, params)
            return cur.fetchone()[0]
    except IntegrityError:
        return None


# A claimed row not finished within this time belonged to a worker that died: it is processed again.
STUCK_AFTER = timedelta(minutes=5)


CLAIM_LIMIT = 200
# Batches one inbound job handles before it gives its thread back (to the reply jobs, which send what the
# batches queued); the job then queues itself again while rows wait.
BATCHES_PER_JOB = 5

_TABLE = Message._meta.db_table
# Literally the condition of the partial indexes message_inbound_waiting / message_inbound_due (a query
# must repeat it for the database to use them; a bound parameter would not do).
_WAITING = "direction = 'in' AND next_attempt_on IS NOT NULL"
# Claimers take turns on PostgreSQL (a transaction-scoped advisory lock, held for the claim's two short
# statements): each then sees every earlier claim committed, which the per-number check needs.
_CLAIM_LOCK = 0x6361736D_696E  # "casm" "in"


def _head(tbl: str) -> str:
    """SQL: the row of `tbl` is its number's next message: no older row of the number waits, and none is
    being handled (index message_inbound_number)."""
    to = connection.ops.quote_name("to")
    return (
        f"NOT EXISTS (SELECT 1 FROM {tbl} AS o WHERE o.direction = 'in' AND o.{to} = {tbl}.{to} "
        f"AND o.id <> {tbl}.id AND (o.claim <> '' OR (o.next_attempt_on IS NOT NULL AND o.id < {tbl}.id)))"
    )


def _filter(ids: list[int] | None, newer: bool) -> tuple[str, list]:
    if ids is None:
        return "", []
    if not ids:
        return " AND 1 = 0", []
    if newer:
        return " AND id >= %s", [min(ids)]
    return f" AND id IN ({', '.join(['%s'] * len(ids))})", list(ids)


def _candidates(cur, extra: str, params: list, limit: int) -> list[int]:
    """Up to `limit` waiting rows, taken round-robin across the projects that have any (each project's in
    arrival order, each number's next message only): a flood in one project fills the rest of a batch,
    never all of it, and a number sending hundreds of messages holds up only its own."""
    tbl = connection.ops.quote_name(_TABLE)
    # the projects with waiting rows: a loose index scan (one index probe per project, not a scan of the
    # backlog)
    cur.execute(
        f"WITH RECURSIVE p(pid) AS (SELECT MIN(project_id) FROM {tbl} WHERE {_WAITING}{extra} "
        f"UNION ALL SELECT (SELECT MIN(project_id) FROM {tbl} WHERE {_WAITING}{extra} AND project_id > p.pid) "
        "FROM p WHERE p.pid IS NOT NULL) SELECT pid FROM p WHERE pid IS NOT NULL",
        params + params,
    )
    projects: list[int | None] = [r[0] for r in cur.fetchall()][:limit]
    projects.append(None)  # installation-wide gateways' unknown senders
    parts, args = [], []
    for i, pid in enumerate(projects):
        cond = "project_id IS NULL" if pid is None else "project_id = %s"
        parts.append(
            f"SELECT id, {i} AS g FROM (SELECT id FROM {tbl} WHERE {_WAITING}{extra} AND {cond} "
            f"AND {_head(tbl)} ORDER BY id LIMIT %s) AS q{i}"
        )
        args += [*params, *([] if pid is None else [pid]), limit]
    cur.execute(" UNION ALL ".join(parts), args)
    by_group: dict[int, list[int]] = {}
    for pk, g in cur.fetchall():
        by_group.setdefault(g, []).append(pk)
    groups = [sorted(v) for v in by_group.values()]
    picked: list[int] = []
    for rank in range(limit):
        row = [g[rank] for g in groups if rank < len(g)]
        if not row:
            break
        picked += row
    return picked[:limit]


def claim(ids: list[int] | None = None, limit: int = CLAIM_LIMIT, newer: bool = False) -> list[Message]:
    """Take waiting (received, unprocessed) rows; a conditional update makes each processed once.

    Fair and in order: rows are picked round-robin across projects, and a row is taken only when no
    older row of its number still waits and none is being handled by another worker — so two messages
    from one number are handled in arrival order, never in parallel (the next one waits for the next
    batch). `ids`: only these rows; with `newer`, these and the rows that arrived after them."""
    token = uuid.uuid4().hex
    now = timezone.now()
    extra, params = _filter(ids, newer)
    tbl = connection.ops.quote_name(_TABLE)
    with transaction.atomic(), connection.cursor() as cur:
        if settings.IS_POSTGRES:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", [_CLAIM_LOCK])
        picked = _candidates(cur, extra, params, limit)
        if not picked:
            return []
        marks = ", ".join(["%s"] * len(picked))
        pick = f"id IN ({marks}) AND next_attempt_on IS NOT NULL"
        if settings.IS_POSTGRES:
            pick = f"id IN (SELECT id FROM {tbl} WHERE {pick} FOR UPDATE SKIP LOCKED)"
        # (checked again here: on PostgreSQL a row may have changed since the pick)
        cur.execute(
            f"UPDATE {tbl} SET next_attempt_on = NULL, claim = %s, claimed_on = %s WHERE {pick} AND {_head(tbl)}",
            [token, now, *picked],
        )
        if not cur.rowcount:
            return []
    # what routing never reads stays in the database (the payload, outbound-only columns, times)
    msgs = list(Message.objects.filter(claim=token).defer(*_NOT_READ).order_by("pk"))
    _attach(msgs)
    return msgs


_NOT_READ = ("raw", "content", "html", "subject", "wire_on", "delivered_on", "claimed_on", "next_attempt_on")


def _attach(msgs: list[Message]) -> None:
    """Each batch's projects and gateways, loaded once (a project row is wide: a dozen JSON settings)."""
    projects = Project.objects.in_bulk({m.project_id for m in msgs if m.project_id})
    gateways = Gateway.objects.in_bulk({m.gateway_id for m in msgs if m.gateway_id})
    for m in msgs:
        m.project = projects.get(m.project_id) if m.project_id else None
        m.gateway = gateways.get(m.gateway_id) if m.gateway_id else None


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


def process_due(
    ids: list[int] | None = None, newer: bool = False, max_batches: int | None = None, sweep: bool = True
) -> int:
    """The job body: handle the given inbound rows (with `newer`, and any that arrived after them), or
    every row waiting, batch after batch (at most `max_batches`); without ids (and with `sweep`), rows
    of a worker that died go back to the queue first. Returns how many were handled."""
    done = 0
    if ids is None and sweep:
        requeue_stuck()
    batches = 0
    while max_batches is None or batches < max_batches:
        msgs = claim(ids, newer=newer)
        if not msgs:
            break
        process_batch(msgs)
        done += len(msgs)
        batches += 1
    return done


def process_batch(msgs: list[Message]) -> None:
    """Handle claimed messages (at most one per number) in arrival order, set-wise: who each sender is,
    pending questions, open sessions and keywords are read for the whole batch; the messages that need
    nothing more than a reply (a reply keyword, HELP, an unknown sender, no match) are finished together,
    their replies queued in one insert. A message that changes state (STOP, START, a consent or
    verification answer, a survey answer, another keyword action) goes through `handle` on its own, in
    its place in the order; once one changed a contact, the rest of the batch is read again."""
    with pipeline.replying():  # everything queued here answers a person: claimed before bulk sends
        lookups = Lookups(msgs)
        simple: list[_Simple] = []
        for i, m in enumerate(msgs):
            plan = _plan(m, lookups)
            if plan is not None:
                simple.append(plan)
                continue
            _finish_simple(simple, lookups)
            simple = []
            try:
                handle(m, lookups)
            except Exception:  # noqa: BLE001 — one bad message must not stop the others
                log.exception("inbound message %s failed", m.pk)
                Message.objects.filter(pk=m.pk).update(error_detail="processing failed; see the worker log", claim="")
                lookups.changed = True
            if lookups.changed:
                lookups = Lookups(msgs[i + 1 :])  # read the rest again, after the change
        _finish_simple(simple, lookups)
    ids = [m.pk for m in msgs]
    transaction.on_commit(lambda: inbound_received.send(Message, ids=ids))


class Lookups:
    """Who each sender is (the two-way owner, a pending question, an open survey session) and the projects'
    keywords, read for a whole batch in a few queries, outside any write transaction. Once a message of the
    batch has been handled for a number, that number is read live again; once a message changed a contact
    (a consent, a verification, a keyword updating a case, a survey saving a contact property), every
    number is."""

    def __init__(self, msgs: list[Message]):
        numbers = {m.to for m in msgs}
        entries = list(
            PhoneEntry.objects.filter(phone_number__in=numbers, two_way=True).select_related("case", "worker")
        )
        # one Project object per project (the batch's own where loaded): a project row is wide
        projects = {
            m.project_id: m.project for m in msgs if m.project_id and Message.project.is_cached(m) and m.project
        }
        missing = {e.project_id for e in entries} - set(projects)
        projects.update(Project.objects.in_bulk(missing) if missing else {})
        for e in entries:
            e.project = projects[e.project_id]
        self.owners = {e.phone_number: e for e in entries}
        self.pending: dict[tuple[str, int | None], ConsentRequest] = {}  # (number, None or a project) → newest
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
                self.pending[(r.phone_number, None)] = r  # the newest wins
                self.pending[(r.phone_number, r.project_id)] = r
        self.sessions = surveys.open_sessions(numbers)  # (gateway id, number) -> open survey session
        self.keywords: dict[int, dict[str, Keyword]] = {}
        self.survey_keywords: dict[int, dict[str, Survey]] = {}
        self.seen: set[str] = set()
        self.changed = False

    def _live(self, number: str) -> bool:
        return self.changed or number in self.seen

    def owner(self, number: str) -> PhoneEntry | None:
        return registry.two_way_owner(number) if self._live(number) else self.owners.get(number)

    def pending_for(self, number: str, project_id: int | None = None) -> ConsentRequest | None:
        """The newest pending question on the number (only the project's, with `project_id`)."""
        if self._live(number):
            return consent.pending_for(number, project_id)
        return self.pending.get((number, project_id))

    def stand_in(self, project_id: int, number: str) -> PhoneEntry | None:
        """The project's own verified contact holding the number, oldest first: who a message through the
        project's own channel is from when another project's contact owns the number for two-way."""
        return (
            PhoneEntry.objects.filter(project_id=project_id, phone_number=number, verified=True)
            .select_related("case", "worker", "project")
            .order_by("-two_way", "verified_on", "created_on", "pk")
            .first()
        )

    def session_for(self, gateway: Gateway | None, number: str) -> SurveySession | None:
        if gateway is None:
            return None
        return surveys.open_session(gateway, number) if self._live(number) else self.sessions.get((gateway.pk, number))

    def keyword(self, project: Project, word: str) -> Keyword | None:
        if project.pk not in self.keywords:
            self.keywords[project.pk] = {k.keyword: k for k in Keyword.objects.filter(project=project)}
        return self.keywords[project.pk].get(word)

    def any_keywords(self, project: Project) -> bool:
        """Whether the project has keywords or keyword surveys (most messages of a batch need neither)."""
        self.keyword(project, "")
        return bool(self.keywords[project.pk]) or bool(self.survey_keywords_of(project))

    def survey_keywords_of(self, project: Project) -> dict[str, Survey]:
        if project.pk not in self.survey_keywords:
            self.survey_keywords[project.pk] = survey_services.keyword_surveys(project)
        return self.survey_keywords[project.pk]

    def survey_keyword(self, project: Project, word: str) -> Survey | None:
        return self.survey_keywords_of(project).get(word)


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
        built = self.build(translations, kind, source, template_rest)
        if built is None:
            return
        spec, event = built
        if event is not None:
            event.save()
        # no eligibility check now (nobody waits for it): it runs at send time, batched with the others,
        # and keeps the inbound transaction — the database's write lock on SQLite — short
        pipeline.queue(self.project, [spec], event, precheck=False)

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


def authority(msg: Message) -> int | None:
    """Whose word an inbound message carries (docs/security.md, "Authority follows who owns the channel"):
    None for an installation gateway's (staff-configured: it speaks for the installation), else the project
    whose own gateway, or phone simulator, it came through (it speaks for that project only). Fixed when the
    message is stored: a simulated message keeps the simulating project, a real one its gateway's owner."""
    if msg.simulated:
        return msg.project_id
    if msg.gateway_id is not None and msg.gateway is not None:
        return msg.gateway.project_id
    return msg.project_id  # the gateway was deleted since: as stored (its project, or none)


class _Route:
    """Who an inbound message is from, and what waits for its answer: the number's two-way owner (else the
    contact a pending question asked), the pending opt-in request or verification, the open survey
    session. The one routing of both paths (`handle` and the batch's simple messages).

    Through a project's own channel (its gateway, its simulator) everything is looked up within that project
    only: its own contact stands in for another project's two-way owner, and another project's pending
    questions and survey sessions are not seen."""

    def __init__(self, msg: Message, lookups: Lookups):
        number = msg.to
        gw = msg.gateway
        scope = authority(msg)
        owner = lookups.owner(number)
        pending = lookups.pending_for(number, scope)
        session = lookups.session_for(gw, number)
        if scope is not None:
            if owner is not None and owner.project_id != scope:
                owner = lookups.stand_in(scope, number)
            if session is not None and session.project_id != scope:
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
        if session is not None and (not isinstance(contact, Case) or session.case_id != contact.pk):
            session = None  # the number's two-way owner is someone else now: the survey is not theirs
        self.contact, self.project, self.pending, self.session = contact, project, pending, session
        # the project the message speaks for (None: the installation); its opt-out words act there only
        self.scope: Project | None = project if scope is not None else None

    def attribute(self, msg: Message) -> None:
        c = self.contact
        msg.case = c if isinstance(c, Case) else None
        msg.worker = c if isinstance(c, MobileWorker) else None
        msg.project = self.project


def handle(msg: Message, lookups: Lookups | None = None) -> str:
    """Route and act on one inbound message; returns what was done (for the log and tests)."""
    with pipeline.replying():  # what it queues answers a person: claimed before bulk sends
        return _handle(msg, lookups or Lookups([msg]))


def _handle(msg: Message, lookups: Lookups) -> str:
    number = msg.to
    gw = msg.gateway
    route = _Route(msg, lookups)
    contact, project, pending, session = route.contact, route.project, route.pending, route.session
    route.attribute(msg)
    reply = _Reply(msg, project, contact)
    text = msg.text or ""
    word = words.single_word(text)
    outcome = "unhandled"
    about: dict[str, str | int] = {}  # which keyword, survey session and question: kept with the outcome

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
                scope=route.scope,
            )
            reply.send(words.texts(project, "opt_out_confirmation"), kind=Message.COMPLIANCE)
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
            if outcome == "unhandled" and contact is None and project is not None and project.unknown_sender_reply:
                reply.send(words.texts(project, "unknown_sender_reply"), source="system")
                outcome = "unknown_sender"
        msg.error_detail = _unhandled_detail(outcome, contact)
        msg.claim = ""
        # what was done, for the phone simulator and the API (the row's history, like a send's)
        msg.history = [*(msg.history or []), {"at": timezone.now().isoformat(), "outcome": outcome, **about}]
        msg.save(update_fields=["case", "worker", "project", "error_detail", "claim", "history"])
    lookups.seen.add(number)
    if outcome in ("consent", "verified"):
        lookups.changed = True  # the registry may have moved two-way ownership
    return outcome


# --- the batch's simple messages ---------------------------------------------------------------------
@dataclass
class _Simple:
    """A message that needs nothing but a reply (or nothing at all), decided; written with its batch."""

    msg: Message
    route: _Route
    outcome: str
    about: dict[str, str | int] = field(default_factory=dict)
    replies: list[tuple[pipeline.MessageSpec, MessagingEvent | None]] = field(default_factory=list)


def _plan(msg: Message, lookups: Lookups) -> _Simple | None:
    """What `handle` would do with this message, when that is only a reply: HELP, a reply keyword, an
    unknown sender, nothing matched. None when it needs `handle` (STOP and START words, an answer to a
    pending question or an open survey, a keyword of another action, a survey's keyword)."""
    route = _Route(msg, lookups)
    if route.pending is not None or route.session is not None:
        return None
    project, gw = route.project, msg.gateway
    text = msg.text or ""
    word = words.single_word(text)
    if word and (word in words.opt_out_words(project, gw) or word in words.opt_in_words(project, gw)):
        return None
    reply = _Reply(msg, project, route.contact)
    plan = _Simple(msg, route, "unhandled")

    def say(built: tuple[pipeline.MessageSpec, MessagingEvent | None] | None) -> None:
        if built is not None:
            plan.replies.append(built)

    if word in words.HELP_WORDS:
        say(reply.build(words.texts(project, "help_text"), kind=Message.COMPLIANCE))
        plan.outcome = "help"
        return plan
    if project is not None:
        first, rest = words.first_word(text)
        kw = lookups.keyword(project, first) if first else None
        if kw is not None:
            if kw.action != "reply":
                return None
            if kw.reply:  # (keywords.ACTIONS["reply"]: the keyword's reply, its {rest} the sender's words)
                say(reply.build(kw.reply, template_rest=rest))
            plan.outcome, plan.about = f"keyword:{kw.keyword}", {"keyword": first}
            return plan
        if first and lookups.survey_keyword(project, first) is not None:
            return None
        if route.contact is None and project.unknown_sender_reply:
            say(reply.build(words.texts(project, "unknown_sender_reply"), source="system"))
            plan.outcome = "unknown_sender"
    return plan


def _finish_simple(plans: list[_Simple], lookups: Lookups) -> None:
    """Write decided messages and queue their replies: one transaction, a few statements for them all."""
    if not plans:
        return
    try:
        with transaction.atomic():
            events = [e for p in plans for _s, e in p.replies if e is not None]
            MessagingEvent.objects.bulk_create(events)
            pipeline.queue_each([(p.route.project, spec, e) for p in plans for spec, e in p.replies])
            now = timezone.now().isoformat()
            for p in plans:
                m = p.msg
                p.route.attribute(m)
                m.error_detail = _unhandled_detail(p.outcome, p.route.contact)
                m.claim = ""
                m.history = [*(m.history or []), {"at": now, "outcome": p.outcome, **p.about}]
            bulk.update_rows([p.msg for p in plans], ["case", "worker", "project", "error_detail", "claim", "history"])
    except Exception:  # noqa: BLE001 — then each message on its own, so one bad message fails alone
        log.exception("a batch of %s inbound messages failed; handling them one by one", len(plans))
        for p in plans:
            try:
                handle(p.msg, lookups)
            except Exception:  # noqa: BLE001
                log.exception("inbound message %s failed", p.msg.pk)
                Message.objects.filter(pk=p.msg.pk).update(
                    error_detail="processing failed; see the worker log", claim=""
                )
        return
    lookups.seen.update(p.msg.to for p in plans)


def _unhandled_detail(outcome: str, contact: Case | MobileWorker | None) -> str:
    if outcome == "opt_in_not_lifted":
        return (
            "The number stays opted out installation-wide: a START through a project's own gateway or phone "
            "simulator lifts only that project's opt-out."
        )
    if outcome != "unhandled":
        return ""
    return "No contact holds this number for two-way SMS." if contact is None else "No keyword matched."


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
