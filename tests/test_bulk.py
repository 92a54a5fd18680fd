"""casemsg.core.bulk writes exactly what Django's bulk_create / bulk_update would (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.conf import settings
from django.db import DataError, IntegrityError, transaction
from django.utils import timezone

from casemsg.cases.models import Case
from casemsg.contacts.models import PhoneEntry
from casemsg.core import bulk

TRICKY = {
    "quote": 'it\'s "quoted"',
    "backslash": "C:\\path\\{x}",
    "braces": "{a,b}",
    "unicode": "Zoë · नमस्ते · 😀",
    "newline": "line one\nline two\ttab",
    "comma": "a,b",
    "null_word": "NULL",
    "empty": "",
}
_COLUMNS = ["case_id", "case_type", "name", "external_id", "owner_id", "parent_id", "properties", "closed"]


def _cases(project, prefix: str, now: datetime) -> list[Case]:
    return [
        Case(
            project=project,
            case_id=f"{prefix}{i}",
            case_type="patient",
            name=["Asha", "O'Brien", "", "\\N"][i % 4],
            properties={**TRICKY, "i": str(i)},
            closed=i % 2 == 0,
            closed_on=now if i % 2 == 0 else None,
            opened_on=now,
            modified_on=now,
        )
        for i in range(5)
    ]


def _rows(project, prefix: str) -> list[tuple]:
    return list(
        Case.objects.filter(project=project, case_id__startswith=prefix)
        .order_by("case_id")
        .values_list(*_COLUMNS, "opened_on", "modified_on", "closed_on")
    )


def _without_prefix(rows: list[tuple]) -> list[tuple]:
    return [(r[0][1:], *r[1:]) for r in rows]


def test_insert_objects_matches_bulk_create(project):
    now = timezone.now()
    Case.objects.bulk_create(_cases(project, "a", now))
    objs = _cases(project, "b", now)
    pks = bulk.allocate_pks(Case, len(objs))
    if pks is not None:  # PostgreSQL: inserted with their keys
        for obj, pk in zip(objs, pks, strict=True):
            obj.pk = pk
    bulk.insert_objects(objs)
    assert _without_prefix(_rows(project, "b")) == _without_prefix(_rows(project, "a"))
    if pks is not None:
        assert sorted(Case.objects.filter(case_id__startswith="b").values_list("pk", flat=True)) == sorted(pks)
        # the sequence moved on: a later ordinary insert does not collide
        later = Case.objects.create(project=project, case_id="later", case_type="t", opened_on=now, modified_on=now)
        assert later.pk > max(pks)


def test_insert_rows_fills_defaults(project):
    case = Case.objects.create(
        project=project, case_id="c", case_type="t", opened_on=timezone.now(), modified_on=timezone.now()
    )
    when = datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    bulk.insert_rows(
        PhoneEntry,
        [
            {"phone_number": "919812345678", "project_id": project.pk, "case_id": case.pk, "created_on": when},
            {
                "phone_number": "254712345678",
                "project_id": project.pk,
                "case_id": case.pk,
                "created_on": when,
                "verified": True,
                "verified_on": when,
            },
        ],
    )
    a, b = PhoneEntry.objects.order_by("phone_number")
    assert (a.phone_number, a.verified, a.verified_on, a.two_way, a.worker_id) == (
        "254712345678",
        True,
        when,
        False,
        None,
    )
    assert (b.verified, b.verified_on, b.two_way, b.created_on) == (False, None, False, when)


def test_update_rows_matches_bulk_update(project):
    now = timezone.now()
    later = datetime(2030, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    Case.objects.bulk_create(_cases(project, "a", now) + _cases(project, "b", now))
    fields = ["name", "properties", "closed", "closed_on", "modified_on"]

    def change(prefix: str) -> list[Case]:
        objs = list(Case.objects.filter(case_id__startswith=prefix).order_by("case_id"))
        for i, c in enumerate(objs):
            c.name = f"Renamed {i} '\""
            c.properties = {**c.properties, "new": "v{1}", "quote": 'changed "again"'}
            c.closed = not c.closed
            c.closed_on = later if c.closed else None
            c.modified_on = later
        return objs

    Case.objects.bulk_update(change("a"), fields)
    bulk.update_rows(change("b"), fields)
    assert _without_prefix(_rows(project, "b")) == _without_prefix(_rows(project, "a"))


def test_errors_are_django_errors(project):
    now = timezone.now()
    bulk.insert_objects(_cases(project, "x", now)[:1])
    with pytest.raises(IntegrityError), transaction.atomic():  # (project, case_id) is unique
        bulk.insert_objects(_cases(project, "x", now)[:1])


@pytest.mark.skipif(not settings.IS_POSTGRES, reason="SQLite does not enforce varchar lengths")
def test_over_long_values_fail_instead_of_being_truncated(project):
    now = timezone.now()
    too_long = _cases(project, "y", now)[:1]
    too_long[0].name = "n" * 300
    with pytest.raises(DataError), transaction.atomic():
        bulk.insert_objects(too_long)
    bulk.insert_objects(_cases(project, "z", now)[:1])
    case = Case.objects.get(case_id="z0")
    case.name = "n" * 300
    with pytest.raises(DataError), transaction.atomic():
        bulk.update_rows([case], ["name"])
    assert Case.objects.get(case_id="z0").name == "Asha"


def test_update_held_writes_only_rows_still_held(project):
    """update_held (a worker's window of results) writes what bulk_update would, to the rows whose mark
    column still holds the object's mark, and returns exactly those: a row another worker took meanwhile
    keeps that worker's values."""
    now = timezone.now()
    later = datetime(2030, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    Case.objects.bulk_create(_cases(project, "a", now) + _cases(project, "b", now))
    Case.objects.filter(case_id__startswith="a").update(external_id="token-1")
    Case.objects.filter(case_id__startswith="b").update(external_id="token-1")
    fields = ["name", "properties", "closed", "closed_on", "modified_on", "external_id"]

    def change(prefix: str) -> list[Case]:
        objs = list(Case.objects.filter(case_id__startswith=prefix).order_by("case_id"))
        for i, c in enumerate(objs):
            c._mark = c.external_id  # type: ignore[attr-defined]
            c.name = f"Renamed {i} '\""
            c.properties = {**c.properties, "new": "v{1}", "quote": 'changed "again"'}
            c.closed = not c.closed
            c.closed_on = later if c.closed else None
            c.modified_on = later
            c.external_id = ""
        return objs

    Case.objects.bulk_update(change("a"), fields)
    objs = change("b")
    taken = objs[1]
    Case.objects.filter(pk=taken.pk).update(external_id="token-2", name="Another worker's")
    with transaction.atomic():
        written = bulk.update_held(objs, fields, held_by="external_id", mark="_mark")
    assert written == {o.pk for o in objs} - {taken.pk}
    assert Case.objects.get(pk=taken.pk).name == "Another worker's"
    a_rows = [r for r in _without_prefix(_rows(project, "a")) if r[0] != "1"]
    b_rows = [r for r in _without_prefix(_rows(project, "b")) if r[0] != "1"]
    assert b_rows == a_rows
    assert bulk.update_held([], fields, held_by="external_id", mark="_mark") == set()


@pytest.mark.skipif(not settings.IS_POSTGRES, reason="SQLite does not enforce varchar lengths")
def test_update_held_refuses_over_long_values(project):
    bulk.insert_objects(_cases(project, "z", timezone.now())[:1])
    case = Case.objects.get(case_id="z0")
    case._mark = case.external_id  # type: ignore[attr-defined]
    case.name = "n" * 300
    with pytest.raises(DataError), transaction.atomic():
        bulk.update_held([case], ["name"], held_by="external_id", mark="_mark")
    assert Case.objects.get(case_id="z0").name == "Asha"
