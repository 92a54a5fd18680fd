"""The opt-in request as a built-in survey.

"Do you consent to receiving SMS messaging?" is a one-question survey that casemsg keeps per project
(`Survey.builtin == "consent"`, never listed or edited as the project's own): its question is the
project's `opt_in_question` text in each of its languages, and a new version is written whenever that
text changes, so a session keeps the words it asked with.

* `ask` records the requests and their ledger rows (`consent.services.record_requests`: who may be asked,
  and how often) and starts a session of the built-in survey for each, in one transaction. The question
  goes out as an opt-in request, the one SMS a number without consent may get.
* `answer` takes a reply that the router found for a pending opt-in request: Yes/Y/1 or No/N/0 (anything
  else is not an answer and goes on to keywords); the session records it and completes, and
  `consent.services.record_answer` writes the ledger row and, on consent, sets
  `contact_phone_number_is_verified` to 1 through the normal case update.
* Auto opt-in: the case after-change hook asks newly registered consent-region numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from casemsg.cases.models import Case
from casemsg.consent import services as consent
from casemsg.consent import texts as system_texts
from casemsg.consent import words
from casemsg.consent.models import ConsentRequest
from casemsg.core import actor, phone
from casemsg.core.errors import InputError
from casemsg.projects.models import Project
from casemsg.surveys import engine
from casemsg.surveys.definition import FORMAT, parse_survey, to_dict
from casemsg.surveys.models import Survey, SurveySession, SurveyVersion

BUILTIN = "consent"
QUESTION = "consent"


def definition(project: Project) -> dict[str, Any]:
    """The consent survey's definition for the project's current opt-in question texts."""
    # in each of the project's languages, what a contact of that language is asked (consent.texts' chain)
    labels = system_texts.translations(project, "opt_in_question")
    default = next((lang for lang in (project.default_language, "en") if lang in labels), next(iter(labels)))
    return to_dict(
        parse_survey(
            {
                "format": FORMAT,
                "name": "Opt-in request",
                "default_language": default,
                "languages": sorted(labels),
                "settings": {"expire_after": max(1, project.opt_in_expiry_hours * 60)},
                # a free-text question: the reply is read here (Yes/Y/1, No/N/0), and anything else is not
                # an answer, so it goes on to the project's keywords instead of being asked again
                "questions": [{"name": QUESTION, "type": "text", "label": labels, "required": True}],
            }
        )
    )


def current_version(project: Project) -> SurveyVersion:
    """The project's consent survey at its current definition (created, or given a new version, when the
    opt-in question's texts changed). In the caller's transaction."""
    wanted = definition(project)
    now = timezone.now()
    survey = Survey.objects.filter(project=project, builtin=BUILTIN).select_related("current_version").first()
    if survey is None:
        try:
            with transaction.atomic():
                survey = Survey.objects.create(
                    project=project, name="Opt-in request", builtin=BUILTIN, created_on=now, modified_on=now
                )
        except IntegrityError:  # created meanwhile by another request
            survey = Survey.objects.select_related("current_version").get(project=project, builtin=BUILTIN)
    version = survey.current_version
    if version is not None and version.definition == wanted:
        return version
    survey = Survey.objects.select_for_update().get(pk=survey.pk)
    latest = SurveyVersion.objects.filter(survey=survey).order_by("-number").first()
    if latest is not None and latest.definition == wanted:
        version = latest
    else:
        number = (latest.number if latest is not None else 0) + 1
        version = SurveyVersion.objects.create(survey=survey, number=number, definition=wanted, created_on=now)
    Survey.objects.filter(pk=survey.pk).update(current_version=version, modified_on=now)
    return version


def ask(
    project: Project, cases: Sequence[Case], source: str = "system", force: bool = False
) -> tuple[list[ConsentRequest], list[tuple[str, str, int]]]:
    """Send the opt-in request to many cases (auto opt-in, the API, a page, the CLI): the requests and
    their ledger rows, and a consent-survey session for each, in one transaction. Returns the requests
    and, for the cases skipped, (error code, sentence, HTTP status)."""
    with transaction.atomic():
        reqs, problems = consent.record_requests(project, cases, source=source, force=force)
        if reqs:
            version = current_version(project)
            by_pk = {c.pk: c for c in cases}
            asked = [(by_pk[r.case_id], r.phone_number, r.expires_on) for r in reqs if r.case_id in by_pk]
            engine.start_consent(project, version, asked, timezone.now())
    return reqs, problems


def request_opt_in(project: Project, case: Case, source: str | None = None, force: bool = False) -> ConsentRequest:
    """Send the opt-in request to one case (API, page, CLI: `source` defaults to whoever is acting).
    Refuses with a clear error when it cannot go."""
    case.project = project
    created, problems = ask(project, [case], source=source or actor.current().source, force=force)
    if problems:
        code, message, status = problems[0]
        raise InputError(code, message, status)
    return created[0]


def outcome_of(text: str) -> str | None:
    """ "consent", "refusal", or None when the reply does not answer the question."""
    word, _rest = words.first_word(text)
    if word in words.CONSENT_YES:
        return "consent"
    if word in words.CONSENT_NO:
        return "refusal"
    return None


def answer(req: ConsentRequest, text: str) -> str | None:
    """Apply a reply to a pending opt-in request. Returns "consent", "refusal", or None (not an answer)."""
    outcome = outcome_of(text)
    if outcome is None or req.case_id is None:
        return None
    with transaction.atomic():
        session = (
            SurveySession.objects.filter(
                case_id=req.case_id,
                phone_number=req.phone_number,
                status=SurveySession.OPEN,
                survey_version__survey__builtin=BUILTIN,
            )
            .select_related("survey_version", "case", "project")
            .order_by("-started_on", "-pk")
            .first()
        )
        if session is not None:
            engine.answer(session, text)
        consent.record_answer(req, outcome, text)
    return outcome


def auto_request(project: Project, cases: Sequence[Case]) -> None:
    """Ask every case whose consent-region number has no consent yet, unless asked within the interval."""
    candidates = []
    for c in cases:
        props = c.properties or {}
        if c.closed or str(props.get("contact_phone_number_is_verified", "")).strip() == "1":
            continue
        chk = phone.check(props.get("contact_phone_number"))
        if chk.ok and phone.needs_consent(chk, project.consent_regions):
            candidates.append(c)
    if candidates:
        ask(project, candidates, source="system")


def on_cases_changed(sender: object, *, project: Project, cases: list[Case], **_kw: object) -> None:
    """The case after-change hook: with the project's auto opt-in, a newly registered number that needs
    consent is asked."""
    if project.auto_opt_in:
        auto_request(project, cases)
