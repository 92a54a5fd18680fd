"""The only write path for groups: create, change, delete a group; add and remove a static group's members
(by case id, or a CSV file's column of case ids). One transaction per change.

The bodies are declared once here (`GroupIn`, `GroupPatch`, `MembersIn`, with `conditions.ConditionIn`):
the API takes them as its request bodies and the pages' forms build them. What the shape does not say is
checked by `parse_group`: a name the project already uses (GROUP_EXISTS), a dynamic group without a case
type (CASE_TYPE_REQUIRED), a bad condition (INVALID_CONDITION, naming it), members added to a dynamic group
(GROUP_IS_DYNAMIC).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from django.db import IntegrityError, transaction
from django.db.models import ProtectedError
from django.utils import timezone
from pydantic import BaseModel, ConfigDict, Field

from casemsg.cases.models import Case
from casemsg.core import bulk, errors, uploads
from casemsg.core.errors import InputError
from casemsg.groups import conditions, queries
from casemsg.groups.conditions import ConditionIn
from casemsg.groups.models import Group, GroupMember
from casemsg.groups.signals import group_deleting, group_members_changed
from casemsg.projects.models import Project

MAX_NAME: Final = 200
MAX_DESCRIPTION: Final = 2000
MAX_CASE_TYPE: Final = 64
MAX_MEMBERS_PER_CALL: Final = 1000  # case ids in one add or remove
MAX_IMPORT_ROWS: Final = 100_000  # rows of a members CSV
MAX_IMPORT_BYTES: Final = 10 * 1024 * 1024  # a members CSV (413 FILE_TOO_LARGE)
_CHUNK = 1000


# --------------------------------------------------------------------------------------------------
# The declarations
# --------------------------------------------------------------------------------------------------


class GroupPatch(BaseModel):
    """Any of a group's fields; the others keep their values (its kind never changes)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"name": "Mothers, North"}]})

    name: str | None = Field(None, max_length=MAX_NAME)
    description: str | None = Field(None, max_length=MAX_DESCRIPTION)
    case_type: str | None = Field(None, max_length=MAX_CASE_TYPE, description="dynamic groups: the case type")
    conditions: list[ConditionIn] | None = Field(None, description="dynamic groups: all must hold")


class GroupIn(GroupPatch):
    """A group: `static` (its cases are listed: `case_ids`, then added and removed by hand, by CSV or through
    the API) or `dynamic` (the open cases of `case_type` meeting every condition, evaluated each time it is
    read: a broadcast's occurrence, a page, the preview)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "Mothers due soon, North",
                    "kind": "dynamic",
                    "case_type": "mother",
                    "conditions": [
                        {"property": "district", "operator": "equals", "value": "North"},
                        {"property": "edd", "operator": "within_next_days", "value": 30},
                        {"contact": "can_receive_sms"},
                    ],
                }
            ]
        },
    )

    name: str = Field(max_length=MAX_NAME)
    kind: str = Field("static", max_length=8, description="static | dynamic")
    case_ids: list[str] | None = Field(None, description="static groups: the first members (up to 1,000)")


class MembersIn(BaseModel):
    """Cases to add to (or remove from) a static group, by case id (up to 1,000)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"case_ids": ["c-1", "c-2"]}]})

    case_ids: list[str] = Field(max_length=MAX_MEMBERS_PER_CALL)


# --------------------------------------------------------------------------------------------------
# Groups
# --------------------------------------------------------------------------------------------------


def _invalid(message: str) -> InputError:
    return InputError(errors.VALIDATION_ERROR, message)


def _mapping(data: object, what: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise _invalid(f"{what} must be an object.")
    return data


def _only(d: Mapping[str, Any], allowed: Iterable[str], what: str) -> None:
    unknown = sorted(str(k) for k in d if k not in set(allowed))
    if unknown:
        raise _invalid(f"{what}: unknown field(s) {', '.join(unknown)}.")


def _name(value: object) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME or "\x00" in value:
        raise _invalid(f"name must be 1 to {MAX_NAME} characters.")
    return value.strip()


def _description(value: object) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > MAX_DESCRIPTION or "\x00" in value:
        raise _invalid(f"description must be text of at most {MAX_DESCRIPTION} characters.")
    return value


def _case_type(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InputError(errors.CASE_TYPE_REQUIRED, "A dynamic group needs the case type its conditions apply to.")
    if len(value) > MAX_CASE_TYPE or "\x00" in value:
        raise _invalid(f"case_type must be at most {MAX_CASE_TYPE} characters.")
    return value


@dataclass(frozen=True)
class GroupSpec:
    name: str
    description: str
    kind: str
    case_type: str = ""
    conditions: list[dict[str, Any]] = field(default_factory=list)


def parse_group(data: object) -> GroupSpec:
    """Validate a whole group body (`GroupIn`'s fields, less the first members)."""
    d = _mapping(data, "The group")
    _only(d, GroupIn.model_fields, "The group")
    kind = d.get("kind") or Group.STATIC
    if kind not in Group.KINDS:
        raise _invalid(f"kind must be static or dynamic, not {kind!r}.")
    name, description = _name(d.get("name")), _description(d.get("description"))
    if kind == Group.STATIC:
        if d.get("conditions") or d.get("case_type"):
            raise _invalid("A static group lists its cases: case_type and conditions are for dynamic groups.")
        return GroupSpec(name, description, kind)
    if d.get("case_ids"):
        raise _invalid("A dynamic group's members are the cases meeting its conditions: case_ids is for static groups.")
    parsed = conditions.parse_conditions(d.get("conditions") or [])
    return GroupSpec(name, description, kind, _case_type(d.get("case_type")), [c.as_json() for c in parsed])


def preview_definition(project: Project, data: object, sample: int = queries.SAMPLE) -> tuple[queries.Preview, str]:
    """What a dynamic group with this body would hold now, and the group in words; nothing is saved."""
    spec = parse_group(data)
    if spec.kind != Group.DYNAMIC:
        raise _invalid("Only a dynamic group can be previewed before it is saved.")
    draft = Group(project=project, name=spec.name, kind=spec.kind, case_type=spec.case_type, conditions=spec.conditions)
    return queries.preview(draft, sample=sample), queries.describe(draft)


def _exists(project: Project, name: str) -> InputError:
    return InputError(errors.GROUP_EXISTS, f"The project already has a group named {name!r}.", 409)


def create_group(project: Project, data: object, now: datetime | None = None) -> Group:
    """Store a group (and a static group's first members, `case_ids`), in one transaction."""
    now = now or timezone.now()
    spec = parse_group(data)
    first = _case_ids(_mapping(data, "The group").get("case_ids") or [], "case_ids")
    try:
        with transaction.atomic():
            g = Group.objects.create(
                project=project,
                name=spec.name,
                description=spec.description,
                kind=spec.kind,
                case_type=spec.case_type,
                conditions=spec.conditions,
                created_on=now,
                modified_on=now,
            )
            if first:
                _add(g, first, now)
    except IntegrityError:
        raise _exists(project, spec.name) from None
    return g


def _group_json(g: Group) -> dict[str, Any]:
    out: dict[str, Any] = {"name": g.name, "description": g.description, "kind": g.kind}
    if g.is_dynamic:
        out.update(case_type=g.case_type, conditions=g.conditions)
    return out


def update_group(group: Group, data: object, now: datetime | None = None) -> Group:
    """Change any of name, description and, for a dynamic group, case_type and conditions."""
    now = now or timezone.now()
    changes = _mapping(data, "The group")
    _only(changes, GroupPatch.model_fields, "The group")
    spec = parse_group({**_group_json(group), **{k: v for k, v in changes.items() if v is not None}})
    try:
        with transaction.atomic():
            g = Group.objects.select_for_update().get(pk=group.pk)
            rule_changed = (spec.case_type, spec.conditions) != (g.case_type, g.conditions)
            g.name, g.description, g.case_type, g.conditions = (
                spec.name,
                spec.description,
                spec.case_type,
                spec.conditions,
            )
            g.modified_on = now
            g.save()
            if rule_changed:
                group_members_changed.send(Group, group=g)
    except IntegrityError:
        raise _exists(group.project, spec.name) from None
    for f in Group._meta.concrete_fields:
        setattr(group, f.attname, getattr(g, f.attname))
    return group


def delete_group(group: Group) -> None:
    """Delete the group (and a static group's member rows; the cases stay). Refused while an active or
    paused broadcast, or an alert, uses it (GROUP_IN_USE, 409)."""
    with transaction.atomic():
        g = Group.objects.select_for_update().filter(pk=group.pk).first()
        if g is None:
            return
        group_deleting.send(Group, group=g)
        try:
            with transaction.atomic():
                g.delete()
        except ProtectedError:
            raise InputError(
                errors.GROUP_IN_USE, f"Group {g.name!r} is the recipients of an alert: change the alert first.", 409
            ) from None


# --------------------------------------------------------------------------------------------------
# A static group's members
# --------------------------------------------------------------------------------------------------


@dataclass
class MembersResult:
    """What an add, a remove or an import did."""

    added: int = 0  # new members (add, import)
    removed: int = 0  # members removed
    unchanged: int = 0  # already members (add) or not members (remove)
    not_found: int = 0  # case ids no case of the project has
    not_found_ids: list[str] = field(default_factory=list)  # the first 100 of them
    rows: int = 0  # rows read (import)

    def as_dict(self) -> dict[str, Any]:
        return {
            "added": self.added,
            "removed": self.removed,
            "unchanged": self.unchanged,
            "not_found": self.not_found,
            "not_found_ids": self.not_found_ids,
        }


def _static(group: Group) -> None:
    if group.is_dynamic:
        raise InputError(
            errors.GROUP_IS_DYNAMIC,
            f"Group {group.name!r} is dynamic: its members are the cases meeting its conditions; change those.",
            409,
        )


def _case_ids(raw: object, where: str) -> list[str]:
    if not isinstance(raw, list) or len(raw) > MAX_MEMBERS_PER_CALL:
        raise _invalid(f"{where} must be a list of at most {MAX_MEMBERS_PER_CALL:,} case ids.")
    out = []
    for i, v in enumerate(raw):
        if not isinstance(v, str) or not v.strip() or len(v) > 64 or "\x00" in v:
            raise _invalid(f"{where}[{i}] must be a case id (1 to 64 characters).")
        out.append(v)
    return list(dict.fromkeys(out))


def _resolve(project_id: int, ids: Sequence[str], result: MembersResult) -> list[int]:
    """The pks of the project's cases with these case ids (one query); counts the others."""
    found = dict(Case.objects.filter(project_id=project_id, case_id__in=list(ids)).values_list("case_id", "pk"))
    for cid in ids:
        if cid not in found:
            result.not_found += 1
            if len(result.not_found_ids) < 100:
                result.not_found_ids.append(cid)
    return list(found.values())


def _add(group: Group, ids: Sequence[str], now: datetime, result: MembersResult | None = None) -> MembersResult:
    result = result if result is not None else MembersResult()
    pks = _resolve(group.project_id, ids, result)
    have = set(GroupMember.objects.filter(group=group, case_id__in=pks).values_list("case_id", flat=True))
    new = [pk for pk in pks if pk not in have]
    bulk.insert_rows(
        GroupMember, [{"group_id": group.pk, "case_id": pk, "added_on": now} for pk in new], ignore_conflicts=True
    )
    result.added += len(new)
    result.unchanged += len(pks) - len(new)
    return result


def _touched(group: Group, now: datetime, result: MembersResult) -> None:
    if result.added or result.removed:
        Group.objects.filter(pk=group.pk).update(modified_on=now)
        group_members_changed.send(Group, group=group)


def add_members(group: Group, case_ids: object, now: datetime | None = None) -> MembersResult:
    """Add the project's cases with these case ids (up to 1,000) to a static group; unknown ids are counted
    and listed, not refused."""
    now = now or timezone.now()
    _static(group)
    ids = _case_ids(case_ids, "case_ids")
    with transaction.atomic():
        result = _add(group, ids, now)
        _touched(group, now, result)
    return result


def remove_members(group: Group, case_ids: object, now: datetime | None = None) -> MembersResult:
    """Remove these cases (by case id, up to 1,000) from a static group."""
    now = now or timezone.now()
    _static(group)
    ids = _case_ids(case_ids, "case_ids")
    result = MembersResult()
    with transaction.atomic():
        pks = _resolve(group.project_id, ids, result)
        removed, _ = GroupMember.objects.filter(group=group, case_id__in=pks).delete()
        result.removed = removed
        result.unchanged = len(pks) - removed
        _touched(group, now, result)
    return result


def _csv_ids(lines: Iterable[str]) -> Iterator[str]:
    """The case ids of a CSV: its `case_id` column when the first row names one, else its first column."""
    reader = csv.reader(lines)
    column = 0
    first = True
    for row in reader:
        if not row:
            continue
        if first:
            first = False
            names = [c.strip().lstrip("\ufeff").lower() for c in row]
            if "case_id" in names:
                column = names.index("case_id")
                continue
        value = row[column].strip() if column < len(row) else ""
        if value:
            yield value


def import_members(group: Group, data: bytes | str, now: datetime | None = None) -> MembersResult:
    """Add the cases a CSV lists (a `case_id` column, or the first column) to a static group, in chunks of
    1,000 (a few queries each), in one transaction. At most 100,000 rows; a longer file is refused whole
    (TOO_MANY_ROWS) before anything is written. Unknown case ids are counted and the first 100 listed."""
    now = now or timezone.now()
    _static(group)
    uploads.check_size(len(data), MAX_IMPORT_BYTES, "The members file")
    text = data.decode("utf-8-sig", errors="replace") if isinstance(data, bytes) else data
    result = MembersResult()
    ids = list(dict.fromkeys(_csv_ids(io.StringIO(text, newline=""))))
    if len(ids) > MAX_IMPORT_ROWS:
        raise InputError(
            errors.TOO_MANY_ROWS, f"A members file may list at most {MAX_IMPORT_ROWS:,} cases; this one lists more."
        )
    result.rows = len(ids)
    with transaction.atomic():
        for n, cid in enumerate(ids, 1):
            if len(cid) > 64 or "\x00" in cid:
                raise _invalid(f"Case {n} of the file: {cid[:70]!r} is not a case id (1 to 64 characters).")
        for start in range(0, len(ids), _CHUNK):
            _add(group, ids[start : start + _CHUNK], now, result)
        _touched(group, now, result)
    return result
