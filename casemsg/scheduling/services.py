"""The only write path for broadcasts and conditional alerts: one transaction per change.

Broadcasts: `create_broadcast`, `update_broadcast`, `pause_broadcast`, `resume_broadcast`,
`cancel_broadcast`. Alerts: `create_alert`, `update_alert`, `pause_alert`, `resume_alert` (the case type
and criteria are validated by `rules`, and a run over the cases is requested from `runner`).

What a change does to the instances (docs/scheduling.md):

- content, name, default language, lateness: nothing (messages not yet queued use the new content);
- recipients: the revision goes up; a broadcast ends the instances of recipients no longer selected and
  starts the new ones (whose events are the broadcast's, from now on); an alert ends the roles removed and
  starts the roles added for every case that has a running schedule; a broadcast whose recipients can
  change (a case type, a group, …) also reads them again at each occurrence (`refresh_due_utc`, the tick);
- schedule: the revision goes up and every running instance is replaced by a new one under the new
  schedule (events from now on; already-sent occurrences keep their own send keys);
- pause: the instances lose their due time (the tick does not see them); resume gives each its next event
  again: the latest one missed while paused is still sent if it is within the lateness, older ones are
  skipped; cancel (broadcasts) ends every instance.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from casemsg.cases.models import Case
from casemsg.core import errors
from casemsg.core.errors import InputError
from casemsg.messaging import services as messaging
from casemsg.messaging.models import MessagingEvent
from casemsg.projects.models import Project
from casemsg.scheduling import lifecycle, rules, runner, specs, tick
from casemsg.scheduling.fields import MAX_PROPERTY, mapping, only
from casemsg.scheduling.models import Broadcast, ConditionalAlert
from casemsg.scheduling.recipients import alert_recipients_json


def _body(data: object, allowed: frozenset[str], what: str) -> Mapping[str, Any]:
    """The body as an object with only the declared fields (`specs.BROADCAST_FIELDS`, `specs.ALERT_FIELDS`)."""
    body = mapping(data, f"The {what}")
    only(body, allowed, f"The {what}")
    return body


# --------------------------------------------------------------------------------------------------
# Broadcasts
# --------------------------------------------------------------------------------------------------


def create_broadcast(project: Project, data: object, now: datetime | None = None) -> Broadcast:
    """Validate the body (specs.parse_broadcast), store the broadcast and its messaging event, and start
    one instance per recipient, in one transaction."""
    now = now or timezone.now()
    spec = specs.parse_broadcast(data, project, now)
    with transaction.atomic():
        b = Broadcast.objects.create(
            project=project,
            name=spec.name,
            content=spec.content.as_json(),
            default_language=spec.default_language,
            recipients=spec.recipients.as_json(),
            schedule=spec.schedule.as_json(),
            max_lateness_minutes=spec.max_lateness_minutes,
            created_on=now,
            modified_on=now,
        )
        b.event = MessagingEvent.objects.create(
            project=project, source="broadcast", source_id=str(b.pk), description=spec.name[:255]
        )
        b.save(update_fields=["event"])
        # a "now" broadcast's messages are queued here, set-wise, rather than by the next ticks in batches
        queued_now = tick.queues_at_start(b)
        lifecycle.start_broadcast(b, now, queued_now=queued_now)
        if queued_now:
            tick.queue_started(b, now)
        _plan_refresh(b, now)
        _settle(b, now)
    return b


def _plan_refresh(b: Broadcast, now: datetime) -> None:
    """When the broadcast reads its recipients next: its first occurrence from now on (None: never)."""
    b.refresh_due_utc = lifecycle.next_refresh(b, now, inclusive=True)
    b.save(update_fields=["refresh_due_utc"])


def message_now(project: Project, data: Mapping[str, Any], now: datetime | None = None) -> Broadcast:
    """A message to more than one contact (`POST …/messages` with a group, a case type, a list…): a
    broadcast of type now, named after its text, whose messages are queued in this transaction. `data`:
    {"recipients", "content", "default_language"?, "name"?}."""
    now = now or timezone.now()
    content = data.get("content") if isinstance(data.get("content"), Mapping) else {}
    text = str((content or {}).get("text") or next(iter(((content or {}).get("translations") or {}).values()), ""))
    name = data.get("name") or (f"Message: {text[:60]}" if text else "Message")
    body = {
        "name": name,
        "recipients": data.get("recipients"),
        "content": content,
        "schedule": {"type": "now"},
    }
    if data.get("default_language"):
        body["default_language"] = data["default_language"]
    return create_broadcast(project, body, now)


def _settle(b: Broadcast, now: datetime) -> None:
    """A broadcast left with nothing to send (no recipient, every event already past) is done; one that
    reads its recipients again at a coming occurrence waits for them."""
    if (
        b.status == Broadcast.ACTIVE
        and b.refresh_due_utc is None
        and not lifecycle.owner_instances(b).filter(active=True).exists()
    ):
        b.status, b.modified_on = Broadcast.DONE, now
        b.save(update_fields=["status", "modified_on"])


def _locked_broadcast(broadcast: Broadcast) -> Broadcast:
    b = Broadcast.objects.select_for_update().select_related("project").get(pk=broadcast.pk)
    if b.status in (Broadcast.CANCELLED, Broadcast.DONE):
        raise InputError(errors.SCHEDULE_ENDED, f"Broadcast {b.pk} is {b.status}: it can no longer change.", 409)
    return b


def _broadcast_json(b: Broadcast) -> dict[str, Any]:
    return {
        "name": b.name,
        "content": b.content,
        "recipients": b.recipients,
        "schedule": b.schedule,
        "default_language": b.default_language,
        "max_lateness_minutes": b.max_lateness_minutes,
    }


def update_broadcast(broadcast: Broadcast, data: object, now: datetime | None = None) -> Broadcast:
    """Change any of name, content, default_language, max_lateness_minutes, recipients, schedule (the
    fields given; the others keep their values)."""
    now = now or timezone.now()
    changes = _body(data, specs.BROADCAST_FIELDS, "broadcast")
    with transaction.atomic():
        b = _locked_broadcast(broadcast)
        project = b.project
        spec = specs.parse_broadcast({**_broadcast_json(b), **changes}, project, now, check_past="schedule" in changes)
        schedule, recipients = spec.schedule.as_json(), spec.recipients.as_json()
        schedule_changed, recipients_changed = schedule != b.schedule, recipients != b.recipients
        b.name, b.content, b.default_language = spec.name, spec.content.as_json(), spec.default_language
        b.max_lateness_minutes, b.schedule, b.recipients = spec.max_lateness_minutes, schedule, recipients
        old_revision = b.revision
        if schedule_changed or recipients_changed:
            b.revision += 1
        b.modified_on = now
        b.save()
        if recipients_changed and not schedule_changed:
            # the same schedule: what its recipients already got (completed) still counts
            lifecycle.owner_instances(b).filter(revision=old_revision).update(revision=b.revision)
        if schedule_changed:
            lifecycle.end_instances(lifecycle.owner_instances(b), lifecycle.SCHEDULE_CHANGED, now)
            lifecycle.start_broadcast(b, now)
        elif recipients_changed:
            lifecycle.end_removed_recipients(b, now)
            lifecycle.start_broadcast(b, now)
        if schedule_changed or recipients_changed:
            _plan_refresh(b, now)
            _settle(b, now)
    _copy(b, broadcast)
    return broadcast


def _copy(fresh: Broadcast | ConditionalAlert, target: Broadcast | ConditionalAlert) -> None:
    """The caller's object shows the change (its fields follow the stored row)."""
    for f in type(fresh)._meta.concrete_fields:
        setattr(target, f.attname, getattr(fresh, f.attname))


def pause_broadcast(broadcast: Broadcast, now: datetime | None = None) -> Broadcast:
    """Stop sending until resumed (a paused broadcast's instances are not due). Pausing twice is harmless."""
    now = now or timezone.now()
    with transaction.atomic():
        b = _locked_broadcast(broadcast)
        if b.status == Broadcast.ACTIVE:
            b.status, b.modified_on = Broadcast.PAUSED, now
            b.save(update_fields=["status", "modified_on"])
            lifecycle.pause_instances(b)
    _copy(b, broadcast)
    return broadcast


def resume_broadcast(broadcast: Broadcast, now: datetime | None = None) -> Broadcast:
    """Send again: each recipient's next event from now on (the latest missed one if within the lateness)."""
    now = now or timezone.now()
    with transaction.atomic():
        b = _locked_broadcast(broadcast)
        if b.status == Broadcast.PAUSED:
            b.status, b.modified_on = Broadcast.ACTIVE, now
            b.save(update_fields=["status", "modified_on"])
            lifecycle.resume_instances(b, now)
            if b.refresh_due_utc is not None:
                # recipients that joined or left while it was paused: read them again at once
                b.refresh_due_utc = now
                b.save(update_fields=["refresh_due_utc"])
    _copy(b, broadcast)
    return broadcast


def cancel_broadcast(broadcast: Broadcast, now: datetime | None = None) -> Broadcast:
    """End the broadcast for good: every instance ends ("cancelled"); nothing more is queued. Its messages
    still queued (not yet sent) fail with BROADCAST_CANCELLED; those already handed to a gateway go on."""
    now = now or timezone.now()
    with transaction.atomic():
        b = _locked_broadcast(broadcast)
        b.status, b.modified_on, b.refresh_due_utc = Broadcast.CANCELLED, now, None
        b.save(update_fields=["status", "modified_on", "refresh_due_utc"])
        lifecycle.end_instances(lifecycle.owner_instances(b), lifecycle.CANCELLED, now)
        # its messages still queued (not yet handed to a gateway) will not go
        if b.event_id is not None:
            messaging.withdraw_queued(
                b.event_id, errors.BROADCAST_CANCELLED, "The broadcast was cancelled before this message was sent."
            )
    _copy(b, broadcast)
    return broadcast


# --------------------------------------------------------------------------------------------------
# Conditional alerts
# --------------------------------------------------------------------------------------------------


def _alert_json(a: ConditionalAlert) -> dict[str, Any]:
    return {
        "name": a.name,
        "content": a.content,
        "recipients": alert_recipients_json(a.recipients or [], a.group_id),
        "schedule": a.schedule,
        "default_language": a.default_language,
        "max_lateness_minutes": a.max_lateness_minutes,
    }


def _reset_property(value: object) -> str:
    if value in (None, ""):
        return ""
    if not isinstance(value, str) or len(value) > MAX_PROPERTY or not value.strip():
        raise InputError(errors.VALIDATION_ERROR, "reset_property must be a case property name (or empty).")
    return value


def create_alert(project: Project, data: object, now: datetime | None = None) -> ConditionalAlert:
    """A conditional alert: {name, case_type, criteria, content, schedule, recipients, default_language?,
    reset_property?, max_lateness_minutes?}. Its run over the open cases of the type is requested (the
    worker's ticker does it)."""
    now = now or timezone.now()
    d = _body(data, specs.ALERT_FIELDS, "alert")
    case_type = d.get("case_type")
    if not isinstance(case_type, str):
        raise InputError(errors.CASE_TYPE_REQUIRED, "An alert needs the case type its criteria apply to.")
    criteria = rules.validate_rule(project, case_type, d.get("criteria", []))
    fields = specs.parse_alert({k: v for k, v in d.items() if k not in specs.RULE_FIELDS}, project)
    with transaction.atomic():
        alert = ConditionalAlert.objects.create(
            project=project,
            case_type=case_type,
            criteria=[c.as_json() for c in criteria],
            reset_property=_reset_property(d.get("reset_property")),
            created_on=now,
            modified_on=now,
            **fields,
        )
        alert.event = MessagingEvent.objects.create(
            project=project, source="alert", source_id=str(alert.pk), description=alert.name[:255]
        )
        alert.save(update_fields=["event"])
        runner.request_run(alert, now)
    return alert


def update_alert(alert: ConditionalAlert, data: object, now: datetime | None = None) -> ConditionalAlert:
    """Change any of the alert's fields. A change of the schedule or the recipients bumps the revision and
    replaces (schedule) or completes (recipients) the running instances; a change of the case type,
    criteria or schedule requests a new run; a content-only change touches no schedule."""
    now = now or timezone.now()
    changes = _body(data, specs.ALERT_FIELDS, "alert")
    with transaction.atomic():
        a = ConditionalAlert.objects.select_for_update().select_related("project").get(pk=alert.pk)
        project = a.project
        fields = specs.parse_alert(
            {**_alert_json(a), **{k: v for k, v in changes.items() if k not in specs.RULE_FIELDS}}, project
        )
        rule_changed = False
        if "case_type" in changes or "criteria" in changes:
            case_type = changes.get("case_type", a.case_type)
            if not isinstance(case_type, str):
                raise InputError(errors.CASE_TYPE_REQUIRED, "An alert needs the case type its criteria apply to.")
            stored = [c.as_json() for c in rules.validate_rule(project, case_type, changes.get("criteria", a.criteria))]
            rule_changed = case_type != a.case_type or stored != a.criteria
            a.case_type, a.criteria = case_type, stored
        if "reset_property" in changes:
            a.reset_property = _reset_property(changes["reset_property"])
        schedule_changed = fields["schedule"] != a.schedule
        recipients_changed = fields["recipients"] != a.recipients
        # another group (or none): which matching cases it starts for changed, as with its criteria
        rule_changed = rule_changed or fields["group_id"] != a.group_id
        old_roles = set(a.recipients or [])
        for name, value in fields.items():
            setattr(a, name, value)
        if schedule_changed or recipients_changed:
            a.revision += 1
        a.modified_on = now
        a.save()
        if schedule_changed:
            _restart_alert(a, now)
        elif recipients_changed:
            sources = _running_sources(a)  # before the removed roles end: the cases whose schedule runs
            removed = old_roles - set(a.recipients)
            if removed:
                lifecycle.end_instances(
                    lifecycle.owner_instances(a).filter(role__in=sorted(removed)), lifecycle.RECIPIENT_REMOVED, now
                )
            if set(a.recipients) - old_roles:
                _start_roles(a, sources, now)
        if rule_changed or schedule_changed:
            runner.request_run(a, now)
    _copy(a, alert)
    return alert


def _running_sources(a: ConditionalAlert) -> dict[int, datetime]:
    """The source cases with a running instance, and when each matched (its instances' anchor)."""
    out: dict[int, datetime] = {}
    for pk, anchor in lifecycle.owner_instances(a).filter(active=True).values_list("source_case_id", "anchor_utc"):
        if pk is not None:
            out.setdefault(pk, anchor)
    return out


def _restart_alert(a: ConditionalAlert, now: datetime) -> None:
    """The schedule changed: every running instance is replaced by one under the new schedule, counted
    from when its case matched, with events from now on. In chunks of cases."""
    last = 0
    base = lifecycle.owner_instances(a).filter(active=True)
    while True:
        page = list(
            base.filter(source_case_id__gt=last)
            .order_by("source_case_id")
            .values_list("source_case_id", "anchor_utc")
            .distinct()[:1000]
        )
        if not page:
            return
        matched = {pk: anchor for pk, anchor in page}
        lifecycle.end_instances(base.filter(source_case_id__in=list(matched)), lifecycle.SCHEDULE_CHANGED, now)
        cases = list(Case.objects.filter(pk__in=list(matched)).order_by("pk"))
        lifecycle.start_for_cases(a, cases, now, matched)
        last = page[-1][0]


def _start_roles(a: ConditionalAlert, sources: dict[int, datetime], now: datetime) -> None:
    """Roles were added: start them for every case with a running schedule (start_for_cases skips the
    roles that already run)."""
    pks = sorted(sources)
    for start in range(0, len(pks), 1000):
        cases = list(Case.objects.filter(pk__in=pks[start : start + 1000]).order_by("pk"))
        lifecycle.start_for_cases(a, cases, now, sources)


def pause_alert(alert: ConditionalAlert, now: datetime | None = None) -> ConditionalAlert:
    now = now or timezone.now()
    with transaction.atomic():
        a = ConditionalAlert.objects.select_for_update().get(pk=alert.pk)
        if a.status == ConditionalAlert.ACTIVE:
            a.status, a.modified_on = ConditionalAlert.PAUSED, now
            a.save(update_fields=["status", "modified_on"])
            lifecycle.pause_instances(a)
    _copy(a, alert)
    return alert


def resume_alert(alert: ConditionalAlert, now: datetime | None = None) -> ConditionalAlert:
    """Running schedules go on (the latest event missed while paused is sent if within the lateness), and
    a run over the cases starts the schedules of cases that began to match while paused."""
    now = now or timezone.now()
    with transaction.atomic():
        a = ConditionalAlert.objects.select_for_update().get(pk=alert.pk)
        if a.status == ConditionalAlert.PAUSED:
            a.status, a.modified_on = ConditionalAlert.ACTIVE, now
            a.save(update_fields=["status", "modified_on"])
            lifecycle.resume_instances(a, now)
            runner.request_run(a, now)
    _copy(a, alert)
    return alert


def instance_count(owner: Broadcast | ConditionalAlert) -> dict[str, int]:
    """How many instances are running and ended (for a progress line)."""
    qs = lifecycle.owner_instances(owner)
    running = qs.filter(active=True).count()
    return {"running": running, "ended": qs.count() - running}


# --------------------------------------------------------------------------------------------------
# Used by the interfaces: DELETE …/alerts/{id}, `casemsg broadcasts run`
# --------------------------------------------------------------------------------------------------


def delete_alert(alert: ConditionalAlert) -> None:
    """Delete the alert and its schedule instances: nothing more is queued. Messages already queued go on,
    and keep their messaging event (they stay in the message log)."""
    with transaction.atomic():
        # the row lock waits for a rule-run chunk in progress (runner holds it per chunk)
        a = ConditionalAlert.objects.select_for_update().filter(pk=alert.pk).first()
        if a is not None:
            a.delete()


def start_new_recipients(broadcast: Broadcast, now: datetime | None = None) -> int:
    """Start the broadcast now for the recipients it selects that have no running instance (cases created,
    or changed to match, since it started): their events are the broadcast's from now on. Returns how many
    started. Refused for a cancelled or done broadcast (SCHEDULE_ENDED); a paused one starts them paused."""
    now = now or timezone.now()
    with transaction.atomic():
        b = _locked_broadcast(broadcast)
        started = lifecycle.start_broadcast(b, now)
    _copy(b, broadcast)
    return started
