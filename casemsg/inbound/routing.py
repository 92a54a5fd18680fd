"""Who an inbound message is from and what waits for its answer, read for a whole batch at once
(`Lookups`), and the one routing rule (`Route`): authority follows who owns the channel."""

from __future__ import annotations

from django.utils import timezone

from casemsg.cases.models import Case
from casemsg.consent import services as consent
from casemsg.consent.models import ConsentRequest
from casemsg.contacts import registry
from casemsg.contacts.models import PhoneEntry
from casemsg.gateways.models import Gateway
from casemsg.inbound.models import Keyword
from casemsg.messaging.models import Message
from casemsg.projects.models import Project
from casemsg.surveys import engine as surveys
from casemsg.surveys import services as survey_services
from casemsg.surveys.models import Survey, SurveySession
from casemsg.workers.models import MobileWorker


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


class Route:
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
