"""Who a broadcast or an alert reaches: the declaration of a broadcast's recipients (and of an alert's
roles), their rules and normalised form, and the SQL that finds them.

One recipient model for a message, a broadcast and an alert. A broadcast's recipients (`BroadcastRecipientsIn`
as they come in, `BroadcastRecipients` once parsed; a message to more than one contact takes the same) are
the union of: the open cases of a type whose properties equal every filter (exact values); a group's open
cases (`group`: its id; static or dynamic, `casemsg.groups`); the listed case_ids (open or not: a closed
one gets a failed message saying so); the listed mobile workers, or every active one for "all"; the owners
of matching open cases. `recipient_querysets` selects them, in SQL, at the instant asked: a recurring
broadcast asks at each occurrence (`is_dynamic`: its selection can change between two sends; see
`lifecycle.sync_broadcast`). `cases_by_zone` splits case recipients by the zone their local times are read
in. An alert's recipients are roles (`ROLES`) — the case, its owner (`owners_by_key`: a case's ``owner_id``
names its mobile worker by username, or else by id, the digits of its primary key) and its parent case
(`parents`, by ``parent_id``) — as a list, or `AlertRecipientsIn` ``{"roles": [...], "group": id}``: the
alert then starts only for the group's members among its matching cases.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, cast

from django.db import connection
from django.db.models import CharField, Q, QuerySet, TextField
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast
from django.utils import timezone
from pydantic import Field

from casemsg.cases.models import Case
from casemsg.core import errors
from casemsg.core.errors import InputError
from casemsg.groups import queries as group_queries
from casemsg.groups.models import Group
from casemsg.projects.models import Project
from casemsg.scheduling.events import TZ_PROPERTY, zone_for_recipient
from casemsg.scheduling.fields import (
    MAX_CASE_TYPE,
    MAX_LIST,
    MAX_PROPERTY,
    Declaration,
    declared,
    fail,
    listed,
    mapping,
    only,
)
from casemsg.scheduling.models import Broadcast
from casemsg.scheduling.schedules import Schedule
from casemsg.workers.models import MobileWorker

Role = Literal["case", "owner", "parent"]

ROLES: tuple[Role, ...] = ("case", "owner", "parent")


# --------------------------------------------------------------------------------------------------
# The declaration, its rules and its normalised form
# --------------------------------------------------------------------------------------------------


class CaseSelectionIn(Declaration):
    case_type: str = Field(max_length=MAX_CASE_TYPE, examples=["mother"])
    filters: dict[str, str | int | float] | None = Field(None, examples=[{"district": "north"}])


class BroadcastRecipientsIn(Declaration):
    """The union of: open cases of `case_type` whose properties equal every `filters` value; a `group`'s
    open cases (static or dynamic, by id); the listed `case_ids`; `mobile_workers` (ids or usernames, or
    "all" active ones); the owners of matching open cases (`owners_of`). A recurring broadcast reads its
    recipients at each occurrence."""

    case_type: str | None = Field(None, max_length=MAX_CASE_TYPE, examples=["mother"])
    filters: dict[str, str | int | float] | None = Field(
        None, description="property → exact value", examples=[{"district": "north"}]
    )
    group: int | None = Field(None, description="a group's id: its open cases, as they are at each send")
    case_ids: list[str] | None = Field(None, examples=[["c-1", "c-2"]])
    mobile_workers: list[int | str] | str | None = Field(
        None, description='ids or usernames, or "all"', examples=["all"]
    )
    owners_of: CaseSelectionIn | None = None


class AlertRecipientsIn(Declaration):
    """An alert's recipients with a group: the `roles` (case, owner, parent) of the matching cases that are
    members of `group`."""

    roles: list[str] = Field(description=" | ".join(ROLES), examples=[["case"]])
    group: int | None = Field(None, description="a group's id: only its members among the matching cases")


@dataclass(frozen=True)
class CaseSelection:
    case_type: str
    filters: Mapping[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"case_type": self.case_type, "filters": dict(self.filters)}


@dataclass(frozen=True)
class BroadcastRecipients:
    """Who a broadcast goes to: the union of open cases of a type matching property filters, listed
    cases (by case_id), mobile workers (ids or usernames, or "all" active ones), and the owners of
    matching open cases (a case's owner_id names a mobile worker by username, or by id)."""

    cases: CaseSelection | None = None
    case_ids: tuple[str, ...] = ()
    mobile_workers: tuple[int | str, ...] | Literal["all"] = ()
    owners_of: CaseSelection | None = None
    group: int | None = None

    @property
    def is_dynamic(self) -> bool:
        """Whether who it selects can change without the broadcast changing (a case type, a group, case
        owners, every mobile worker): then a recurring broadcast reads it again at each occurrence."""
        return (
            self.cases is not None
            or self.group is not None
            or self.owners_of is not None
            or self.mobile_workers == "all"
        )

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.cases is not None:
            out.update(self.cases.as_json())
        if self.group is not None:
            out["group"] = self.group
        if self.case_ids:
            out["case_ids"] = list(self.case_ids)
        if self.mobile_workers:
            out["mobile_workers"] = self.mobile_workers if self.mobile_workers == "all" else list(self.mobile_workers)
        if self.owners_of is not None:
            out["owners_of"] = self.owners_of.as_json()
        return out


def _selection(d: Mapping[str, Any], where: str) -> CaseSelection:
    case_type = d.get("case_type")
    if not isinstance(case_type, str) or not case_type.strip() or len(case_type) > MAX_CASE_TYPE:
        raise fail(f"{where}.case_type must be a case type (1 to 64 characters).")
    filters: dict[str, str] = {}
    for key, value in mapping(d.get("filters") or {}, f"{where}.filters").items():
        if not isinstance(key, str) or not key.strip() or len(key) > MAX_PROPERTY:
            raise fail(f"{where}.filters: {key!r} is not a property name.")
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise fail(f"{where}.filters.{key} must be a string or a number (the exact property value).")
        filters[key] = str(value)
    return CaseSelection(case_type, filters)


def parse_broadcast_recipients(data: object) -> BroadcastRecipients:
    d = mapping(data, "recipients")
    only(d, declared(BroadcastRecipientsIn), "recipients")
    cases = _selection(d, "recipients") if d.get("case_type") is not None or d.get("filters") else None
    case_ids = tuple(
        dict.fromkeys(
            _case_id(v, f"recipients.case_ids[{i}]")
            for i, v in enumerate(listed(d.get("case_ids", []), "recipients.case_ids", MAX_LIST))
        )
    )
    workers: tuple[int | str, ...] | Literal["all"] = ()
    raw_workers = d.get("mobile_workers")
    if raw_workers == "all":
        workers = "all"
    elif raw_workers is not None:
        workers = tuple(
            dict.fromkeys(
                _worker_ref(v, f"recipients.mobile_workers[{i}]")
                for i, v in enumerate(listed(raw_workers, "recipients.mobile_workers", MAX_LIST))
            )
        )
    owners_of = None
    if d.get("owners_of") is not None:
        o = mapping(d["owners_of"], "recipients.owners_of")
        only(o, declared(CaseSelectionIn), "recipients.owners_of")
        owners_of = _selection(o, "recipients.owners_of")
    group = None
    if d.get("group") is not None:
        group = _group_ref(d["group"], "recipients.group")
    out = BroadcastRecipients(cases, case_ids, workers, owners_of, group)
    if not (cases or case_ids or workers or owners_of or group):
        raise fail(
            "recipients must name someone: case_type (with filters), group, case_ids, mobile_workers or owners_of."
        )
    return out


def _group_ref(value: object, where: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    raise fail(f"{where} must be a group's id (a whole number).")


def check_group(project: Project, group: int | None) -> None:
    """A group the recipients name must be one of the project's (404 GROUP_NOT_FOUND)."""
    if group is not None and group_queries.group(project, group) is None:
        raise InputError(errors.GROUP_NOT_FOUND, f"recipients.group: the project has no group {group}.", 404)


def _case_id(value: object, where: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 64:
        raise fail(f"{where} must be a case_id (1 to 64 characters).")
    return value


def _worker_ref(value: object, where: str) -> int | str:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    if isinstance(value, str) and value.strip() and len(value) <= 150:
        return value
    raise fail(f"{where} must be a mobile worker's id or username.")


def broadcast_recipients_from_json(data: Mapping[str, Any]) -> BroadcastRecipients:
    return parse_broadcast_recipients(data)


def parse_alert_recipients(data: object) -> tuple[Role, ...]:
    """An alert's recipients' roles: a non-empty list of "case", "owner" (its mobile worker), "parent" (its
    parent case), or those in `{"roles": [...], "group": id}` (see `alert_group`)."""
    where = "recipients"
    if isinstance(data, Mapping):
        only(data, declared(AlertRecipientsIn), "recipients")
        data, where = data.get("roles"), "recipients.roles"
    values = listed(data, where, len(ROLES) * 2)
    roles: list[Role] = []
    for i, v in enumerate(values):
        if v not in ROLES:
            raise fail(f"{where}[{i}] must be one of {', '.join(ROLES)}, not {v!r}.")
        if v not in roles:
            roles.append(cast(Role, v))
    if not roles:
        raise fail(f"{where} needs at least one of {', '.join(ROLES)}.")
    return tuple(roles)


def alert_group(data: object) -> int | None:
    """The group an alert's recipients name (`{"roles": [...], "group": id}`), or None (a list of roles)."""
    if isinstance(data, Mapping) and data.get("group") is not None:
        return _group_ref(data["group"], "recipients.group")
    return None


def alert_recipients_json(roles: Sequence[str], group: int | None) -> list[str] | dict[str, Any]:
    """An alert's recipients as the API shows them: the list of roles, or {"roles", "group"} with a group."""
    return {"roles": list(roles), "group": group} if group is not None else list(roles)


# --------------------------------------------------------------------------------------------------
# A broadcast's recipients, in SQL
# --------------------------------------------------------------------------------------------------


def group_cases(project: Project, group: int | None, now: datetime | None = None) -> Q:
    """A filter on Case: the open members of the project's group `group` at `now` (none when it is gone)."""
    found = Group.objects.filter(project=project, pk=group or 0).select_related("project").first()
    if found is None:
        return Q(pk__in=[])
    return group_queries.recipients_q(found, now or timezone.now())


def _matching_cases(project: Project, sel: CaseSelection) -> Q:
    q = Q(case_type=sel.case_type, closed=False)
    for i, value in enumerate(sel.filters.values()):
        q &= Q(**{f"_prop{i}": value})
    return q


def _with_filters(qs: QuerySet[Case], sel: CaseSelection) -> QuerySet[Case]:
    for i, key in enumerate(sel.filters):
        # KeyTextTransform takes the name literally (see casemsg.cases.queries)
        qs = qs.annotate(**{f"_prop{i}": Cast(KeyTextTransform(key, "properties"), output_field=TextField())})
    return qs


def recipient_querysets(
    broadcast: Broadcast, now: datetime | None = None
) -> tuple[QuerySet[Case] | None, QuerySet[MobileWorker] | None]:
    """The broadcast's case recipients and mobile-worker recipients as two querysets (None: none of that
    kind), as they are at `now` (a dynamic group's date conditions read today's date). Open cases of the
    type matching every filter (exact values), a group's open cases, plus the listed case_ids (open or
    not: a closed one gets a failed message saying so); the listed workers, or every active one for
    "all", plus the owners of matching open cases."""
    project = broadcast.project
    who = broadcast_recipients_from_json(broadcast.recipients)
    cases: QuerySet[Case] | None = None
    if who.cases is not None or who.case_ids or who.group is not None:
        qs = Case.objects.filter(project=project)
        q = Q(pk__in=[])
        if who.cases is not None:
            qs = _with_filters(qs, who.cases)
            q |= _matching_cases(project, who.cases)
        if who.group is not None:
            q |= group_cases(project, who.group, now)
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


class Selected:
    """A broadcast's case recipients at one instant, materialised once in a temporary table of (id, raw
    `time_zone` property): the selection's SQL (a case type with filters, a group's conditions) runs once —
    one INSERT … SELECT —, and the instances are then started and ended against this table, whose real size
    the planner knows (PostgreSQL: ANALYZE). Without it, each anti-join would run the selection again with
    the planner's guess of its size: a condition on a JSON property is guessed at a row or two, and a
    nested loop over a million cases follows. Use `selected_cases` (a context manager) inside a transaction."""

    TABLE = "casemsg_selected_cases"

    def __init__(self, cases: QuerySet[Case]) -> None:
        self.cases = cases
        self.table = connection.ops.quote_name(self.TABLE)
        self.count = 0
        self._raw: list[str | None] | None = None

    def create(self) -> None:
        tz = Cast(KeyTextTransform(TZ_PROPERTY, "properties"), output_field=TextField())
        sql, params = self.cases.annotate(_tz=tz).order_by().values("pk", "_tz").query.sql_with_params()
        with connection.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {self.table}")
            cur.execute(f"CREATE TEMPORARY TABLE {self.table} (id bigint NOT NULL, tz text)")
            cur.execute(f"INSERT INTO {self.table} (id, tz) {sql}", params)
            self.count = max(0, int(cur.rowcount))
            if connection.vendor == "postgresql":
                cur.execute(f"ANALYZE {self.table}")

    def drop(self) -> None:
        with connection.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {self.table}")

    def raw_zones(self) -> list[str | None]:
        """The distinct raw `time_zone` values of the selected cases (None: the property is missing)."""
        if self._raw is None:
            with connection.cursor() as cur:
                cur.execute(f"SELECT DISTINCT tz FROM {self.table}")
                self._raw = [row[0] for row in cur.fetchall()]
        return self._raw

    def by_zone(self, project: Project, schedule: Schedule) -> list[tuple[str, str, list[Any]]]:
        """(zone, SQL over the table aliased `s`, its params) per zone the cases' local times are read in:
        one for the schedule's named zone, else one per zone their `time_zone` values fall back to."""
        if schedule.time_zone:
            return [(schedule.time_zone, "1 = 1", [])]
        raw_by_zone: dict[str, list[str | None]] = defaultdict(list)
        for raw in self.raw_zones():
            raw_by_zone[zone_for_recipient(raw or "", project, schedule)].append(raw)
        out = []
        for zone, raws in sorted(raw_by_zone.items()):
            named = [r for r in raws if r is not None]
            parts = [f"s.tz IN ({', '.join(['%s'] * len(named))})"] if named else []
            if None in raws:
                parts.append("s.tz IS NULL")
            out.append((zone, "(" + " OR ".join(parts) + ")", named))
        return out

    def zones(self, project: Project, schedule: Schedule) -> set[str]:
        return {zone for zone, _sql, _params in self.by_zone(project, schedule)}


@contextmanager
def selected_cases(cases: QuerySet[Case] | None) -> Iterator[Selected | None]:
    """`Selected` for these case recipients (None: the broadcast has no case recipients); the table is
    dropped afterwards (an error rolls it back with the transaction)."""
    if cases is None:
        yield None
        return
    sel = Selected(cases)
    sel.create()
    yield sel
    sel.drop()


def cases_by_zone(cases: QuerySet[Case], project: Project, schedule: Schedule) -> dict[str, QuerySet[Case]]:
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
