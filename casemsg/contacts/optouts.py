"""The opt-out of a number, the model's one home: whether it is opted out for a project (the one rule every
reader uses) and the writes (`add`, `lift`; the consent ledger row beside each is `casemsg.consent.optout`'s).

A number is opted out for project P when the installation-wide opt-out holds it (an `OptOut` row with
no project: STOP through an installation gateway, or a provider's report) or P's own opt-out does (STOP
through P's own gateway or P's phone simulator). A project's opt-out adds to the installation one and
never lifts it; one project's opt-out never touches another project.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db.models import Exists, OuterRef, Q, QuerySet

from casemsg.contacts.models import OptOut


def applies_to(project_id: int | None) -> Q:
    """The opt-out rows that bind this project: the installation's and its own."""
    if project_id is None:
        return Q(project__isnull=True)
    return Q(project__isnull=True) | Q(project_id=project_id)


class OptedOut:
    """The opt-outs of a set of numbers, loaded in one query, asked per (number, project)."""

    def __init__(self, numbers: Iterable[str]):
        wanted = {n for n in numbers if n}
        self._pairs: set[tuple[str, int | None]] = set()
        if wanted:
            self._pairs = set(OptOut.objects.filter(phone_number__in=wanted).values_list("phone_number", "project_id"))

    def __call__(self, number: str | None, project_id: int | None) -> bool:
        if not number:
            return False
        return (number, None) in self._pairs or (project_id is not None and (number, project_id) in self._pairs)


def is_opted_out(number: str, project_id: int | None) -> bool:
    return OptOut.objects.filter(applies_to(project_id), phone_number=number).exists()


def binding(number_ref: str = "phone_number", project_ref: str = "project_id") -> Exists:
    """An Exists() for a queryset whose rows have a number and a project (phone entries, survey sessions):
    true when an opt-out binds that row's project."""
    return Exists(
        OptOut.objects.filter(phone_number=OuterRef(number_ref)).filter(
            Q(project__isnull=True) | Q(project_id=OuterRef(project_ref))
        )
    )


def rows_for(project_id: int | None) -> QuerySet[OptOut]:
    return OptOut.objects.filter(applies_to(project_id))


def add(number: str, project_id: int | None, *, on: datetime, gateway_name: str = "", source: str = "") -> bool:
    """Opt the number out (installation-wide with no project, else for that project only); True when it was
    not opted out there before."""
    where = Q(phone_number=number) & (Q(project__isnull=True) if project_id is None else Q(project_id=project_id))
    defaults = {"opted_out_on": on, "gateway_name": gateway_name, "source": source}
    _row, created = OptOut.objects.filter(where).get_or_create(
        defaults={"phone_number": number, "project_id": project_id, **defaults}
    )
    return created


def lift(number: str, project_id: int | None) -> bool:
    """Lift the number's opt-out: with a project only that project's own; with none the installation's and
    every project's. True when there was one."""
    rows = OptOut.objects.filter(phone_number=number)
    if project_id is not None:
        rows = rows.filter(project_id=project_id)
    deleted, _ = rows.delete()
    return bool(deleted)
