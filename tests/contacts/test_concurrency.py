"""Two-way ownership under real concurrency (PostgreSQL): simultaneous registrations of one verified
number, each in its own connection and transaction, end with exactly one two-way owner; concurrent bulk
imports sharing many numbers neither deadlock nor double-assign.

SQLite needs no such test: its IMMEDIATE transactions let one writer in at a time.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable

import pytest
from django.conf import settings
from django.db import connection
from django.db.models import Count, Q

from casemsg.cases import services
from casemsg.cases.models import Case
from casemsg.contacts.models import PhoneEntry
from casemsg.projects.services import create_project
from casemsg.workers import services as worker_services

pytestmark = [
    pytest.mark.skipif(
        not settings.IS_POSTGRES,
        reason="concurrent writers need PostgreSQL; SQLite serializes every write transaction",
    ),
    pytest.mark.django_db(transaction=True),
]


def race(*jobs: Callable[[], object], timeout: float = 60) -> list[BaseException]:
    """Run the jobs in threads released together by a barrier; each thread has its own connection (Django
    connections are per thread) and so its own transaction. Returns the exceptions raised."""
    barrier = threading.Barrier(len(jobs))
    errors: list[BaseException] = []

    def run(job: Callable[[], object]) -> None:
        try:
            barrier.wait(timeout=timeout)
            job()
        except BaseException as exc:  # reported to the test, whatever it is
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
        assert not t.is_alive(), "a registration hung (a deadlock the database did not detect?)"
    return errors


def verified_case(project, case_id: str, number: str) -> services.CaseChange:
    return services.CaseChange(
        case_id=case_id,
        case_type="patient",
        name=case_id,
        properties={"contact_phone_number": number, "contact_phone_number_is_verified": "1"},
    )


def owners_per_number(numbers: list[str]) -> dict[str, int]:
    rows = (
        PhoneEntry.objects.filter(phone_number__in=numbers)
        .values("phone_number")
        .annotate(owners=Count("pk", filter=Q(two_way=True)))
    )
    return {r["phone_number"]: r["owners"] for r in rows}


@pytest.fixture
def projects():
    a, _ = create_project("alpha", "Alpha")
    b, _ = create_project("beta", "Beta")
    return a, b


def test_simultaneous_registrations_give_one_owner(projects):
    alpha, beta = projects
    for attempt in range(8):
        number = f"2547000000{attempt:02d}"
        errors = race(
            lambda n=number, i=attempt: services.create_case(alpha, verified_case(alpha, f"a{i}", n)),
            lambda n=number, i=attempt: services.create_case(beta, verified_case(beta, f"b{i}", n)),
        )
        assert errors == []
        entries = PhoneEntry.objects.filter(phone_number=number)
        assert entries.count() == 2 and all(e.verified for e in entries)
        assert entries.filter(two_way=True).count() == 1, f"attempt {attempt}"


def test_simultaneous_registrations_in_one_project(projects):
    alpha, _beta = projects
    number = "254711000000"
    errors = race(*(lambda i=i: services.create_case(alpha, verified_case(alpha, f"c{i}", number)) for i in range(4)))
    assert errors == []
    assert PhoneEntry.objects.filter(phone_number=number).count() == 4
    assert PhoneEntry.objects.filter(phone_number=number, two_way=True).count() == 1


def test_case_and_mobile_worker_race_for_a_number(projects):
    alpha, beta = projects
    for attempt in range(4):
        number = f"2547220000{attempt:02d}"
        errors = race(
            lambda n=number, i=attempt: services.create_case(alpha, verified_case(alpha, f"w{i}", n)),
            lambda n=number, i=attempt: worker_services.create_worker(
                beta,
                worker_services.WorkerChange(
                    username=f"chw{i}", name="CHW", phone_numbers=[{"number": n, "verified": True}]
                ),
            ),
        )
        assert errors == []
        assert PhoneEntry.objects.filter(phone_number=number).count() == 2
        assert PhoneEntry.objects.filter(phone_number=number, two_way=True).count() == 1


def test_owner_release_and_new_registration_race(projects):
    """The owner closes its case while another contact registers the number: the number ends with
    exactly one owner, never none and never two."""
    alpha, beta = projects
    for attempt in range(4):
        number = f"2547330000{attempt:02d}"
        owner = services.create_case(alpha, verified_case(alpha, f"o{attempt}", number))
        services.create_case(alpha, verified_case(alpha, f"p{attempt}", number))
        errors = race(
            lambda c=owner: services.set_closed(alpha, c, True),
            lambda n=number, i=attempt: services.create_case(beta, verified_case(beta, f"q{i}", n)),
        )
        assert errors == []
        assert not PhoneEntry.objects.filter(case=owner).exists()
        assert PhoneEntry.objects.filter(phone_number=number, two_way=True).count() == 1


def test_concurrent_bulk_imports_sharing_numbers(projects):
    """Two imports of 3 batches each, 600 verified numbers in common, written in opposite orders:
    no deadlock, no error, and every number has exactly one owner."""
    alpha, beta = projects
    shared = [f"2547{i:08d}" for i in range(600)]
    rng = random.Random(5)

    def batches(project, prefix: str, numbers: list[str]) -> list[list[services.CaseChange]]:
        changes = [verified_case(project, f"{prefix}{i}", n) for i, n in enumerate(numbers)]
        # plus cases with numbers of their own, so batches mix shared and unshared numbers
        own = [f"9198{i:04d}{prefix == 'a':d}000" for i in range(300)]
        changes += [verified_case(project, f"{prefix}own{i}", n) for i, n in enumerate(own)]
        rng.shuffle(changes)
        return [changes[i : i + services.MAX_BULK // 3] for i in range(0, len(changes), services.MAX_BULK // 3)]

    a_batches = batches(alpha, "a", shared)
    b_batches = batches(beta, "b", list(reversed(shared)))

    def import_all(project, bs) -> None:
        for batch in bs:
            services.bulk_upsert(project, batch)

    for _round in range(2):  # the second round re-imports (updates): the same locks, other statements
        errors = race(lambda: import_all(alpha, a_batches), lambda: import_all(beta, b_batches))
        assert errors == []
    assert Case.objects.count() == 2 * (600 + 300)
    owners = owners_per_number(shared)
    assert len(owners) == 600
    assert set(owners.values()) == {1}
    assert PhoneEntry.objects.filter(phone_number__in=shared).count() == 1200
    # the numbers nobody shares are owned by their only registrant
    assert PhoneEntry.objects.exclude(phone_number__in=shared).filter(two_way=False).count() == 0


def test_concurrent_imports_then_owners_release(projects):
    """After the race, closing every owner passes each number to the other import's case."""
    alpha, beta = projects
    shared = [f"2547{i:08d}" for i in range(100, 400)]
    a = [verified_case(alpha, f"a{i}", n) for i, n in enumerate(shared)]
    b = [verified_case(beta, f"b{i}", n) for i, n in enumerate(reversed(shared))]
    assert race(lambda: services.bulk_upsert(alpha, a), lambda: services.bulk_upsert(beta, b)) == []
    owners = PhoneEntry.objects.filter(phone_number__in=shared, two_way=True).select_related("case", "project")
    closing_alpha = [e.case.case_id for e in owners if e.project_id == alpha.pk]
    closing_beta = [e.case.case_id for e in owners if e.project_id == beta.pk]
    # close every owner concurrently, each project in its own transaction
    errors = race(
        lambda: services.bulk_upsert(alpha, [services.CaseChange(case_id=c, closed=True) for c in closing_alpha]),
        lambda: services.bulk_upsert(beta, [services.CaseChange(case_id=c, closed=True) for c in closing_beta]),
    )
    assert errors == []
    owners_after = PhoneEntry.objects.filter(phone_number__in=shared, two_way=True)
    assert owners_after.count() == len(shared)
    assert not owners_after.filter(case__closed=True).exists()
