"""Who a broadcast or an alert reaches, in SQL.

A broadcast's recipients (`recipient_querysets`): the open cases of a type whose properties equal every
filter (exact values), plus the listed case_ids (open or not: a closed one gets a failed message saying
so); the listed mobile workers, or every active one for "all", plus the owners of matching open cases.
`cases_by_zone` splits case recipients by the zone their local times are read in. An alert's roles
(`owners_by_key`, `parents`): a case's ``owner_id`` names its mobile worker by username, or else by id
(the digits of its primary key); its ``parent_id`` names its parent case.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from django.db.models import CharField, Q, QuerySet, TextField
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast

from casemsg.cases.models import Case
from casemsg.projects.models import Project
from casemsg.scheduling import specs
from casemsg.scheduling.events import TZ_PROPERTY, zone_for_recipient
from casemsg.scheduling.models import Broadcast
from casemsg.workers.models import MobileWorker


# --------------------------------------------------------------------------------------------------
# Broadcast recipients
# --------------------------------------------------------------------------------------------------


def _matching_cases(project: Project, sel: specs.CaseSelection) -> Q:
    q = Q(case_type=sel.case_type, closed=False)
    for i, value in enumerate(sel.filters.values()):
        q &= Q(**{f"_prop{i}": value})
    return q


def _with_filters(qs: QuerySet[Case], sel: specs.CaseSelection) -> QuerySet[Case]:
    for i, key in enumerate(sel.filters):
        # KeyTextTransform takes the name literally (see casemsg.cases.queries)
        qs = qs.annotate(**{f"_prop{i}": Cast(KeyTextTransform(key, "properties"), output_field=TextField())})
    return qs


def recipient_querysets(broadcast: Broadcast) -> tuple[QuerySet[Case] | None, QuerySet[MobileWorker] | None]:
    """The broadcast's case recipients and mobile-worker recipients as two querysets (None: none of that
    kind). Open cases of the type matching every filter (exact values), plus the listed case_ids (open or
    not: a closed one gets a failed message saying so); the listed workers, or every active one for
    "all", plus the owners of matching open cases."""
    project = broadcast.project
    who = specs.broadcast_recipients_from_json(broadcast.recipients)
    cases: QuerySet[Case] | None = None
    if who.cases is not None or who.case_ids:
        qs = Case.objects.filter(project=project)
        q = Q(pk__in=[])
        if who.cases is not None:
            qs = _with_filters(qs, who.cases)
            q |= _matching_cases(project, who.cases)
        if who.case_ids:
            q |= Q(case_id__in=list(who.case_ids))
        cases = qs.filter(q)
    workers: QuerySet[MobileWorker] | None = None
    if who.mobile_workers or who.owners_of is not None:
        wq = Q(pk__in=[])
        if who.mobile_workers == "all":
            wq |= Q(active=True)
        elif who.mobile_workers:
            wq |= Q(pk__in=[w for w in who.mobile_workers if isinstance(w, int)])
            wq |= Q(username__in=[w for w in who.mobile_workers if isinstance(w, str)])
        wqs = MobileWorker.objects.filter(project=project)
        if who.owners_of is not None:
            owner_ids = (
                _with_filters(Case.objects.filter(project=project), who.owners_of)
                .filter(_matching_cases(project, who.owners_of))
                .exclude(owner_id="")
                .values("owner_id")
            )
            wqs = wqs.annotate(_pk_text=Cast("pk", CharField()))
            wq |= Q(username__in=owner_ids) | Q(_pk_text__in=owner_ids)
        workers = wqs.filter(wq)
    return cases, workers


def cases_by_zone(cases: QuerySet[Case], project: Project, schedule: specs.Schedule) -> dict[str, QuerySet[Case]]:
    """The case recipients split by the zone their local times are read in: all of them when the schedule
    names a zone; otherwise by their `time_zone` property (one DISTINCT query: there are few distinct
    values, and an invalid one falls back like any, see `zone_for_recipient`)."""
    if schedule.time_zone:
        return {schedule.time_zone: cases}
    tz = Cast(KeyTextTransform(TZ_PROPERTY, "properties"), output_field=TextField())
    annotated = cases.annotate(_tz=tz)
    raw_by_zone: dict[str, list[str | None]] = defaultdict(list)
    for raw in annotated.order_by().values_list("_tz", flat=True).distinct():
        raw_by_zone[zone_for_recipient(raw or "", project, schedule)].append(raw)
    out: dict[str, QuerySet[Case]] = {}
    for zone, raws in raw_by_zone.items():
        named = [r for r in raws if r is not None]
        q = Q(_tz__in=named) if named else Q(pk__in=[])
        if None in raws:
            q |= Q(_tz__isnull=True)
        out[zone] = annotated.filter(q)
    return out


# --------------------------------------------------------------------------------------------------
# An alert's roles: a case's owner and parent
# --------------------------------------------------------------------------------------------------


def owners_by_key(cases: Sequence[Case], project: Project) -> dict[str, MobileWorker]:
    """Mobile workers named by the cases' owner_id: by username first, else by id."""
    keys = {c.owner_id for c in cases if c.owner_id}
    if not keys:
        return {}
    ids = [int(k) for k in keys if k.isdigit()]
    found: dict[str, MobileWorker] = {}
    rows = MobileWorker.objects.filter(Q(username__in=keys) | Q(pk__in=ids), project=project)
    for w in sorted(rows, key=lambda w: w.username not in keys):  # usernames win over ids
        if w.username in keys:
            found.setdefault(w.username, w)
        if str(w.pk) in keys:
            found.setdefault(str(w.pk), w)
    return found


def parents(cases: Sequence[Case], project: Project) -> dict[str, Case]:
    """Parent cases named by the cases' parent_id (their case_id)."""
    ids = {c.parent_id for c in cases if c.parent_id}
    if not ids:
        return {}
    return {p.case_id: p for p in Case.objects.filter(project=project, case_id__in=ids)}
