"""Cases by contact state, in SQL: the cases page filters by a contact problem (an error code) and by
consent / opt-out state. `contacts.status` explains one contact at a time; these narrow a whole case
list without computing every status (a project has tens of thousands of cases).

A problem here means the case's one-way SMS, two-way SMS or email channel has that code, in the
order `status._status` gives them (a closed case is CONTACT_IS_INACTIVE, nothing else; an invalid
number is reported before consent).
"""

from __future__ import annotations

import json
from datetime import datetime

import phonenumbers
from django.db import connection
from django.db.models import Exists, OuterRef, Q, QuerySet, TextField, Value
from django.db.models.expressions import RawSQL
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Coalesce, Replace
from django.db.models.lookups import Exact, In

from casemsg.cases.models import Case
from casemsg.contacts import optouts, whatsapp
from casemsg.contacts.models import PhoneEntry
from casemsg.core import errors, phone
from casemsg.projects.models import Project


def opted_out_count(project: Project) -> int:
    """How many of the project's numbers (in the phone registry) are opted out for it right now: by the
    installation's opt-out or the project's own, a number opted out by both counted once. The opt-outs are
    read from their side, each probed in the registry's number index (one query)."""
    in_registry = Exists(PhoneEntry.objects.filter(project=project, phone_number=OuterRef("phone_number")))
    return optouts.rows_for(project.pk).filter(in_registry).values("phone_number").distinct().count()


# The problems the cases page can filter by, in the order a program officer fixes them.
PROBLEMS = [
    errors.CONTACT_IS_INACTIVE,
    errors.NO_PHONE_NUMBER,
    errors.INVALID_PHONE_NUMBER,
    errors.PHONE_OPTED_OUT,
    errors.NO_CONSENT,
    errors.NO_TWO_WAY_PHONE_NUMBER,
    errors.NO_EMAIL_ADDRESS,
]
# Consent and opt-out states the cases page can filter by.
CONSENT_STATES = {
    "verified": "Consent recorded / number verified",
    "not_verified": "No consent recorded",
    "opted_out": "Opted out (texted STOP)",
}


def _text(key: str) -> Coalesce:
    # "" for a missing property: a NULL would drop the case from both sides of an exclude()
    return Coalesce(
        Cast(KeyTextTransform(key, "properties"), output_field=TextField()), Value(""), output_field=TextField()
    )


def _registered() -> Exists:
    # The registry holds an entry for each open case with a valid number (registry.case_numbers).
    return Exists(PhoneEntry.objects.filter(case=OuterRef("pk")))


def _opted_out() -> Exists:
    return Exists(PhoneEntry.objects.filter(case=OuterRef("pk")).filter(optouts.binding()))


def _squeezed(key: str) -> Replace:
    """The property's text without whitespace: plain SQL, where a regex would call back into Python for
    every row on SQLite."""
    expr = Replace(_text(key), Value(" "), Value(""), output_field=TextField())
    for ch in ("\t", "\n", "\r"):
        expr = Replace(expr, Value(ch), Value(""), output_field=TextField())
    return expr


def _verified() -> Exact:
    return Exact(_squeezed("contact_phone_number_is_verified"), "1")  # registry.is_verified_value


def _no_phone() -> In:
    return In(_squeezed("contact_phone_number"), ["", "+"])  # phone.check: NO_PHONE_NUMBER


def _in_list(values: list[str]) -> RawSQL:
    """`values` as one query parameter (a JSON array / a text array), not one parameter each: a list of
    tens of thousands of numbers stays one parameter (SQLite allows 32,766 at most)."""
    if connection.vendor == "postgresql":
        return RawSQL("SELECT unnest(%s::text[])", [values])
    return RawSQL("SELECT value FROM json_each(%s)", [json.dumps(values)])


def _needs_consent(project: Project, qs: QuerySet[Case]) -> Q:
    """A Q on PhoneEntry: its number needs consent. Whether a number needs consent depends on its region
    (phone.needs_consent), which only phonenumbers knows: the registered, unverified numbers of `qs` whose
    country code is that of a consent region are read in one query and checked once each (phone.check is
    memoized); the shorter of the two answers goes back to the database as one parameter."""
    regions = project.consent_regions if project.consent_regions is not None else phone.DEFAULT_CONSENT_REGIONS
    codes = sorted({str(cc) for r in regions if (cc := phonenumbers.country_code_for_region(r))})
    if not codes:
        return Q(pk__in=[])
    by_code = Q()
    for code in codes:
        by_code |= Q(phone_number__startswith=code)
    numbers = list(
        PhoneEntry.objects.filter(by_code, case__in=qs.filter(closed=False).values("pk"), verified=False)
        .values_list("phone_number", flat=True)
        .distinct()
    )
    needing = [n for n in numbers if phone.needs_consent(phone.check(n), regions)]
    if len(needing) <= len(numbers) - len(needing):
        return Q(phone_number__in=_in_list(needing))
    others = sorted(set(numbers) - set(needing))
    return by_code & ~Q(phone_number__in=_in_list(others))


def with_problem(project: Project, qs: QuerySet[Case], code: str) -> QuerySet[Case]:
    """The cases of `qs` whose contact status shows `code` on a channel (one of PROBLEMS)."""
    if code not in PROBLEMS:
        return qs.none()
    if code == errors.CONTACT_IS_INACTIVE:
        return qs.filter(closed=True)
    qs = qs.filter(closed=False)
    if code == errors.NO_PHONE_NUMBER:
        return qs.filter(_no_phone())
    if code == errors.INVALID_PHONE_NUMBER:
        return qs.exclude(_no_phone()).exclude(_registered())
    if code == errors.PHONE_OPTED_OUT:
        return qs.filter(_opted_out())
    if code == errors.NO_TWO_WAY_PHONE_NUMBER:
        return qs.filter(_registered()).exclude(_opted_out()).exclude(_verified())
    if code == errors.NO_CONSENT:
        entries = PhoneEntry.objects.filter(_needs_consent(project, qs), case=OuterRef("pk"))
        return qs.filter(Exists(entries)).exclude(_opted_out()).exclude(_verified())
    # NO_EMAIL_ADDRESS
    return qs.filter(Exact(_squeezed("commcare_email_address"), ""))


def with_consent_state(qs: QuerySet[Case], state: str) -> QuerySet[Case]:
    """The cases of `qs` in one of CONSENT_STATES."""
    if state not in CONSENT_STATES:
        return qs.none()
    if state == "verified":
        return qs.filter(_verified())
    if state == "not_verified":
        return qs.exclude(_verified())
    return qs.filter(_opted_out())


def whatsapp_open_until(gateway_id: int, number: str) -> datetime | None:
    """When the WhatsApp window of this person with this business number closes (None: closed, or never
    opened) — what the phone simulator shows."""
    return whatsapp.open_until(whatsapp.windows([(gateway_id, number)]).get((gateway_id, number)))
