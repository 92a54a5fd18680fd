"""The phone registry: kept in sync with every case and worker change, in the caller's transaction.

One function, `sync`, serves single changes and bulk imports alike: it diffs the entries the contacts
should have against the ones they have (one query), writes the difference in bulk, then settles two-way
ownership for every number it touched (a couple of queries per batch, never one per row).
"""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.db import connection
from django.db.models import Exists, F, OuterRef, Q, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from casemsg.cases.models import Case
from casemsg.contacts.models import PhoneEntry
from casemsg.core import bulk, phone
from casemsg.workers.models import MobileWorker

_CHUNK = 2000


def is_verified_value(value: object) -> bool:
    """`contact_phone_number_is_verified` = `1` means verified (and, for US numbers, consent)."""
    return str(value).strip() == "1" if value is not None else False


def case_numbers(case: Case) -> dict[str, bool]:
    """The registry entries a case should have: {number: verified}."""
    if case.closed:
        return {}
    props = case.properties or {}
    number = phone.normalized_number(props.get("contact_phone_number"))
    if number is None:
        return {}
    return {number: is_verified_value(props.get("contact_phone_number_is_verified"))}


def worker_numbers(worker: MobileWorker) -> dict[str, bool]:
    if not worker.active:
        return {}
    out: dict[str, bool] = {}
    for item in worker.phone_numbers or []:
        out[item["number"]] = bool(item.get("verified"))
    return out


def sync(cases: Iterable[Case] = (), workers: Iterable[MobileWorker] = (), created: Iterable[Case] = ()) -> None:
    """Bring the registry in line with these contacts. Must run inside the change's transaction.

    `created`: those of `cases` that this transaction inserted. They cannot have entries yet, so the
    bulk path skips looking for them (one query per batch). Entries are made in the order of `cases`:
    among numbers verified in the same batch, the earlier case is the older registrant."""
    now = timezone.now()
    wanted: dict[tuple[str, int], dict[str, bool]] = {}
    projects: dict[tuple[str, int], int] = {}
    fresh = {c.pk for c in created}
    for c in cases:
        wanted[("case", c.pk)] = case_numbers(c)
        projects[("case", c.pk)] = c.project_id
    for w in workers:
        wanted[("worker", w.pk)] = worker_numbers(w)
        projects[("worker", w.pk)] = w.project_id
    if not wanted:
        return

    case_pks = [pk for kind, pk in wanted if kind == "case" and pk not in fresh]
    worker_pks = [pk for kind, pk in wanted if kind == "worker"]
    existing: list[PhoneEntry] = []
    for i in range(0, len(case_pks), _CHUNK):
        existing += PhoneEntry.objects.filter(case_id__in=case_pks[i : i + _CHUNK])
    for i in range(0, len(worker_pks), _CHUNK):
        existing += PhoneEntry.objects.filter(worker_id__in=worker_pks[i : i + _CHUNK])

    affected: set[str] = set()
    delete_ids: list[int] = []
    updates: list[PhoneEntry] = []
    have: dict[tuple[str, int], set[str]] = {}
    for e in existing:
        key = ("case", e.case_id) if e.case_id else ("worker", e.worker_id or 0)
        want = wanted[key]
        have.setdefault(key, set()).add(e.phone_number)
        if e.phone_number not in want:
            delete_ids.append(e.pk)
            if e.verified:
                affected.add(e.phone_number)
        elif want[e.phone_number] != e.verified:
            e.verified = want[e.phone_number]
            e.verified_on = now if e.verified else None
            if not e.verified:
                e.two_way = False
            updates.append(e)
            affected.add(e.phone_number)

    # Plain rows, not PhoneEntry objects: an import creates one per case, and building model instances
    # plus Django's bulk_create SQL compilation cost as much as inserting the cases themselves.
    creates: list[dict[str, object]] = []
    for key, want in wanted.items():
        kind, pk = key
        for number, verified in want.items():
            if number in have.get(key, ()):
                continue
            creates.append(
                {
                    "phone_number": number,
                    "project_id": projects[key],
                    "case_id": pk if kind == "case" else None,
                    "worker_id": pk if kind == "worker" else None,
                    "verified": verified,
                    "verified_on": now if verified else None,
                    "two_way": False,
                    "created_on": now,
                }
            )
            if verified:
                affected.add(number)

    for i in range(0, len(delete_ids), _CHUNK):
        PhoneEntry.objects.filter(pk__in=delete_ids[i : i + _CHUNK]).delete()
    if updates:
        bulk.update_rows(updates, ["verified", "verified_on", "two_way"])
    if creates:
        bulk.insert_rows(PhoneEntry, creates)
    if affected:
        assign_owners(affected)


def release(cases: Iterable[Case] = (), workers: Iterable[MobileWorker] = ()) -> None:
    """Drop the entries of contacts that are being deleted, and pass their numbers on."""
    case_pks = [c.pk for c in cases]
    worker_pks = [w.pk for w in workers]
    q = PhoneEntry.objects.filter(Q(case_id__in=case_pks) | Q(worker_id__in=worker_pks))
    numbers = set(q.filter(verified=True).values_list("phone_number", flat=True))
    q.delete()
    if numbers:
        assign_owners(numbers)


def _lock_numbers(numbers: list[str]) -> None:
    """Serialize ownership decisions per number across concurrent transactions (PostgreSQL).

    SQLite needs nothing: its IMMEDIATE transactions already serialize writers. Locks are taken in
    sorted order so two bulk imports cannot deadlock on each other.
    """
    if settings.IS_POSTGRES:
        with connection.cursor() as cur:
            cur.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(n, 7411)) FROM unnest(%s::text[]) AS n ORDER BY n",
                [sorted(numbers)],
            )


def assign_owners(numbers: Iterable[str]) -> None:
    """Give every ownerless number among these to its oldest verified registrant."""
    numbers = sorted(set(numbers))
    for i in range(0, len(numbers), _CHUNK):
        chunk = numbers[i : i + _CHUNK]
        _lock_numbers(chunk)
        # One statement (a bulk import calls this per batch): the oldest verified entry of each number that
        # has no owner becomes its owner, ranked and updated in the database.
        has_owner = PhoneEntry.objects.filter(phone_number=OuterRef("phone_number"), two_way=True)
        oldest = (
            PhoneEntry.objects.filter(phone_number__in=chunk, verified=True)
            .exclude(Exists(has_owner))
            .annotate(rank=Window(RowNumber(), partition_by=[F("phone_number")], order_by=[F("verified_on"), F("pk")]))
            .filter(rank=1)
            .values("pk")
        )
        PhoneEntry.objects.filter(pk__in=oldest).update(two_way=True)


def entries_for_numbers(
    numbers: Iterable[str], known: Iterable[Case | MobileWorker] = ()
) -> dict[str, list[PhoneEntry]]:
    """All registry entries of these numbers, with their contacts, in few queries.

    `known` contacts (those being looked at) are attached as they are; only the other holders of a
    number (rare) are loaded, with just what `describe_holder` shows, so a batch of 500 does not load
    its 500 cases a second time."""
    numbers = list(numbers)
    cases = {c.pk: c for c in known if isinstance(c, Case)}
    workers = {w.pk: w for w in known if isinstance(w, MobileWorker)}
    entries: list[PhoneEntry] = []
    for i in range(0, len(numbers), _CHUNK):
        entries += PhoneEntry.objects.filter(phone_number__in=numbers[i : i + _CHUNK]).order_by(
            "phone_number", "created_on", "pk"
        )
    entries.sort(key=lambda e: (e.phone_number, e.created_on, e.pk))
    missing_cases = {e.case_id for e in entries if e.case_id and e.case_id not in cases}
    missing_workers = {e.worker_id for e in entries if e.worker_id and e.worker_id not in workers}
    if missing_cases:
        cases.update(Case.objects.only("pk", "case_id", "name", "project_id", "closed").in_bulk(missing_cases))
    if missing_workers:
        workers.update(
            MobileWorker.objects.only("pk", "username", "name", "project_id", "active").in_bulk(missing_workers)
        )
    out: dict[str, list[PhoneEntry]] = {}
    for e in entries:
        if e.case_id:
            e.case = cases[e.case_id]
        elif e.worker_id:
            e.worker = workers[e.worker_id]
        out.setdefault(e.phone_number, []).append(e)
    return out


def two_way_owner(number: str) -> PhoneEntry | None:
    return (
        PhoneEntry.objects.filter(phone_number=number, two_way=True).select_related("case", "worker", "project").first()
    )


# --- the after-change hooks of cases and mobile workers (connected in ContactsConfig.ready) ---------
def on_cases_changed(sender: object, *, cases: list[Case], created: list[Case], **_kw: object) -> None:
    sync(cases=cases, created=created)


def on_cases_deleting(sender: object, *, cases: list[Case], **_kw: object) -> None:
    release(cases=cases)


def on_workers_changed(sender: object, *, workers: list[MobileWorker], **_kw: object) -> None:
    sync(workers=workers)


def on_workers_deleting(sender: object, *, workers: list[MobileWorker], **_kw: object) -> None:
    release(workers=workers)
