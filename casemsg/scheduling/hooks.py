"""The scheduling area's after-change hooks: receivers of the lower areas' hooks, connected in
`SchedulingConfig.ready`, running inside the write transaction.

**Alerts follow every case change** (`on_cases_changed`, `on_cases_deleting`, on `casemsg.cases.signals`).

One call per write, however many cases it carries (an import sends up to a thousand): a handful of queries
(the project's alerts, the cases' alert instances) and then, per alert, one start and one end call for all
of its cases. The criteria are evaluated in memory (`rules.matches`), since the cases are in hand.

Per alert of the case's type and per changed case:

- closed → its instances end ("case_closed"), whatever the alert's state;
- no longer of the alert's type, or no longer matching → its instances end ("no_longer_matches");
- matching, with an instance, and the alert's reset property changed (compared with `previous`) → the
  instance ends ("reset") and a new one starts, anchored now;
- matching without an instance → one starts, unless the case's schedule already completed.

Paused alerts start and end nothing here (closing and deleting aside): resuming one runs it over all cases.

**Instances follow their recipient's time zone and the properties their schedule reads**: a case's
``time_zone`` or a read property changed (`recompute_on_cases_changed`, the other receiver of the case
hook), a mobile worker changed (`recompute_on_workers_changed`), the project's default time zone changed
(`recompute_on_settings_changed`): their next events move (`lifecycle.recompute…`).
"""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from django.utils import timezone

from casemsg.cases.models import Case
from casemsg.core import errors
from casemsg.core.errors import InputError
from casemsg.groups.models import Group
from casemsg.projects.models import Project
from casemsg.scheduling import lifecycle, recipients, rules, runner
from casemsg.scheduling.events import zone_name
from casemsg.scheduling.models import Broadcast, ConditionalAlert, ScheduleInstance
from casemsg.scheduling.rules import Criterion, Today
from casemsg.scheduling.runner import CASE_CLOSED, NO_LONGER_MATCHES
from casemsg.workers.models import MobileWorker

__all__ = [
    "CASE_DELETED",
    "RESET",
    "on_group_deleting",
    "on_group_members_changed",
    "on_cases_changed",
    "on_cases_deleting",
    "recompute_on_cases_changed",
    "recompute_on_settings_changed",
    "recompute_on_workers_changed",
]

CASE_DELETED = "case_deleted"
RESET = "reset"


# --------------------------------------------------------------------------------------------------
# Alerts follow case changes
# --------------------------------------------------------------------------------------------------


def _value(properties: Mapping[str, Any] | None, name: str) -> str:
    v = (properties or {}).get(name)
    return "" if v is None else str(v)


def on_cases_changed(
    sender: object,
    *,
    project: Project,
    cases: Sequence[Case],
    created: Sequence[Case] = (),
    previous: Mapping[int, Mapping[str, Any]] | None = None,
    **kwargs: Any,
) -> None:
    if not cases:
        return
    alerts = list(ConditionalAlert.objects.filter(project=project))  # few per project; none: one query
    if not alerts:
        return
    previous = previous or {}
    pks = [c.pk for c in cases]
    types = {c.case_type for c in cases}
    rows = ScheduleInstance.objects.filter(source_case_id__in=pks, alert__isnull=False, active=True)
    active = set(rows.values_list("alert_id", "source_case_id"))
    with_instances = {alert_id for alert_id, _ in active}

    now = timezone.now()
    today = Today(now, project.default_time_zone)
    for alert in alerts:
        live = alert.status == ConditionalAlert.ACTIVE and alert.case_type in types
        if not live and alert.pk not in with_instances:
            continue
        criteria: list[Criterion] | None = None
        if live:
            try:
                criteria = rules.parse_criteria(alert.criteria)
            except InputError:
                criteria = None  # stored criteria that no longer validate match nothing new; the run reports it
        ends: dict[str, list[int]] = defaultdict(list)
        starts: list[Case] = []
        restart: list[int] = []
        # an alert for a group's members: which of these cases are members now (one query)
        members: set[int] | None = None
        if live and alert.group_id is not None:
            in_group = Case.objects.filter(pk__in=pks).filter(recipients.group_cases(project, alert.group_id, now))
            members = set(in_group.values_list("pk", flat=True))
        for case in cases:
            key = (alert.pk, case.pk)
            has = key in active
            if case.closed:
                if has:
                    ends[CASE_CLOSED].append(case.pk)
                continue
            if alert.status != ConditionalAlert.ACTIVE:
                continue
            if case.case_type != alert.case_type or criteria is None:
                if has and case.case_type != alert.case_type:
                    ends[NO_LONGER_MATCHES].append(case.pk)
                continue
            matching = rules.matches(case, criteria, today) and (members is None or case.pk in members)
            before = previous.get(case.pk)
            reset = (
                bool(alert.reset_property)
                and before is not None
                and _value(before, alert.reset_property) != _value(case.properties, alert.reset_property)
            )
            if has and not matching:
                ends[NO_LONGER_MATCHES].append(case.pk)
            elif matching and has and reset:
                ends[RESET].append(case.pk)
                starts.append(case)
            elif matching and not has:
                starts.append(case)
                # start_for_cases skips a case whose latest schedule completed, unless something changed:
                # its reset value, or it did not match before this change (it matches again)
                if reset or (before is not None and not _matched_before(case, before, criteria, today)):
                    restart.append(case.pk)
        for reason, case_pks in ends.items():
            lifecycle.end_for_cases(alert, case_pks, reason)
        if starts:
            lifecycle.start_for_cases(alert, starts, now, now, restart=restart)


def _matched_before(case: Case, before: Mapping[str, Any], criteria: list[Criterion], today: Today) -> bool:
    """Whether the case matched with its properties before the change (its type and state as now)."""
    was = copy.copy(case)
    was.properties = dict(before)
    return rules.matches(was, criteria, today)


def on_cases_deleting(sender: object, *, project: Project, cases: Sequence[Case], **kwargs: Any) -> None:
    """The cases' alert instances end ("case_deleted") before the rows go (their deletion cascades)."""
    if not cases:
        return
    rows = ScheduleInstance.objects.filter(source_case_id__in=[c.pk for c in cases], alert__isnull=False, active=True)
    by_alert: dict[int, set[int]] = defaultdict(set)
    for alert_id, case_pk in rows.values_list("alert_id", "source_case_id"):
        by_alert[alert_id].add(case_pk)
    if not by_alert:
        return
    for alert in ConditionalAlert.objects.filter(pk__in=by_alert):
        lifecycle.end_for_cases(alert, sorted(by_alert[alert.pk]), CASE_DELETED)


# --------------------------------------------------------------------------------------------------
# Instances follow time zones and read properties
# --------------------------------------------------------------------------------------------------


def recompute_on_cases_changed(
    sender: object, *, cases: Sequence[Case], previous: Mapping[int, Mapping[str, Any]] | None = None, **_kw: object
) -> None:
    """Cases changed: recompute the instances whose zone or read properties changed (same transaction)."""
    changed: dict[int, set[str]] = {}
    for c in cases:
        before = (previous or {}).get(c.pk)
        if before is None:
            continue
        after = c.properties or {}
        keys = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
        if keys:
            changed[c.pk] = keys
    if changed:
        lifecycle.recompute_for_cases(list(changed), changed=changed)


def recompute_on_workers_changed(sender: object, *, workers: Sequence[MobileWorker], **_kw: object) -> None:
    """Mobile workers changed (their time zone may have): recompute their active instances."""
    lifecycle.recompute_for_workers([w.pk for w in workers])


def recompute_on_settings_changed(
    sender: object, *, project: Project, changed: Mapping[str, Any], **_kw: object
) -> None:
    """The project's default time zone changed: recompute the active instances read in the old default
    zone (contacts without a zone of their own; the others keep theirs), in the same transaction."""
    if "default_time_zone" not in changed:
        return
    old_zone = zone_name("", str(changed["default_time_zone"] or ""))
    qs = ScheduleInstance.objects.filter(project=project, active=True, time_zone=old_zone)
    lifecycle.recompute_all(qs, timezone.now())


# --------------------------------------------------------------------------------------------------
# Groups: in use, and members that change without a case changing
# --------------------------------------------------------------------------------------------------


def on_group_deleting(sender: object, *, group: Group, **kwargs: Any) -> None:
    """A group an active or paused broadcast, or an alert, reads is not deleted (GROUP_IN_USE)."""
    live = Broadcast.objects.filter(
        project_id=group.project_id, status__in=(Broadcast.ACTIVE, Broadcast.PAUSED), recipients__group=group.pk
    )
    names = [f"broadcast {pk} “{name}”" for pk, name in live.values_list("pk", "name")[:3]]
    names += [
        f"alert {pk} “{name}”"
        for pk, name in ConditionalAlert.objects.filter(group=group).values_list("pk", "name")[:3]
    ]
    if names:
        raise InputError(
            errors.GROUP_IN_USE,
            f"Group {group.name!r} is the recipients of {', '.join(names)}: cancel or change them first.",
            409,
        )


def on_group_members_changed(sender: object, *, group: Group, **kwargs: Any) -> None:
    """A static group's members, or a dynamic group's conditions, changed: the active alerts for its members
    run over their cases again (broadcasts read the group at each occurrence anyway)."""
    now = timezone.now()
    for alert in ConditionalAlert.objects.filter(group=group, status=ConditionalAlert.ACTIVE):
        runner.request_run(alert, now)
