"""The only write path for cases. Every change is announced through the after-change hook
(`casemsg.cases.signals`) in the same transaction, so the phone registry, consent and alerts follow it.

A bad contact property (an invalid phone number, an unknown time zone) never rejects a case change:
the case is saved, nothing is lost, and the contact status explains the problem.
Reading cases (the lists of the API and the pages) is `casemsg.cases.queries`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from casemsg.cases.models import Case, new_case_id
from casemsg.cases.signals import cases_changed, cases_deleting
from casemsg.core import bulk, errors, phone
from casemsg.core.errors import InputError
from casemsg.projects.models import Project

MAX_BULK = 1000
_FIELDS = ("case_type", "name", "external_id", "owner_id", "parent_id")
_MAX_LEN = {"case_id": 64, "case_type": 64, "name": 255, "external_id": 255, "owner_id": 64, "parent_id": 64}


@dataclass
class CaseChange:
    """One create-or-update, as the API, the bulk path and the CSV importer describe it."""

    case_id: str | None = None
    case_type: str | None = None
    name: str | None = None
    external_id: str | None = None
    owner_id: str | None = None
    parent_id: str | None = None
    properties: Mapping[str, object | None] = field(default_factory=dict)
    closed: bool | None = None


def _clean_value(key: str, value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, str) and "\x00" in value:
        # PostgreSQL cannot store NUL in text or JSON; refuse it on every database alike.
        raise InputError(errors.INVALID_PROPERTY, f"Property '{key}' contains a NUL character.")
    if isinstance(value, int | float | str):
        return str(value)
    raise InputError(errors.INVALID_PROPERTY, f"Property '{key}' must be a string, number or null.")


def validate(change: CaseChange, creating: bool) -> None:
    if creating and not (change.case_type or "").strip():
        raise InputError(errors.CASE_TYPE_REQUIRED, "case_type is required to create a case.")
    for f, limit in _MAX_LEN.items():
        v = getattr(change, f)
        if v is not None and len(str(v)) > limit:
            raise InputError(errors.VALUE_TOO_LONG, f"{f} is longer than {limit} characters.")
        if v is not None and "\x00" in str(v):
            raise InputError(errors.INVALID_VALUE, f"{f} contains a NUL character.")
    name_prop = change.properties.get("name")  # the `name` property sets the case's own name
    if name_prop is not None and len(str(name_prop)) > _MAX_LEN["name"]:
        raise InputError(errors.VALUE_TOO_LONG, f"name is longer than {_MAX_LEN['name']} characters.")
    if change.case_id is not None and not str(change.case_id).strip():
        raise InputError(errors.INVALID_CASE_ID, "case_id must not be blank.")
    for key in change.properties:
        if not isinstance(key, str) or not key.strip() or len(key) > 255 or "\x00" in key:
            raise InputError(errors.INVALID_PROPERTY, f"Property name '{key}' is not allowed.")
        _clean_value(key, change.properties[key])


# The seeds' consent property: `1` records consent (and two-way verification) for the number it was set for.
VERIFIED = "contact_phone_number_is_verified"
PHONE = "contact_phone_number"


def _apply(case: Case, change: CaseChange, project: Project, now) -> None:
    before_number = (case.properties or {}).get(PHONE) if case.pk is not None else None
    for f in _FIELDS:
        v = getattr(change, f)
        if v is not None:
            setattr(case, f, str(v))
    props = dict(case.properties or {})
    for key, value in change.properties.items():
        v = _clean_value(key, value)
        if key == "name":  # the seeds list `name` as a case property; it is the case's own name here
            case.name = v or ""
            continue
        if v is None:
            props.pop(key, None)
        else:
            props[key] = v
    if project.default_country and PHONE in change.properties and props.get(PHONE):
        # A local number (0711 222 333) is stored as the project's default country's: 254711222333. Every
        # write of a case comes here (the API, bulk, CSV import, the pages, source sync, keywords, surveys).
        local = phone.local_fix(props[PHONE], project.default_country)
        if local is not None:
            props[PHONE] = local.number
    if project.auto_normalize_phone_numbers and props.get(PHONE):
        chk = phone.check(props[PHONE], auto_fix=True)
        if chk.ok:
            props[PHONE] = chk.number
    if (
        case.pk is not None
        and VERIFIED in props
        and VERIFIED not in change.properties
        and props.get(PHONE) != before_number
        and phone.number_key(props.get(PHONE)) != phone.number_key(before_number)
    ):
        # Consent belongs to the number, not to the case: a new number starts with what it has earned
        # itself, nothing (docs/security.md, "Consent"). Set the flag again in the same change to record
        # consent for the new number (a ledger row names who did).
        props.pop(VERIFIED)
    case.properties = props
    if change.closed is not None and change.closed != case.closed:
        case.closed = change.closed
        case.closed_on = now if change.closed else None
    case.modified_on = now


def create_case(project: Project, change: CaseChange) -> Case:
    return bulk_upsert(project, [change], require_new=True)[0]


def update_case(project: Project, case: Case, change: CaseChange, consent_source: str = "worker_form") -> Case:
    """`consent_source`: who records a consent this change makes (the opt-in survey writes its own
    ledger row and passes "")."""
    validate(change, creating=False)
    now = timezone.now()
    with transaction.atomic():
        case = Case.objects.select_for_update().get(pk=case.pk)
        previous = {case.pk: dict(case.properties or {})}
        _apply(case, change, project, now)
        case.save()
        cases_changed.send(Case, project=project, cases=[case], created=[], previous=previous, source=consent_source)
    return case


def set_closed(project: Project, case: Case, closed: bool) -> Case:
    return update_case(project, case, CaseChange(closed=closed))


def delete_case(project: Project, case: Case) -> None:
    with transaction.atomic():
        cases_deleting.send(Case, project=project, cases=[case])
        case.delete()


def bulk_upsert(
    project: Project, changes: Sequence[CaseChange], require_new: bool = False, source: str = "worker_form"
) -> list[Case]:
    """Create or update up to MAX_BULK cases in one transaction; returns them in input order."""
    if len(changes) > MAX_BULK:
        raise InputError(errors.TOO_MANY_CASES, f"At most {MAX_BULK} cases per call; got {len(changes)}.")
    ids = [c.case_id for c in changes if c.case_id]
    if len(set(ids)) != len(ids):
        raise InputError(errors.DUPLICATE_CASE_ID, "The same case_id appears more than once in one call.")
    now = timezone.now()
    with transaction.atomic():
        existing = {c.case_id: c for c in Case.objects.filter(project=project, case_id__in=ids)} if ids else {}
        if require_new and existing:
            raise InputError(errors.CASE_EXISTS, f"A case with case_id '{next(iter(existing))}' already exists.", 409)
        out: list[Case] = []
        previous: dict[int, dict] = {}
        creates: list[Case] = []
        updates: list[Case] = []
        for change in changes:
            case = existing.get(change.case_id) if change.case_id else None
            validate(change, creating=case is None)
            if case is None:
                case = Case(
                    project=project,
                    case_id=change.case_id or new_case_id(),
                    opened_on=now,
                    properties={},
                )
                creates.append(case)
            else:
                updates.append(case)
                previous[case.pk] = dict(case.properties or {})
            _apply(case, change, project, now)
            out.append(case)
        if creates:
            _insert_cases(project, creates)
        if updates:
            # bulk.update_rows, not Case.objects.bulk_update: Django's CASE WHEN statements made a re-import
            # of 100,000 cases take minutes (see bench/import_cases.py).
            bulk.update_rows(updates, [*_FIELDS, "properties", "closed", "closed_on", "modified_on"])
        cases_changed.send(Case, project=project, cases=out, created=creates, previous=previous, source=source)
    return out


def _insert_cases(project: Project, cases: list[Case]) -> None:
    """Insert new cases and give them their primary keys.

    bulk.insert_objects rather than Case.objects.bulk_create: Django's per-value SQL building was half
    the cost of an import (see bench/import_cases.py). On PostgreSQL the keys are taken from the
    sequence first; elsewhere they come back in one query by (project, case_id), which is unique."""
    allocated = bulk.allocate_pks(Case, len(cases))  # PostgreSQL: keys known before the insert
    if allocated is not None:
        for c, pk in zip(cases, allocated, strict=True):
            c.pk = pk
    bulk.insert_objects(cases)
    if allocated is None:
        pks = dict(
            Case.objects.filter(project=project, case_id__in=[c.case_id for c in cases]).values_list("case_id", "pk")
        )
        for c in cases:
            c.pk = pks[c.case_id]
    db = Case.objects.db
    for c in cases:
        c._state.adding = False  # what bulk_create does: these are saved rows now
        c._state.db = db
