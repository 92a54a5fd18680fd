"""Applying records to cases: a source's mapping, then only what changes, through `cases.services`.

One call takes one page (any number of records) inside the caller's transaction:

1. each record becomes a case change under the source's mapping (`casemsg.sources.mapping`); a record
   that cannot (a value its transform cannot read, no case id) is skipped with its id and the reason;
2. the project's cases with those ids are read in one query per 1,000; a change that would change
   nothing is counted `unchanged` and not written (a page read twice — the watermark's overlap, a sync
   that went on after a worker died — applies nothing twice), and a closed record of a case casemsg does
   not have is not created;
3. the rest go through `cases.services.bulk_upsert` (≤ 1,000 a call, so the phone registry, two-way
   ownership, consent and alert hooks follow in this transaction), as an import: a
   `contact_phone_number_is_verified: 1` is consent in the ledger, source `import`, recorded by the source
   (the caller acts as it: `casemsg.core.actor`). A change `cases.services` refuses (an over-long value,
   a property name it does not take) is skipped with its reason, the batch halved until it is alone; the
   rest is written. A preview (write=False) checks each change the same way (`validate`) instead.

Consent belongs to the number: the flag counts for a number only when the source set it for that number
(`VerifiedNumber`), so a system that keeps sending `1` after the number changed does not make the new
number consented; casemsg's own rule (`cases.services`) then removes the flag with the number change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from django.db import transaction

from casemsg.cases import services as case_services
from casemsg.cases.models import Case
from casemsg.cases.services import CaseChange
from casemsg.core import errors, phone
from casemsg.core.errors import InputError
from casemsg.sources import mapping
from casemsg.sources.base import Record
from casemsg.sources.models import Source, VerifiedNumber

PHONE = case_services.PHONE
VERIFIED = case_services.VERIFIED
_FIELDS = ("case_type", "name", "external_id", "owner_id", "parent_id")
CREATED, UPDATED, CLOSED, UNCHANGED, SKIPPED = "created", "updated", "closed", "unchanged", "skipped"
OUTCOMES = (CREATED, UPDATED, CLOSED, UNCHANGED, SKIPPED)


@dataclass
class Outcome:
    created: int = 0
    updated: int = 0
    closed: int = 0
    unchanged: int = 0
    skipped: int = 0
    log: list[dict[str, Any]] = field(default_factory=list)  # skipped records: {"record", "code", "reason"}
    high_water: datetime | None = None  # the newest modification time read
    # per record (id → outcome), and the change each written record made: kept only for previews
    outcomes: dict[str, str] = field(default_factory=dict)
    changes: dict[str, CaseChange] = field(default_factory=dict)

    def count(self, outcome: str, n: int = 1) -> None:
        setattr(self, outcome, getattr(self, outcome) + n)

    def skip(self, record_id: str, code: str, reason: str, page: int | None = None) -> None:
        self.skipped += 1
        self.outcomes[record_id] = SKIPPED
        entry: dict[str, Any] = {"record": record_id[:200], "code": code, "reason": reason[:500]}
        if page is not None:
            entry["page"] = page
        self.log.append(entry)

    def as_counts(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in OUTCOMES}


def plan_for(source: Source) -> mapping.Plan:
    """The source's mapping as `mapping.to_change` reads it."""
    project = source.project
    # the source's own country, else the project's (set from its time zone when it was created)
    country = str((source.config or {}).get("default_country") or "") or project.default_country
    return mapping.Plan(
        rules=mapping.parse(source.mapping),
        keep_unmapped=source.keep_unmapped,
        country=country,
        case_type=source.case_type,
        auto_normalize=project.auto_normalize_phone_numbers,
        project_country=project.default_country,
    )


def _number_key(value: object) -> str:
    raw = str(value or "").strip()
    chk = phone.check(raw) if raw else None
    return chk.number if chk is not None and chk.ok and chk.number else raw


def _same(case: Case, change: CaseChange, auto_normalize: bool, country: str = "") -> bool:
    """Whether writing the change would leave the case as it is."""
    for f in _FIELDS:
        v = getattr(change, f)
        if v is not None and str(v) != getattr(case, f):
            return False
    if change.closed is not None and change.closed != case.closed:
        return False
    props = case.properties or {}
    for key, value in change.properties.items():
        if key == "name":
            if (value or "") != case.name:
                return False
            continue
        if value is None:
            if key in props:
                return False
            continue
        text = str(value)
        local = phone.local_fix(text, country) if key == PHONE and country else None
        if local is not None:  # stored as the project's country's number (cases.services)
            text = local.number
        if key == PHONE and auto_normalize and text:
            chk = phone.check(text, auto_fix=True)
            if chk.ok and chk.number:
                text = chk.number
        if props.get(key) != text:
            return False
    return True


def _consent_rule(
    changes: dict[str, CaseChange], existing: dict[str, Case], verified: dict[str, str]
) -> tuple[dict[str, CaseChange], dict[str, str], set[str]]:
    """Drop a `1` the source set for another number; the rows of VerifiedNumber to write and to delete."""
    keep: dict[str, str] = {}
    clear: set[str] = set()
    out = dict(changes)
    for case_id, change in changes.items():
        if VERIFIED not in change.properties:
            continue
        flag = str(change.properties.get(VERIFIED) or "").strip()
        case = existing.get(case_id)
        number_value = change.properties.get(PHONE) if PHONE in change.properties else None
        if number_value is None and case is not None:
            number_value = (case.properties or {}).get(PHONE)
        number = _number_key(number_value)
        if flag != "1":
            if case_id in verified:
                clear.add(case_id)
            continue
        given_for = verified.get(case_id)
        if given_for is not None and given_for != number:
            props = dict(change.properties)
            del props[VERIFIED]  # the source's 1 was for the old number: not consent for this one
            out[case_id] = replace(change, properties=props)
        elif given_for is None:
            keep[case_id] = number
    return out, keep, clear


def apply_records(
    source: Source,
    records: Sequence[Record],
    *,
    page: int | None = None,
    write: bool = True,
    plan: mapping.Plan | None = None,
) -> Outcome:
    """Map and write (or, with write=False, only classify) one page of records; in the caller's transaction."""
    project = source.project
    plan = plan or plan_for(source)
    out = Outcome()
    latest: dict[str, CaseChange] = {}
    for rec in records:
        if rec.modified is not None and (out.high_water is None or rec.modified > out.high_water):
            out.high_water = rec.modified
        if rec.problem is not None:
            out.skip(rec.id, rec.problem[0], rec.problem[1], page)
            continue
        if not rec.id.strip():
            out.skip(rec.id or "(none)", errors.INVALID_CASE_ID, "The record has no case id.", page)
            continue
        try:
            change = mapping.to_change(rec, plan)
        except mapping.MappingError as exc:
            out.skip(rec.id, exc.code, exc.reason, page)
            continue
        latest.pop(rec.id, None)  # the same case twice in a page: its last version counts
        latest[rec.id] = change
    ids = list(latest)
    existing: dict[str, Case] = {}
    verified: dict[str, str] = {}
    for start in range(0, len(ids), case_services.MAX_BULK):
        chunk = ids[start : start + case_services.MAX_BULK]
        existing.update((c.case_id, c) for c in Case.objects.filter(project=project, case_id__in=chunk))
        if any(VERIFIED in latest[cid].properties for cid in chunk):
            verified.update(
                VerifiedNumber.objects.filter(source=source, case_id__in=chunk).values_list("case_id", "number")
            )
    latest, keep, clear = _consent_rule(latest, existing, verified)
    todo: list[tuple[CaseChange, str]] = []
    for case_id, change in latest.items():
        case = existing.get(case_id)
        if case is None and change.closed:
            out.count(UNCHANGED)  # closed (or deleted) at the source and never here: nothing to do
            out.outcomes[case_id] = UNCHANGED
            continue
        if case is not None and _same(case, change, plan.auto_normalize, plan.project_country):
            out.count(UNCHANGED)
            out.outcomes[case_id] = UNCHANGED
            continue
        if not write:  # (a write is checked by bulk_upsert itself: `_write` then skips what it refuses)
            try:
                case_services.validate(change, creating=case is None)
            except InputError as exc:
                out.skip(case_id, exc.code, exc.message, page)
                continue
        if case is None:
            kind = CREATED
        elif change.closed and not case.closed:
            kind = CLOSED
        else:
            kind = UPDATED
        todo.append((change, kind))
    if write:
        todo = _write(source, todo, out, page)
        skipped = {cid for cid, o in out.outcomes.items() if o == SKIPPED}
        gone = (set(keep) | clear) - skipped
        if gone:  # what the source said of the flag, for the cases written or already as it says
            VerifiedNumber.objects.filter(source=source, case_id__in=list(gone)).delete()
            VerifiedNumber.objects.bulk_create(
                [VerifiedNumber(source=source, case_id=cid, number=n) for cid, n in keep.items() if cid not in skipped]
            )
    for change, kind in todo:
        out.count(kind)
        assert change.case_id is not None
        out.outcomes[change.case_id] = kind
        if not write:
            out.changes[change.case_id] = change
    return out


def _write(
    source: Source, todo: list[tuple[CaseChange, str]], out: Outcome, page: int | None
) -> list[tuple[CaseChange, str]]:
    """bulk_upsert in batches of up to 1,000. A batch refused as a whole (a change `cases.services` will not
    take: an over-long value, a property name it refuses) is halved until the refused change is alone,
    which is skipped with the reason; the rest is written. Returns what was written."""
    done: list[tuple[CaseChange, str]] = []

    def write(batch: list[tuple[CaseChange, str]]) -> None:
        try:
            with transaction.atomic():
                case_services.bulk_upsert(source.project, [c for c, _k in batch], source="import")
        except InputError as exc:
            if len(batch) == 1:
                out.skip(batch[0][0].case_id or "", exc.code, exc.message, page)
                return
            half = len(batch) // 2
            write(batch[:half])
            write(batch[half:])
        else:
            done.extend(batch)

    for start in range(0, len(todo), case_services.MAX_BULK):
        write(todo[start : start + case_services.MAX_BULK])
    return done
