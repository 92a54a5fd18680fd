"""Reading broadcasts and conditional alerts: the lists, the details and the sends that the API
(`casemsg/api/scheduling.py`), the pages (`casemsg/web/views/scheduling.py`) and `casemsg broadcasts`
show, and one case's coming sends (`schedule_for_case`). The filters, the order and the counts live only
here, in a fixed number of queries per page of broadcasts or alerts (never one per row)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Count, Exists, Min, OuterRef, Q, QuerySet
from django.db.models.fields.json import KeyTextTransform
from django.utils import timezone

from casemsg.cases.models import Case
from casemsg.contacts.status import resolve_language
from casemsg.core import errors, wallclock
from casemsg.core.errors import InputError
from casemsg.groups import queries as group_queries
from casemsg.groups.models import Group
from casemsg.messaging import queries as message_queries
from casemsg.messaging import render
from casemsg.messaging.models import Message
from casemsg.projects.models import Project
from casemsg.scheduling import contents, events, lifecycle, recipients, rules, runner
from casemsg.scheduling.events import Owner
from casemsg.scheduling.models import Broadcast, ConditionalAlert, ScheduleInstance
from casemsg.surveys import engine as survey_engine
from casemsg.surveys.models import Survey

BROADCAST_STATUSES = (Broadcast.ACTIVE, Broadcast.PAUSED, Broadcast.CANCELLED, Broadcast.DONE)
ALERT_STATUSES = (ConditionalAlert.ACTIVE, ConditionalAlert.PAUSED)


def _status(value: str | None, allowed: Sequence[str]) -> str | None:
    if value and value not in allowed:
        raise InputError(errors.VALIDATION_ERROR, f"status must be one of {', '.join(allowed)}.")
    return value or None


def broadcasts(project: Project, status: str | None = None) -> QuerySet[Broadcast]:
    """The project's broadcasts, newest first; `status` (active, paused, cancelled, done) filters."""
    qs = Broadcast.objects.filter(project=project)
    if _status(status, BROADCAST_STATUSES):
        qs = qs.filter(status=status)
    return qs.order_by("-created_on", "-pk")


def broadcast(project: Project, pk: int) -> Broadcast | None:
    """One of the project's broadcasts; None when the project has no such broadcast."""
    return Broadcast.objects.filter(project=project, pk=pk).first()


def alerts(project: Project, status: str | None = None, case_type: str | None = None) -> QuerySet[ConditionalAlert]:
    """The project's conditional alerts, newest first; `status` (active, paused) and `case_type` filter."""
    qs = ConditionalAlert.objects.filter(project=project)
    if _status(status, ALERT_STATUSES):
        qs = qs.filter(status=status)
    if case_type:
        qs = qs.filter(case_type=case_type)
    return qs.order_by("-created_on", "-pk")


def alert(project: Project, pk: int) -> ConditionalAlert | None:
    """One of the project's alerts; None when the project has no such alert."""
    return ConditionalAlert.objects.filter(project=project, pk=pk).first()


# --------------------------------------------------------------------------------------------------
# Counts
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    """A broadcast or an alert with what it has done so far."""

    owner: Owner
    recipients: int  # distinct recipients (cases and mobile workers) it has started a schedule for
    running: int  # schedule instances still running (recipients with events to come)
    ended: int  # schedule instances ended (completed, cancelled, no longer matching, …)
    next_due_utc: datetime | None  # the soonest event to come (None: nothing due, e.g. paused)
    messages: dict[str, int]  # its messages by status (queued, sending, sent, delivered, failed)
    recipients_text: str = ""  # its recipients in words (`describe_recipients`)
    criteria_text: str = ""  # an alert's cases in words (`rules.describe_cases`)

    @property
    def sent(self) -> int:
        return self.messages.get(Message.SENT, 0) + self.messages.get(Message.DELIVERED, 0)

    @property
    def failed(self) -> int:
        return self.messages.get(Message.FAILED, 0)

    @property
    def schedule_summary(self) -> str:
        return describe_schedule(self.owner.schedule or {})

    def as_dict(self) -> dict[str, Any]:
        """The broadcast or alert as the API answers it (and `casemsg broadcasts … --json` prints it)."""
        o = self.owner
        reads_again = isinstance(o, Broadcast) and o.refresh_due_utc is not None
        out: dict[str, Any] = {
            "id": o.pk,
            "name": o.name,
            "status": o.status,
            "content": o.content or {},
            "default_language": o.default_language,
            "recipients": o.recipients,
            "schedule": o.schedule or {},
            "schedule_summary": self.schedule_summary,
            "max_lateness_minutes": o.max_lateness_minutes,
            "revision": o.revision,
            "event_id": o.event_id,
            "created_on": o.created_on,
            "modified_on": o.modified_on,
            "recipient_count": self.recipients,
            "running": self.running,
            "next_due_utc": self.next_due_utc,
            "messages": self.messages,
            "recipients_summary": self.recipients_text,
        }
        if isinstance(o, Broadcast):
            # recipients read again at each occurrence: who joins or leaves, and when it is next read
            out.update(recipients_read_at_each_send=reads_again, recipients_next_read_utc=o.refresh_due_utc)
        if isinstance(o, ConditionalAlert):
            run = progress(o)
            out.update(
                recipients=recipients.alert_recipients_json(o.recipients or [], o.group_id),
                case_type=o.case_type,
                criteria=list(o.criteria or []),
                reset_property=o.reset_property,
                run_status=run.status,
                run_done=run.done,
                run_total=run.total,
                run=run.as_dict(),
            )
        return out


def summaries(owners: Iterable[Owner]) -> list[Summary]:
    """The owners (e.g. one page of broadcasts() or alerts()) with their counts: two queries for the
    instances (broadcasts, alerts) and one for the messages, whatever the number of owners."""
    owners = list(owners)
    by_key: dict[tuple[str, int], dict[str, Any]] = {}
    for kind, model_field in (("broadcast", "broadcast_id"), ("alert", "alert_id")):
        pks = [o.pk for o in owners if events.owner_kind(o) == kind]
        if not pks:
            continue
        rows = (
            ScheduleInstance.objects.filter(**{f"{model_field}__in": pks})
            .values(model_field)
            .annotate(
                running=Count("pk", filter=Q(active=True)),
                total=Count("pk"),
                cases=Count("case_id", distinct=True),
                workers=Count("worker_id", distinct=True),
                next_due=Min("next_due_utc", filter=Q(active=True)),
            )
            .order_by()
        )
        for row in rows:
            by_key[(kind, row[model_field])] = row
    event_ids = [o.event_id for o in owners if o.event_id]
    counts: dict[int, dict[str, int]] = {}
    if event_ids:
        for row in Message.objects.filter(event_id__in=event_ids).values("event_id", "status").annotate(n=Count("pk")):
            counts.setdefault(row["event_id"], {})[row["status"]] = row["n"]
    names = group_names(owners)
    out = []
    for o in owners:
        row = by_key.get((events.owner_kind(o), o.pk), {})
        out.append(
            Summary(
                owner=o,
                recipients=row.get("cases", 0) + row.get("workers", 0),
                running=row.get("running", 0),
                ended=row.get("total", 0) - row.get("running", 0),
                next_due_utc=row.get("next_due"),
                messages=counts.get(o.event_id or 0, {}),
                recipients_text=describe_recipients(o, names),
                criteria_text=rules.describe_cases(o.case_type, o.criteria) if isinstance(o, ConditionalAlert) else "",
            )
        )
    return out


# --------------------------------------------------------------------------------------------------
# Recipients in words
# --------------------------------------------------------------------------------------------------


def _group_of(o: Owner) -> int | None:
    if isinstance(o, ConditionalAlert):
        return o.group_id
    group = (o.recipients or {}).get("group") if isinstance(o.recipients, Mapping) else None
    return group if isinstance(group, int) and not isinstance(group, bool) else None


def group_names(owners: Iterable[Owner]) -> dict[int, Group]:
    """The groups these broadcasts and alerts name (one query)."""
    pks = {g for g in map(_group_of, owners) if g is not None}
    return Group.objects.in_bulk(pks) if pks else {}


def _where(filters: Mapping[str, Any]) -> str:
    return " and ".join(f"{k} is {v}" for k, v in filters.items())


def _cases_text(selection: Mapping[str, Any]) -> str:
    head = f"open {selection.get('case_type')} cases"
    filters = selection.get("filters") or {}
    return f"{head} where {_where(filters)}" if filters else head


def describe_recipients(o: Owner, groups: Mapping[int, Group] | None = None) -> str:
    """A broadcast's or an alert's recipients in words, for a person: "open mother cases where district is
    North; group “Pilot” (open mother cases where edd is a date within the next 30 days)", "the case and its
    owner, members of group “Pilot” only". Reads the stored JSON leniently (never an error)."""
    groups = groups if groups is not None else group_names([o])
    group_text = _group_text(_group_of(o), groups)
    if isinstance(o, ConditionalAlert):
        labels = {"case": "the case", "owner": "its owner (mobile worker)", "parent": "its parent case"}
        roles = [labels.get(str(r), str(r)) for r in (o.recipients or [])]
        text = " and ".join(roles) or "—"
        return f"{text}, for members of {group_text} only" if group_text else text
    text = describe_recipient_spec(o.recipients, group_text)
    if lifecycle.reads_recipients_again(o) and o.status in (Broadcast.ACTIVE, Broadcast.PAUSED):
        text += " — read again at each send"
    return text


def _group_text(group: int | None, groups: Mapping[int, Group]) -> str:
    if group is None:
        return ""
    g = groups.get(group)
    return f"group “{g.name}” ({group_queries.describe(g)})" if g is not None else f"group {group} (deleted)"


def describe_recipient_spec(spec: object, group_text: str | None = None) -> str:
    """A broadcast's or a message's recipients as stored or posted (`{case_type, filters, group, case_ids,
    mobile_workers, owners_of}`) in words — never the JSON itself: "open mother cases where district is
    North; 3 listed cases". `group_text`: the group already in words (else it is read, one query)."""
    who = spec if isinstance(spec, Mapping) else {}
    if group_text is None:
        group = who.get("group")
        ok = isinstance(group, int) and not isinstance(group, bool)
        group_text = _group_text(group, Group.objects.in_bulk([group])) if ok else ""
    parts: list[str] = []
    if who.get("case_type"):
        parts.append(_cases_text(who))
    if group_text:
        parts.append(group_text)
    if who.get("case_ids"):
        n = len(who["case_ids"])
        parts.append(f"{n} listed case{'s' if n != 1 else ''}")
    workers = who.get("mobile_workers")
    if workers == "all":
        parts.append("every active mobile worker")
    elif workers:
        parts.append(f"{len(workers)} mobile worker{'s' if len(workers) != 1 else ''}")
    if isinstance(who.get("owners_of"), Mapping):
        parts.append(f"the mobile workers who own {_cases_text(who['owners_of'])}")
    return "; ".join(parts) or "—"


def summary(owner: Owner) -> Summary:
    return summaries([owner])[0]


# --------------------------------------------------------------------------------------------------
# Why schedules ended
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ended:
    """Schedules of a broadcast or an alert that ended for one reason, with that reason in words."""

    reason: str  # ScheduleInstance.end_reason
    outcome: str  # its last event's outcome (queued, no_events, skipped_late, not_sent, …)
    count: int
    text: str


_END_WORDS = {
    "cancelled": "cancelled",
    "schedule_changed": "the schedule or the recipients changed (the schedules started again)",
    "recipient_removed": "the recipient was removed",
    "no_longer_matches": "the case no longer matched",
    "case_closed": "the case was closed",
    "case_deleted": "the case was deleted",
    "reset": "the case's reset property changed (the schedule started again)",
}
_ENDED_GROUPS = 20  # distinct (reason, outcome) pairs looked at: a handful exist


def ended(owner: Owner, zone: str) -> list[Ended]:
    """Its ended schedules by why they ended, the most frequent first: one GROUP BY, then one query per
    reason (a handful) for an example's times, said in `zone` (the project's). An alert whose first send was
    already past when the case matched reads "the first send (2026-12-01 09:00 EAT) was already past when the
    schedule started (…): nothing was due" instead of a bare "1 ended"."""
    qs = lifecycle.owner_instances(owner).filter(active=False)
    rows = (
        qs.annotate(outcome=KeyTextTransform("outcome", "last_event"))
        .values_list("end_reason", "outcome")
        .annotate(n=Count("pk"))
        .order_by("-n", "end_reason")[:_ENDED_GROUPS]
    )
    out = []
    for reason, outcome, n in rows:
        example: Mapping[str, Any] = {}
        if outcome in ("no_events", "skipped_late", "not_sent"):
            found = qs.filter(end_reason=reason, last_event__outcome=outcome).values_list("last_event", flat=True)
            example = found.first() or {}
        out.append(
            Ended(reason or "", outcome or "", n, _ended_text(reason or "", outcome or "", example, owner, zone))
        )
    return out


def _instant(value: object) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def _ended_text(reason: str, outcome: str, example: Mapping[str, Any], owner: Owner, zone: str) -> str:
    if reason in _END_WORDS:
        return _END_WORDS[reason]
    if outcome == "no_events":
        first, at = _instant(example.get("first_due_utc")), _instant(example.get("at"))
        if first is not None and at is not None:
            return (
                f"the first send ({wallclock.shown(first, zone)}) was already past when the schedule started "
                f"({wallclock.shown(at, zone)}): nothing was due"
            )
        return "no send of the schedule was left when it started: nothing was due"
    if outcome == "skipped_late":
        due = _instant(example.get("due_utc"))
        return (
            f"its sends were more than {owner.max_lateness_minutes} minutes late when they came due "
            f"(the first on {wallclock.shown(due, zone)}) and were skipped"
        )
    if outcome == "not_sent":
        return str(example.get("detail") or "not sent")
    if reason == "completed":
        return "every send of the schedule was made"
    return (reason or outcome or "ended").replace("_", " ")


def progress(alert: ConditionalAlert) -> runner.Progress:
    """The alert's rule run as the API, the page and the CLI show it (status, done/total, percent)."""
    return runner.progress(alert)


# --------------------------------------------------------------------------------------------------
# Sends
# --------------------------------------------------------------------------------------------------


def sends(project: Project, owner: Owner, status: str | None = None, error: str | None = None) -> QuerySet[Message]:
    """The messages the broadcast or alert queued (those of its messaging event), newest first, with
    their case and mobile worker; `status` and `error` (a catalogue code) filter as in the message log."""
    qs = message_queries.messages(project, message_queries.MessageFilter(status=status, error=error))
    if owner.event_id is None:
        return qs.none()
    return qs.filter(event_id=owner.event_id)


def failures(owner: Owner) -> list[tuple[str, int]]:
    """Why its messages failed: (catalogue code, how many), the most frequent first."""
    if owner.event_id is None:
        return []
    rows = (
        Message.objects.filter(event_id=owner.event_id, status=Message.FAILED)
        .values_list("error")
        .annotate(n=Count("pk"))
        .order_by("-n", "error")
    )
    return [(code or "", n) for code, n in rows]


# --------------------------------------------------------------------------------------------------
# A schedule in words
# --------------------------------------------------------------------------------------------------

_WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_PLURAL = {"daily": "days", "weekly": "weeks", "monthly": "months"}


def describe_schedule(schedule: Mapping[str, Any]) -> str:
    """A stored (normalised) schedule as one line for a list: "daily at 09:00 from 2027-03-12 until
    2027-03-16, recipient's time zone". Reads the JSON leniently: a shape it does not know is shown as
    its type, never an error."""
    kind = str(schedule.get("type") or "")
    if kind == "now":
        return "now"
    if not kind:
        return "—"
    zone = schedule.get("time_zone") or "recipient"
    zone_text = "each recipient's time zone" if zone == "recipient" else str(zone)
    parts: list[str] = []
    if kind == "offsets":
        unit = str(schedule.get("unit") or "minutes")
        offsets = [str(o) for o in schedule.get("offsets") or []]
        parts.append(f"after {', '.join(offsets) or '0'} {unit}")
        if schedule.get("repeat_every"):
            parts.append(f"repeated every {schedule['repeat_every']} {unit}")
    else:
        interval = schedule.get("interval") or 1
        head = kind if interval == 1 else f"every {interval} {_PLURAL.get(kind, kind)}"
        if kind == "once":
            head = f"once on {schedule.get('date', '?')}"
        parts.append(head)
        if schedule.get("weekdays"):
            days = [_WEEKDAY_NAMES[d] if isinstance(d, int) and 0 <= d <= 6 else str(d) for d in schedule["weekdays"]]
            parts.append(f"on {', '.join(days)}")
        if schedule.get("month_days"):
            days = ["last day" if d == -1 else f"day {d}" for d in schedule["month_days"]]
            parts.append(f"on {', '.join(days)}")
        if schedule.get("times"):
            parts.append(f"at {', '.join(str(t) for t in schedule['times'])}")
        elif isinstance(schedule.get("random_window"), Mapping):
            w = schedule["random_window"]
            parts.append(f"at a random time {w.get('start')}–{w.get('end')}")
        elif schedule.get("time_property"):
            parts.append(f"at the time in {schedule['time_property']}")
        if kind != "once" and schedule.get("start_date"):
            parts.append(f"from {schedule['start_date']}")
        if schedule.get("until"):
            parts.append(f"until {schedule['until']}")
    start = schedule.get("start")
    if isinstance(start, Mapping):
        if start.get("from") == "property":
            shift_days = int(start.get("days") or 0)
            shift = f" {shift_days:+d} days" if shift_days else ""
            parts.append(f"from the date in {start.get('property')}{shift}")
        else:
            parts.append("from when the case matched")
    if schedule.get("count"):
        parts.append(f"{schedule['count']} times" if kind != "offsets" else f"{schedule['count']} rounds")
    return " ".join(parts) + f" ({zone_text})"


# --------------------------------------------------------------------------------------------------
# One case's coming sends
# --------------------------------------------------------------------------------------------------


def _joining(case: Case, now: datetime, limit: int) -> list[tuple[events.Due, ScheduleInstance, Owner]]:
    """The coming sends of the broadcasts that read their recipients at each send and select this case now,
    but have no running schedule for it yet (a case created, or that began to match, since they started):
    it joins at the broadcast's next reading (`refresh_due_utc`) and gets the occurrence due then in its own
    zone, and the ones after it — as long as it still matches. One query for the broadcasts, one per such
    broadcast (few in a project) to ask whether it selects the case."""
    out: list[tuple[events.Due, ScheduleInstance, Owner]] = []
    running = ScheduleInstance.objects.filter(broadcast_id=OuterRef("pk"), case=case, active=True)
    pending = Broadcast.objects.filter(
        project_id=case.project_id, status=Broadcast.ACTIVE, refresh_due_utc__isnull=False
    ).filter(~Exists(running))
    for b in pending.select_related("project"):
        assert b.refresh_due_utc is not None
        cases, _workers = recipients.recipient_querysets(b, max(now, b.refresh_due_utc))
        if cases is None or not cases.filter(pk=case.pk).exists():
            continue
        schedule = events.schedule_of(b)
        zone = events.zone_for_recipient(events.contact_time_zone(case), b.project, schedule)
        anchor = events.anchor_for(schedule, zone, b.created_on or now, {})
        frame = events.Frame(schedule, zone, anchor or now)
        stand_in = ScheduleInstance(pk=0, broadcast=b, case=case, time_zone=zone, active=True)
        due = events.first_event(frame, 0, b.refresh_due_utc - events.EPSILON)
        taken = 0
        while due is not None and taken < limit:
            out.append((due, stand_in, b))
            taken += 1
            due = events.first_event(frame, due.iteration + 1, due.utc)
    return out


def schedule_for_case(case: Case, limit: int = 10, now: datetime | None = None) -> list[dict[str, Any]]:
    """The next `limit` messages this case will receive, across every alert and broadcast, soonest first:
    {source ("alert"/"broadcast"), id, name, iteration, due_utc, local_time, time_zone, channel, language,
    text (rendered for this case as it would be now), subject (emails), note}. A broadcast that reads its
    recipients at each send counts the case while it matches; one it does not message yet but selects now
    lists the sends it will join (`note` says so, `joins`: true)."""
    now = now or timezone.now()
    project = case.project
    insts = list(
        ScheduleInstance.objects.filter(case=case, active=True, next_due_utc__isnull=False)
        .select_related("broadcast", "alert")
        .order_by("next_due_utc")
    )
    source_pks = {i.source_case_id for i in insts if i.source_case_id and i.source_case_id != case.pk}
    source_props = dict(Case.objects.filter(pk__in=source_pks).values_list("pk", "properties")) if source_pks else {}
    source_props[case.pk] = case.properties or {}
    upcoming: list[tuple[events.Due, ScheduleInstance, Owner]] = []
    for inst in insts:
        taken = 0
        owner = events.owner_of(inst)
        if not events.is_running(owner):
            continue
        schedule = events.schedule_of(owner)
        frame = events.frame_for(inst, owner, schedule, source_props.get(inst.source_case_id or 0, {}))
        due = events.current(inst)
        while due is not None and taken < limit:
            upcoming.append((due, inst, owner))
            taken += 1
            due = events.first_event(frame, due.iteration + 1, due.utc) if frame is not None else None
    upcoming += _joining(case, now, limit)
    upcoming.sort(key=lambda u: (u[0].utc, u[1].pk or 0))
    parent = Case.objects.filter(project=project, case_id=case.parent_id).first() if case.parent_id else None
    contact_lang, source, _problem = resolve_language(str((case.properties or {}).get("language_code") or ""), project)
    ctx = render.Context(case=case, parent=parent, recipient_name=case.name)
    out = []
    for due, inst, owner in upcoming[:limit]:
        content = contents.content_from_json(owner.content or {})
        chain = [contact_lang if source == "contact" else "", owner.default_language, project.default_language]
        template, lang = render.choose_text(owner.content or {}, chain)
        text = _render(template, ctx)
        if content.channel == "survey":
            lang, text = _survey_opening(content.survey_id, case, project)
        # the wall time read from the instant (never the stored plan): a gap's 02:30 fires at 03:00
        seen = wallclock.wall(due.utc, inst.time_zone or "UTC")
        item: dict[str, Any] = {
            "source": events.owner_kind(owner),
            "id": owner.pk,
            "name": owner.name,
            "iteration": due.iteration,
            "due_utc": due.utc,
            "local_time": seen.naive.isoformat(),
            "utc_offset": seen.offset,
            "time_zone": inst.time_zone,
            "channel": content.channel,
            "language": lang,
            "text": text,
            "joins": not inst.pk,
            "note": _send_note(owner, joins=not inst.pk),
        }
        if content.channel == "email":
            item["subject"] = _render(content.subject_for(chain), ctx)
        out.append(item)
    return out


def _send_note(owner: Owner, joins: bool) -> str:
    """Why this send is listed, when the recipients are read at each send."""
    if isinstance(owner, Broadcast) and owner.refresh_due_utc is not None:
        if joins:
            return "Joins at the next send: the broadcast reads its recipients at each send, and selects this case now."
        return "While it matches: the broadcast reads its recipients again at each send."
    return ""


def _survey_opening(survey_id: int | None, case: Case, project: Project) -> tuple[str, str]:
    """(language, text) of the first SMS the case would get from this survey now ("" once deleted)."""
    survey = Survey.objects.select_related("current_version").filter(pk=survey_id or 0).first()
    if survey is None or survey.current_version is None:
        return "", ""
    version = survey.current_version
    language = survey_engine.survey_language(survey_engine.definition(version), case, project)
    return language, survey_engine.opening_texts(version).get(language, "")


def _render(template: str | None, ctx: render.Context) -> str:
    if template is None:
        return ""
    try:
        return render.render(template, ctx)
    except render.RenderError:
        return template
