"""Running SMS surveys: start a session, take each reply, remind, expire.

A session asks one survey version of one case on one (gateway, phone number); there is at most one open
session per (gateway, number), so the router knows where a reply belongs. Each step is one transaction:

* `start` checks the case (a name, a two-way number), closes the number's open session as *replaced*,
  and sends the first relevant question (notes before it go in the same SMS).
* `answer` reads a reply by the question's type (answers.py), checks the constraint with the answers so
  far (expressions.py), and sends the reason and the question again, or the next relevant question (what
  is computed on the way, and how a question is said: flow.py); after the last one it writes every
  `save_to` answer to the case in one update (cases.services.update_case, the normal write path, in the
  same transaction) — or creates the case a registration form describes — and closes the session.
  `#STOP` ends the session.
* `remind_and_expire` (the worker's ticker) re-sends the current question of sessions whose reminder is
  due, expires sessions past `expire_after` (saving the answers so far only with `submit_partial`), and
  ends the sessions of numbers that opted out meanwhile (a STOP seen by the router ends them at once).

A session's text is rendered here, in the session's language (the contact's, when the survey has it);
messages go through the one send pipeline, which applies the contact rules again at send time. A
session's state only changes through a conditional UPDATE on its last activity, so a reply racing a
reminder or another reply for the same number is applied to the state it saw, or retried on the new one.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from django.db import IntegrityError, transaction
from django.utils import timezone

from casemsg.cases import services as case_services
from casemsg.cases.models import Case
from casemsg.contacts import optouts
from casemsg.contacts.status import resolve_language, resolve_time_zone, statuses
from casemsg.core import bulk, errors
from casemsg.core.errors import InputError
from casemsg.gateways.models import Gateway
from casemsg.gateways.routing import Router
from casemsg.messaging import pipeline, render
from casemsg.messaging.models import Message, MessagingEvent
from casemsg.messaging.queries import used_send_keys
from casemsg.projects.models import Project
from casemsg.surveys import flow
from casemsg.surveys import texts as survey_texts
from casemsg.surveys import whatsapp as survey_whatsapp
from casemsg.surveys.answers import Parsed, error_message, parse_answer
from casemsg.surveys.definition import Question, parse_survey
from casemsg.surveys.definition import Survey as Definition
from casemsg.surveys.models import Survey, SurveySession, SurveyVersion

log = logging.getLogger(__name__)

STOP_WORD = "#STOP"  # ends the survey (and only the survey: STOP opts out of every message)
# The answer to #STOP, so that someone who meant STOP learns how to stop everything (its English default;
# the project's texts translate it: survey_texts.ended).
SURVEY_ENDED = survey_texts.ENDED.default
BATCH = 500

# Outcomes of `answer`, for the router's log and the tests.
ANSWERED, RETRY, COMPLETED, STOPPED = "survey_answer", "survey_retry", "survey_completed", "survey_stopped"


# --- definitions -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Parsed:
    survey: Definition
    index: dict[str, int]  # question name -> position
    plan: flow.Plan


# by (id, created_on): a version never changes, but an id can be used again once its row is deleted
_CACHE: dict[tuple[int, dt.datetime], _Parsed] = {}
_CACHE_SIZE = 256


def definition(version: SurveyVersion) -> Definition:
    return _parsed(version).survey


def _parsed(version: SurveyVersion) -> _Parsed:
    """A version's parsed survey (expressions compiled), kept per process: versions never change."""
    key = (version.pk, version.created_on)
    found = _CACHE.get(key)
    if found is None:
        survey = parse_survey(version.definition)
        found = _Parsed(survey, {q.name: i for i, q in enumerate(survey.questions)}, flow.plan(survey))
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.clear()
        _CACHE[key] = found
    return found


def _text(texts: dict[str, str], language: str, default: str) -> str:
    return texts.get(language) or texts.get(default) or next(iter(texts.values()), "")


def _env(
    case: Case,
    project: Project,
    now: dt.datetime,
    language: str,
    *,
    number: str = "",
    gateway: Gateway | None = None,
    started_on: dt.datetime | None = None,
    session_id: int | None = None,
) -> flow.Env:
    """What the survey reads besides its answers: today() and now() where the contact lives, the case."""
    zone = resolve_time_zone((case.properties or {}).get("time_zone", ""), project)[0]
    local = ZoneInfo(zone)
    return flow.Env(
        today=now.astimezone(local).date(),
        now=now.astimezone(local),
        zone=zone,
        language=language,
        case_id=case.case_id,
        case_name=case.name or "",
        case_properties=case.properties or {},
        phone_number=number,
        gateway=gateway.name if gateway is not None else "",
        started_on=started_on.astimezone(local) if started_on is not None else None,
        session_id=session_id,
        skip_word=project.survey_skip_word,
    )


def _session_env(session: SurveySession, now: dt.datetime) -> flow.Env:
    session.case.project = session.project
    parsed = _parsed(session.survey_version)
    env = _env(
        session.case,
        session.project,
        now,
        session.language,
        number=session.phone_number,
        gateway=session.gateway,
        started_on=session.started_on,
        session_id=session.pk,
    )
    prompts = survey_texts.prompts(session.project, parsed.survey.settings.prompts)
    return flow.with_lookups(env, parsed.survey, parsed.plan, prompts)


def _asking(parsed: _Parsed, question: Question, answers: dict[str, str], env: flow.Env) -> str:
    """The question as sent now (its choices filtered, its references rendered): flow.question_text."""
    return flow.question_text(parsed.survey, parsed.plan, flow.choices_for(question, answers, env), answers, env)


def current_question_text(session: SurveySession) -> str:
    """What the session waits for, as sent ("" once it has ended)."""
    if session.status != SurveySession.OPEN or not session.current_question:
        return ""
    parsed = _parsed(session.survey_version)
    position = parsed.index.get(session.current_question)
    if position is None:
        return ""
    env = _session_env(session, timezone.now())
    return _asking(parsed, parsed.survey.questions[position], dict(session.answers or {}), env)


def survey_language(survey: Definition, case: Case, project: Project) -> str:
    """The contact's language when the survey has it, else the project's, else the survey's default."""
    contact_language = resolve_language((case.properties or {}).get("language_code", ""), project)[0]
    for lang in (contact_language, project.default_language):
        if lang in survey.languages:
            return lang
    return survey.default_language


def _reminder_after(
    survey: Definition, reminders_sent: int, now: dt.datetime, expires_on: dt.datetime
) -> dt.datetime | None:
    intervals = survey.settings.reminder_intervals
    if reminders_sent >= len(intervals):
        return None
    due = now + dt.timedelta(minutes=intervals[reminders_sent])
    return due if due < expires_on else None


def _spec(
    case: Case,
    gateway: Gateway | None,
    text: str,
    language: str,
    send_key: str = "",
    kind: str = Message.NORMAL,
    interactive: dict[str, Any] | None = None,
    whatsapp: dict[str, Any] | None = None,
) -> pipeline.MessageSpec:
    escaped = render.literal(text)  # a survey's words are sent as written, braces included
    return pipeline.MessageSpec(
        case=case,
        text=escaped,
        translations={language: escaped} if language else None,
        default_language=language,
        kind=kind,
        # the opt-in question goes to a number that cannot be two-way yet: that is what it asks for
        requires_two_way=kind != Message.OPT_IN_REQUEST,
        gateway=gateway,
        send_key=send_key,
        interactive=interactive,
        whatsapp=whatsapp,
    )


def _send(
    session: SurveySession,
    case: Case,
    parts: list[str],
    interactive: dict[str, Any] | None = None,
    whatsapp: dict[str, Any] | None = None,
) -> None:
    text = "\n".join(p for p in parts if p.strip())
    if text:
        if interactive is not None:  # WhatsApp's buttons or list (surveys.whatsapp) say the whole text
            interactive = {**interactive, "body": text}
        # no eligibility check now (nobody waits for it): it runs at send time, batched with the others
        spec = _spec(case, session.gateway, text, session.language, interactive=interactive, whatsapp=whatsapp)
        pipeline.queue(session.project, [spec], session.event, precheck=False)


# --- start -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Reachable:
    """Where a case's survey conversation would run: its number and the gateway to use."""

    number: str
    gateway: Gateway | None  # None: routed at send time (the consent survey)


def _reachable(
    project: Project,
    cases: list[Case],
    router: Router,
    gateway: Gateway | None,
    requires_two_way: bool,
) -> list[_Reachable | InputError]:
    """For each case (its `project` set): where its survey would run, or why it cannot run (the
    InputError `start` raises). Statuses for all the cases in one go."""
    out: list[_Reachable | InputError] = []
    for case, st in zip(cases, statuses(cases), strict=True):
        if not (case.name or "").strip():
            out.append(InputError(errors.NO_CASE_NAME, f"Case {case.case_id} has no name; SMS surveys need it.", 422))
            continue
        problem = st.two_way_sms.error if requires_two_way else st.sms.error
        if problem is not None and not requires_two_way and problem.code == errors.NO_CONSENT:
            problem = None  # the consent survey is how a pending number consents
        if problem is not None:
            detail = problem.detail or errors.get(problem.code).description
            code = problem.code
            if code in (errors.NO_TWO_WAY_PHONE_NUMBER, errors.PHONE_NUMBER_IN_USE):
                code = errors.NO_TWO_WAY_PHONE_NUMBER
            out.append(
                InputError(
                    code,
                    f"Case {case.case_id} cannot answer an SMS survey: {detail}",
                    errors.get(code).status or 422,
                )
            )
            continue
        number = st.phone_number or ""
        chosen = gateway
        if chosen is None:
            region = st.phone_check.region if st.phone_check is not None else None
            choice = router.choose(project.pk, number, region, st.gateway or "")
            if choice.gateway is None:
                code = choice.error or errors.NO_SUITABLE_GATEWAY
                out.append(InputError(code, choice.detail, errors.get(code).status or 422))
                continue
            chosen = choice.gateway
        out.append(_Reachable(number, chosen))
    return out


def _new_session(
    project: Project,
    version: SurveyVersion,
    case: Case,
    where: _Reachable,
    event: MessagingEvent,
    now: dt.datetime,
) -> tuple[SurveySession, list[str], dict[str, Any] | None]:
    """An unsaved session at its first relevant question, the texts of its opening SMS, and that question's
    WhatsApp buttons or list (surveys.whatsapp; used only on WhatsApp inside the window)."""
    parsed = _parsed(version)
    survey_def = parsed.survey
    language = survey_language(survey_def, case, project)
    answers: dict[str, str] = {}
    env = _env(case, project, now, language, number=where.number, gateway=where.gateway, started_on=now)
    env = flow.with_lookups(env, survey_def, parsed.plan, survey_texts.prompts(project, survey_def.settings.prompts))
    step = flow.walk(survey_def, parsed.plan, answers, 0, env)
    first = step.question
    expires_on = now + dt.timedelta(minutes=survey_def.settings.expire_after)
    session = SurveySession(
        project=project,
        survey_version=version,
        case=case,
        gateway=where.gateway,
        phone_number=where.number,
        status=SurveySession.OPEN if first is not None else SurveySession.COMPLETED,
        current_question=first.name if first is not None else "",
        answers=answers,
        language=language,
        event=event,
        started_on=now,
        last_activity_on=now,
        next_reminder_on=_reminder_after(survey_def, 0, now, expires_on) if first is not None else None,
        expires_on=expires_on,
        completed_on=None if first is not None else now,
    )
    parts = list(step.notes)
    buttons = None
    if first is not None:
        parts.append(flow.question_text(survey_def, parsed.plan, first, answers, env))
        buttons = survey_whatsapp.interactive(survey_def, parsed.plan, first, answers, env.language, "")
    return session, parts, buttons


def opening_texts(version: SurveyVersion) -> dict[str, str]:
    """The first SMS of a session (notes and the first question), per survey language, as a case with no
    answers yet would get it: what a broadcast's pre-flight shows."""
    parsed = _parsed(version)
    out: dict[str, str] = {}
    now = timezone.now()
    for language in parsed.survey.languages:
        env = flow.with_lookups(flow.Env(today=now.date(), now=now, zone="UTC", language=language), parsed.survey,
                                parsed.plan)  # fmt: skip
        answers: dict[str, str] = {}
        step = flow.walk(parsed.survey, parsed.plan, answers, 0, env)
        parts = list(step.notes)
        if step.question is not None:
            parts.append(flow.question_text(parsed.survey, parsed.plan, step.question, answers, env))
        out[language] = "\n".join(p for p in parts if p.strip())
    return out


def start(
    project: Project,
    survey: Survey,
    case: Case,
    now: dt.datetime | None = None,
    *,
    gateway: Gateway | None = None,
    requires_two_way: bool = True,
) -> SurveySession:
    """Start `survey` (its current version) for `case` and send the first question.

    Refuses (InputError) a case without a name (NO_CASE_NAME) or without a two-way number
    (NO_TWO_WAY_PHONE_NUMBER; or the reason the number cannot be messaged at all, like PHONE_OPTED_OUT).
    `gateway`: the gateway to converse through (a keyword's: the one the message came in on); otherwise
    the one the number routes to. `requires_two_way=False` is for the consent survey to a number whose
    opt-in is pending (it has no two-way number yet). The number's open session is closed as replaced.
    """
    now = now or timezone.now()
    if case.project_id != project.pk:
        raise InputError(errors.CASE_NOT_FOUND, f"No case {case.case_id} in this project.", 404)
    version = survey.current_version
    if version is None or survey.project_id != project.pk:
        raise InputError(errors.SURVEY_NOT_FOUND, f"No survey {survey.pk} in this project.", 404)
    case.project = project
    where = _reachable(project, [case], Router({project.pk}), gateway, requires_two_way)[0]
    if isinstance(where, InputError):
        raise where
    if _busy_elsewhere(project, [(where.gateway, where.number)]):
        raise _busy(where.number)
    for attempt in range(2):
        try:
            with transaction.atomic():
                _close_open(where.number, where.gateway, SurveySession.REPLACED, "", now, project.pk)
                event = MessagingEvent.objects.create(
                    project=project,
                    source="survey",
                    source_id=str(survey.pk),
                    description=f"survey '{survey.name}' (version {version.number}) for case {case.case_id}",
                )
                session, parts, buttons = _new_session(project, version, case, where, event, now)
                session.save(force_insert=True)
                _send(session, case, parts, buttons, whatsapp=survey_whatsapp.opening(where.gateway))
            return session
        except IntegrityError:
            # another start for the same number committed between our close and insert: close it too
            if attempt:
                raise
    raise AssertionError("unreachable")


def _busy_elsewhere(project: Project, places: list[tuple[Gateway | None, str]]) -> set[tuple[int, str]]:
    """The (gateway id, number) places among these where another project's survey is open: a project never
    replaces another project's session (one open session per gateway and number)."""
    numbers = {n for _g, n in places}
    if not numbers:
        return set()
    rows = (
        SurveySession.objects.filter(phone_number__in=numbers, status=SurveySession.OPEN, gateway__isnull=False)
        .exclude(project=project)
        .values_list("gateway_id", "phone_number")
    )
    wanted = {(g.pk, n) for g, n in places if g is not None}
    return {(g, n) for g, n in rows if (g, n) in wanted}


def _busy(number: str) -> InputError:
    return InputError(
        errors.NUMBER_IN_ANOTHER_SURVEY, f"{number} is answering another project's survey on the same gateway.", 409
    )


def start_many(
    project: Project,
    survey: Survey,
    starts: list[tuple[int, str]],
    event: MessagingEvent,
    now: dt.datetime,
    opening: dict[str, Any] | None = None,
) -> dict[str, InputError | None]:
    """Start `survey` for many cases at once (a broadcast's or an alert's due occurrences): `starts` holds
    (case pk, send key); the first question of each goes out with that send key, so an occurrence starts
    its session once even if it is ever processed twice (a key already used starts nothing). All of it in
    the caller's transaction, in a few queries whatever the number of cases. Returns, per send key, None
    (started, or already started) or why the case cannot take the survey now. `opening`: the content's
    WhatsApp template for a start outside the 24-hour window (else the gateway's survey_template)."""
    keys = [key for _pk, key in starts]
    version = survey.current_version
    if version is None or survey.project_id != project.pk:
        missing = InputError(errors.SURVEY_NOT_FOUND, f"Survey {survey.pk} has no version to ask.", 404)
        return dict.fromkeys(keys, missing)
    used = used_send_keys(keys)
    todo = [(pk, key) for pk, key in starts if key not in used]
    found = Case.objects.in_bulk({pk for pk, _key in todo})
    outcome: dict[str, InputError | None] = dict.fromkeys(keys)
    for pk, key in todo:
        if pk not in found or found[pk].project_id != project.pk or found[pk].closed:
            outcome[key] = InputError(errors.CONTACT_IS_INACTIVE, "The case is closed or was deleted.", 422)
    todo = [(pk, key) for pk, key in todo if outcome[key] is None]
    cases = [found[pk] for pk, _key in todo]
    for case in cases:
        case.project = project
    places = _reachable(project, cases, Router({project.pk}), None, True)
    sessions: list[SurveySession] = []
    messages: list[pipeline.MessageSpec] = []
    taken: set[tuple[int, str]] = set()
    busy = _busy_elsewhere(project, [(w.gateway, w.number) for w in places if not isinstance(w, InputError)])
    for (_pk, key), case, where in zip(todo, cases, places, strict=True):
        if isinstance(where, InputError):
            outcome[key] = where
            continue
        if where.gateway is not None and (where.gateway.pk, where.number) in busy:
            outcome[key] = _busy(where.number)
            continue
        place = (where.gateway.pk if where.gateway is not None else 0, where.number)
        if place in taken:  # the same case due twice in one batch: once
            continue
        taken.add(place)
        session, parts, buttons = _new_session(project, version, case, where, event, now)
        sessions.append(session)
        text = "\n".join(p for p in parts if p.strip())
        first = opening or survey_whatsapp.opening(where.gateway)  # outside WhatsApp's window: a template first
        inter = {**buttons, "body": text} if buttons is not None else None  # inside it: the first question's
        messages.append(
            _spec(case, where.gateway, text, session.language, send_key=key, interactive=inter, whatsapp=first)
        )
    if not sessions:
        return outcome
    by_gateway: dict[int, set[str]] = defaultdict(set)
    for s in sessions:
        by_gateway[s.gateway_id or 0].add(s.phone_number)
    for gateway_id, numbers in by_gateway.items():
        SurveySession.objects.filter(
            gateway_id=gateway_id, phone_number__in=numbers, status=SurveySession.OPEN, project=project
        ).update(status=SurveySession.REPLACED, completed_on=now, next_reminder_on=None)
    SurveySession.objects.bulk_create(sessions)
    pipeline.queue(project, [m for m in messages if m.text], event, precheck=False)
    return outcome


def start_consent(
    project: Project, version: SurveyVersion, asked: list[tuple[Case, str, dt.datetime]], now: dt.datetime
) -> list[SurveySession]:
    """Start the built-in consent survey (`version`) for opt-in requests just recorded: `asked` holds (case,
    number, the request's expiry). No contact checks here: the consent service has made them, and the
    question is an opt-in request (kind OPT_IN_REQUEST: the one SMS a number without consent may get),
    routed at send time like any message; its replies reach the session through the pending request
    (the gateway stays unset, so the router never takes it for an ordinary survey). In the caller's
    transaction; the numbers' open sessions are closed as replaced."""
    if not asked:
        return []
    event = MessagingEvent.objects.create(project=project, source="system", description="opt-in request")
    # (the project's own sessions only: another project's survey on a shared number is not this one's)
    SurveySession.objects.filter(
        phone_number__in={number for _c, number, _e in asked}, status=SurveySession.OPEN, project=project
    ).update(status=SurveySession.REPLACED, completed_on=now, next_reminder_on=None)
    sessions, messages = [], []
    for case, number, expires_on in asked:
        case.project = project
        session, parts, _buttons = _new_session(project, version, case, _Reachable(number, None), event, now)
        session.expires_on, session.next_reminder_on = expires_on, None
        sessions.append(session)
        text = "\n".join(p for p in parts if p.strip())
        messages.append(_spec(case, None, text, session.language, kind=Message.OPT_IN_REQUEST))
    SurveySession.objects.bulk_create(sessions)
    pipeline.queue(project, messages, event)
    return sessions


def _close_open(
    number: str, gateway: Gateway | None, status: str, error: str, now: dt.datetime, project_id: int | None = None
) -> int:
    """Close the open session on (gateway, number), or with gateway None every open session on the number
    (only the project's, with `project_id`)."""
    qs = SurveySession.objects.filter(phone_number=number, status=SurveySession.OPEN)
    if gateway is not None:
        qs = qs.filter(gateway=gateway)
    if project_id is not None:
        qs = qs.filter(project_id=project_id)
    return qs.update(status=status, error=error, completed_on=now, next_reminder_on=None)


def end_for_number(number: str, error: str, now: dt.datetime | None = None, project_id: int | None = None) -> int:
    """End the open sessions on the number (it opted out: STOP) — every project's, or with `project_id` only
    that project's (a STOP through the project's own channel); returns how many."""
    return _close_open(number, None, SurveySession.CANCELLED, error, now or timezone.now(), project_id)


# --- lookups for the router --------------------------------------------------------------------------
def open_sessions(numbers: set[str]) -> dict[tuple[int | None, str], SurveySession]:
    """The open sessions on these numbers, by (gateway id, number): one query for a batch of messages."""
    if not numbers:
        return {}
    rows = SurveySession.objects.filter(phone_number__in=numbers, status=SurveySession.OPEN).select_related(
        "survey_version", "case", "project", "gateway", "event"
    )
    return {(s.gateway_id, s.phone_number): s for s in rows}


def open_session(gateway: Gateway, number: str) -> SurveySession | None:
    return (
        SurveySession.objects.filter(phone_number=number, gateway=gateway, status=SurveySession.OPEN)
        .select_related("survey_version", "case", "project", "gateway", "event")
        .first()
    )


# --- answers ---------------------------------------------------------------------------------------
def _reason(project: Project, survey: Definition, question: Question, parsed: Parsed, language: str) -> str:
    if parsed.error == "constraint_failed" and question.constraint_message:
        return _text(question.constraint_message, language, survey.default_language)
    messages = survey_texts.error_messages(project, survey.settings.error_messages)
    return error_message(parsed, language, messages, survey.default_language)


def _move(session: SurveySession, seen: dt.datetime, **changes: object) -> bool:
    """Apply changes to the session if nobody else moved it since `seen` (its last activity)."""
    moved = SurveySession.objects.filter(pk=session.pk, status=SurveySession.OPEN, last_activity_on=seen).update(
        **changes
    )
    if moved:
        for field, value in changes.items():
            setattr(session, field, value)
    return bool(moved)


def answer(session: SurveySession, text: str, now: dt.datetime | None = None) -> str | None:
    """Apply a reply to an open session; returns the outcome (ANSWERED, RETRY, COMPLETED, STOPPED), or None
    when the session has ended meanwhile (the reply is then not the survey's)."""
    now = now or timezone.now()
    for _attempt in range(3):
        with transaction.atomic():
            outcome = _answer(session, text, now)
        if outcome != "moved":
            return outcome
        # a reminder, an expiry or another reply changed the session first: read it again
        fresh = open_session(session.gateway, session.phone_number) if session.gateway is not None else None
        if fresh is None or fresh.pk != session.pk:
            return None
        session = fresh
    return None


def _answer(session: SurveySession, text: str, now: dt.datetime) -> str | None:
    parsed_def = _parsed(session.survey_version)
    survey = parsed_def.survey
    case, project, seen, lang = session.case, session.project, session.last_activity_on, session.language
    case.project = project
    if (text or "").strip().upper() == STOP_WORD:
        if not _move(session, seen, status=SurveySession.CANCELLED, completed_on=now, next_reminder_on=None):
            return "moved"
        _send(session, case, [survey_texts.ended(project, lang)])
        return STOPPED
    position = parsed_def.index.get(session.current_question)
    if position is None:  # (cannot happen: versions never change) end it rather than loop
        _move(session, seen, status=SurveySession.CANCELLED, completed_on=now, next_reminder_on=None)
        return None
    env = _session_env(session, now)
    so_far = dict(session.answers or {})
    question = flow.choices_for(survey.questions[position], so_far, env)
    value = flow.offered(survey, question, so_far, env) if flow.is_skip(survey, question, text, env) else None
    if value is not None:
        parsed = Parsed(True, value, "")  # a skip takes the value offered
    else:
        reply = "" if flow.is_skip_word(survey, text, env) else text  # (a date's "1" keeps only a value offered)
        parsed = parse_answer(question, reply, survey.settings.date_format, env.zone)
    if (
        parsed.ok
        and parsed.value
        and question.compiled_constraint is not None
        and not flow.holds(question.compiled_constraint, so_far, parsed.value, env, True)
    ):
        parsed = Parsed(False, "", "constraint_failed")
    if not parsed.ok:
        if not _move(
            session,
            seen,
            last_activity_on=now,
            reminders_sent=0,
            next_reminder_on=_reminder_after(survey, 0, now, session.expires_on),
        ):
            return "moved"
        own = {"required": flow.required_message, "constraint_failed": flow.constraint_message}.get(parsed.error)
        reason = own(survey, parsed_def.plan, question, so_far, lang) if own is not None else ""
        reason = reason or _reason(project, survey, question, parsed, lang)
        buttons = survey_whatsapp.interactive(survey, parsed_def.plan, question, so_far, env.language, "")
        _send(session, case, [reason, flow.question_text(survey, parsed_def.plan, question, so_far, env)], buttons)
        return RETRY
    answers = {**so_far, question.name: parsed.value}
    step = flow.walk(survey, parsed_def.plan, answers, position + 1, env)
    parts, following = step.notes, step.question
    if following is not None:
        if not _move(
            session,
            seen,
            answers=answers,
            current_question=following.name,
            last_activity_on=now,
            reminders_sent=0,
            next_reminder_on=_reminder_after(survey, 0, now, session.expires_on),
        ):
            return "moved"
        buttons = survey_whatsapp.interactive(survey, parsed_def.plan, following, answers, env.language, "")
        _send(session, case, [*parts, flow.question_text(survey, parsed_def.plan, following, answers, env)], buttons)
        return ANSWERED
    flow.recalculate(survey, parsed_def.plan, answers, len(survey.questions), env)
    flow.finish(survey, answers, env)
    if not _move(
        session,
        seen,
        answers=answers,
        current_question="",
        status=SurveySession.COMPLETED,
        last_activity_on=now,
        next_reminder_on=None,
        completed_on=now,
    ):
        return "moved"
    _save_answers(project, case, parsed_def, answers, env)
    _send(session, case, parts)
    return COMPLETED


def saves_contact_properties(session: SurveySession) -> bool:
    """Whether completing this session writes a contact property (`contact_phone_number`, …), which can
    move the phone registry: the router then reads every number afresh."""
    return any((q.save_to or "").startswith("contact_") for q in definition(session.survey_version).questions)


def _save_answers(project: Project, case: Case, parsed: _Parsed, answers: dict[str, str], env: flow.Env) -> bool:
    """Where the answers go (flow.outcome), through the cases' normal write path: every answered `save_to`
    question in one update of the case (and its new name, from an update form's entity label), or a new
    case (a registration form), a child of the case answering when the form says so."""
    result = flow.outcome(parsed.survey, parsed.plan, answers, env)
    if result.new_case is not None:
        new = result.new_case
        case_services.create_case(
            project,
            case_services.CaseChange(
                case_type=new.case_type,
                name=new.name[:255],
                owner_id=case.owner_id or None,
                parent_id=case.case_id if new.child_of_sender else None,
                properties=new.properties,
            ),
        )
        return True
    if not result.properties and result.name is None:
        return False
    change = case_services.CaseChange(properties=result.properties, name=result.name[:255] if result.name else None)
    case_services.update_case(project, case, change, consent_source="survey")
    return True


# --- the ticker --------------------------------------------------------------------------------------
@dataclass
class Swept:
    reminded: int = 0
    expired: int = 0
    opted_out: int = 0


def remind_and_expire(now: dt.datetime | None = None, batch: int = BATCH) -> Swept:
    """The worker ticker's survey beat: end the sessions of numbers that opted out, expire the sessions past
    their time, and re-send the current question of those whose reminder is due — in batches."""
    now = now or timezone.now()
    out = Swept()
    # (sessions of numbers opted out for their project: the installation's opt-outs and the project's own)
    out.opted_out = (
        SurveySession.objects.filter(status=SurveySession.OPEN)
        .filter(optouts.binding())
        .update(status=SurveySession.CANCELLED, error=errors.PHONE_OPTED_OUT, completed_on=now, next_reminder_on=None)
    )
    out.expired = _expire(now, batch)
    out.reminded = _remind(now, batch)
    return out


def _expire(now: dt.datetime, batch: int) -> int:
    total = 0
    while True:
        due = list(
            SurveySession.objects.filter(status=SurveySession.OPEN, expires_on__lte=now)
            .select_related("survey_version__survey", "case", "project", "gateway")
            .order_by("expires_on")[:batch]
        )
        if not due:
            return total
        partial = [s for s in due if definition(s.survey_version).settings.submit_partial and s.answers]
        partial_pks = {s.pk for s in partial}
        plain = [s.pk for s in due if s.pk not in partial_pks]
        closed = {"status": SurveySession.EXPIRED, "error": errors.SURVEY_EXPIRED, "completed_on": now}
        with transaction.atomic():
            total += SurveySession.objects.filter(pk__in=plain, status=SurveySession.OPEN).update(
                next_reminder_on=None, **closed
            )
            # the project's survey_expired text, when it wrote one, to the sessions this update expired
            plain_pks = set(plain)
            told = [s for s in due if s.pk in plain_pks and survey_texts.expiry_told(s)]
            if told:
                expired = set(
                    SurveySession.objects.filter(
                        pk__in=[s.pk for s in told], status=SurveySession.EXPIRED, completed_on=now
                    ).values_list("pk", flat=True)
                )
                _tell_expired([s for s in told if s.pk in expired])
        for s in partial:  # (rare) each its own case update, in its own transaction
            with transaction.atomic():
                if SurveySession.objects.filter(pk=s.pk, status=SurveySession.OPEN).update(
                    next_reminder_on=None, **closed
                ):
                    total += 1
                    s.case.project = s.project
                    _save_answers(s.project, s.case, _parsed(s.survey_version), s.answers, _session_env(s, now))
                    if survey_texts.expiry_told(s):
                        _tell_expired([s])


def _tell_expired(sessions: list[SurveySession]) -> None:
    """The project's survey_expired text to each expired session's contact, in the session's language, one
    send key per session (a second ticker never sends it twice); waits out quiet hours like a reminder."""
    by_project: dict[int, list[pipeline.MessageSpec]] = defaultdict(list)
    projects: dict[int, Project] = {}
    for s in sessions:
        text = survey_texts.expired(s.project, s.language)
        if text.strip():
            by_project[s.project_id].append(_spec(s.case, s.gateway, text, s.language, f"survey-expired:{s.pk}"))
            projects[s.project_id] = s.project
    for project_id, specs in by_project.items():
        project = projects[project_id]
        event = MessagingEvent.objects.create(project=project, source="survey", description="survey expiry")
        pipeline.queue(project, specs, event, precheck=False)


def _remind(now: dt.datetime, batch: int) -> int:
    total = 0
    while True:
        with transaction.atomic():
            # locked (PostgreSQL) until the new state is written: a reply to the same session waits, then
            # sees the new last activity and is applied to that state
            due = list(
                SurveySession.objects.select_for_update(skip_locked=True, of=("self",))
                .filter(status=SurveySession.OPEN, next_reminder_on__lte=now, expires_on__gt=now)
                .select_related("survey_version", "case", "project", "gateway")
                .order_by("next_reminder_on")[:batch]
            )
            if not due:
                return total
            by_project: dict[int, list[pipeline.MessageSpec]] = defaultdict(list)
            projects: dict[int, Project] = {}
            for s in due:
                survey = definition(s.survey_version)
                position = _parsed(s.survey_version).index.get(s.current_question)
                # A reminder is a scheduled occurrence: its send key (the state it is due from) makes it
                # unique, so two tickers never send it twice, and like a broadcast's it waits out the
                # project's quiet hours.
                key = f"survey-reminder:{s.pk}:{s.reminders_sent + 1}:{s.last_activity_on.timestamp():.6f}"
                s.reminders_sent += 1
                s.next_reminder_on = _reminder_after(survey, s.reminders_sent, now, s.expires_on)
                s.last_activity_on = now
                if position is None:
                    continue
                text = _asking(_parsed(s.survey_version), survey.questions[position], dict(s.answers or {}),
                               _session_env(s, now))  # fmt: skip
                by_project[s.project_id].append(_spec(s.case, s.gateway, text, s.language, key))
                projects[s.project_id] = s.project
            bulk.update_rows(due, ["reminders_sent", "next_reminder_on", "last_activity_on"])
            for project_id, specs in by_project.items():
                event = MessagingEvent.objects.create(
                    project=projects[project_id], source="survey", description="survey reminders"
                )
                pipeline.queue(projects[project_id], specs, event, precheck=False)
            total += len(due)
