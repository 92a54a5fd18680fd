"""A dynamic group's conditions: their declaration, their rules, their words, and the SQL that evaluates a
whole project's cases at once (a filter on `Case`: never a case at a time in Python).

Every condition must hold. A condition is on a **case property** or on the case's **contact state**.

Property conditions, ``{"property", "operator", "value"}``. Property values are text (the write path
stores every property as a string); a property the case does not have is "not set".

=====================  ===========================  =====================================================
operator               value                        holds when the property …
=====================  ===========================  =====================================================
``equals``             text (a number as its text)  is exactly the value
``not_equals``         text                         is not set, or is not the value
``in``                 a list of texts              is one of them
``contains``           text                         contains it (case-insensitive)
``is_set``             —                            is present and not empty
``is_not_set``         —                            is missing or empty
``greater_than``,      a number                     is a number (``12``, ``-3.5``) and >, ≥, <, ≤ the value
``at_least``,
``less_than``,
``at_most``
``before``, ``after``, a date ``YYYY-MM-DD``        is a date ``YYYY-MM-DD`` before / after / on or before /
``on_or_before``,                                   on or after the value
``on_or_after``
``within_next_days``   whole number N               is a date from today to today + N days
``within_last_days``   whole number N               is a date from today − N days to today
=====================  ===========================  =====================================================

"Today" is the date in the project's time zone when the group is evaluated (a broadcast occurrence, a
page, the preview). A date is exactly ``YYYY-MM-DD`` and a real date; anything else never matches a date
condition (`is_date`, shared with the alerts' days criteria). Dates compare as text, which for this one
format is the calendar's order; numbers are compared only when the whole value is a decimal number.

Contact conditions, ``{"contact": STATE, "value": true | false}`` (``value`` defaults to true; false
asks for the opposite):

- ``can_receive_sms``: the case is open, its number is valid (it is in the phone registry), not opted out
  for the project, and has recorded consent where the number needs it (the project's consent regions);
  the gateway and shared-number rules are left to send time (`casemsg.contacts.status` says why a message
  did not go);
- ``has_consent``: its number has recorded consent (``contact_phone_number_is_verified`` = 1);
- ``opted_out``: its number is opted out for the project (the installation's opt-out or the project's).

Whether a number needs consent is `casemsg.core.phone.needs_consent` (its region is a consent region); in
SQL, by the number's country code, and for +1 numbers by the area code's region (`_consent_q`). A country
code that several regions share (+44: GB, GG, JE, IM; +7: RU, KZ) counts whole: with one of them a consent
region, the others' numbers count as needing consent too (the safe side: "cannot receive SMS" without it).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Final, Literal, get_args
from zoneinfo import ZoneInfo

import phonenumbers
from django.db.models import Exists, OuterRef, Q
from django.db.models.functions import Substr
from django.db.models.lookups import (
    Exact,
    GreaterThan,
    GreaterThanOrEqual,
    IContains,
    In,
    IsNull,
    LessThan,
    LessThanOrEqual,
)
from pydantic import BaseModel, ConfigDict, Field

from casemsg.cases.sql import DATE_RE, NUMBER_RE, NumberCompare, is_date, property_text
from casemsg.contacts import optouts
from casemsg.contacts.models import PhoneEntry
from casemsg.core import errors, phone, timezones
from casemsg.core.errors import InputError
from casemsg.projects.models import Project

Operator = Literal[
    "equals",
    "not_equals",
    "in",
    "contains",
    "is_set",
    "is_not_set",
    "greater_than",
    "at_least",
    "less_than",
    "at_most",
    "before",
    "after",
    "on_or_before",
    "on_or_after",
    "within_next_days",
    "within_last_days",
]
OPERATORS: Final[tuple[str, ...]] = get_args(Operator)
ContactState = Literal["can_receive_sms", "has_consent", "opted_out"]
CONTACT_STATES: Final[tuple[str, ...]] = get_args(ContactState)

# How a person reads each operator and state (pages, the CLI, descriptions): never the code names alone.
OPERATOR_LABELS: Final[dict[str, str]] = {
    "equals": "is",
    "not_equals": "is not",
    "in": "is one of",
    "contains": "contains",
    "is_set": "is set",
    "is_not_set": "is not set",
    "greater_than": "is more than",
    "at_least": "is at least",
    "less_than": "is less than",
    "at_most": "is at most",
    "before": "is a date before",
    "after": "is a date after",
    "on_or_before": "is a date on or before",
    "on_or_after": "is a date on or after",
    "within_next_days": "is a date within the next … days",
    "within_last_days": "is a date within the last … days",
}
CONTACT_LABELS: Final[dict[str, tuple[str, str]]] = {  # (when true, when false)
    "can_receive_sms": ("can receive SMS", "cannot receive SMS"),
    "has_consent": ("has consent", "has no consent"),
    "opted_out": ("opted out", "not opted out"),
}

_TEXT_OPERATORS: Final = frozenset({"equals", "not_equals", "contains"})
_PRESENCE_OPERATORS: Final = frozenset({"is_set", "is_not_set"})
_NUMBER_OPERATORS: Final = {"greater_than": ">", "at_least": ">=", "less_than": "<", "at_most": "<="}
_DATE_OPERATORS: Final = frozenset({"before", "after", "on_or_before", "on_or_after"})
_DAYS_OPERATORS: Final = frozenset({"within_next_days", "within_last_days"})

MAX_CONDITIONS: Final = 50
MAX_VALUES: Final = 1000  # in a list of `in`
MAX_TEXT: Final = 1000
MAX_PROPERTY: Final = 255
MAX_DAYS: Final = 36_500

_ISO_DAY: Final = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


# --------------------------------------------------------------------------------------------------
# The declaration
# --------------------------------------------------------------------------------------------------


class ConditionIn(BaseModel):
    """One condition: on a case property (`property`, `operator`, `value`) or on the contact state
    (`contact`, `value`: true or false)."""

    model_config = ConfigDict(extra="forbid")

    property: str | None = Field(None, max_length=MAX_PROPERTY, examples=["district"])
    operator: str | None = Field(None, max_length=32, description=" | ".join(OPERATORS), examples=["equals"])
    value: str | int | float | bool | list[str | int | float] | None = Field(
        None,
        description="text, a list of texts (in), a number, a date YYYY-MM-DD, a number of days",
        examples=["north"],
    )
    contact: str | None = Field(None, max_length=32, description=" | ".join(CONTACT_STATES))


@dataclass(frozen=True)
class Condition:
    """One validated condition. Property conditions: `prop`, `operator` and, by operator, `text` (text,
    a date's ISO text), `values` (in), `number` or `days`. Contact conditions: `contact` and `expected`."""

    prop: str = ""
    operator: str = ""
    text: str = ""
    values: tuple[str, ...] = ()
    number: Decimal | None = None
    days: int = 0
    contact: str = ""
    expected: bool = True

    def as_json(self) -> dict[str, Any]:
        """The normalised form that is stored."""
        if self.contact:
            return {"contact": self.contact, "value": self.expected}
        out: dict[str, Any] = {"property": self.prop, "operator": self.operator}
        if self.operator in _TEXT_OPERATORS or self.operator in _DATE_OPERATORS:
            out["value"] = self.text
        elif self.operator == "in":
            out["value"] = list(self.values)
        elif self.operator in _NUMBER_OPERATORS:
            out["value"] = _number_json(self.number)
        elif self.operator in _DAYS_OPERATORS:
            out["value"] = self.days
        return out

    def describe(self) -> str:
        """The condition in words: "district is North", "edd is a date within the next 14 days"."""
        if self.contact:
            yes, no = CONTACT_LABELS[self.contact]
            return yes if self.expected else no
        if self.operator in _PRESENCE_OPERATORS:
            return f"{self.prop} {OPERATOR_LABELS[self.operator]}"
        if self.operator in _DAYS_OPERATORS:
            which = "next" if self.operator == "within_next_days" else "last"
            return f"{self.prop} is a date within the {which} {self.days} day{'s' if self.days != 1 else ''}"
        if self.operator == "in":
            return f"{self.prop} is one of {', '.join(self.values)}"
        value = _number_json(self.number) if self.operator in _NUMBER_OPERATORS else self.text
        return f"{self.prop} {OPERATOR_LABELS[self.operator]} {value}"


def _number_json(n: Decimal | None) -> int | float:
    if n is None:
        return 0
    return int(n) if n == n.to_integral_value() else float(n)


# --------------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------------


def _fail(message: str) -> InputError:
    return InputError(errors.INVALID_CONDITION, message)


def _name(i: int, item: dict[str, Any]) -> str:
    """How a message names condition i: its position (from 1), its property or state, its operator."""
    what = [
        f"property {item['property']!r}" if isinstance(item.get("property"), str) else "",
        f"contact {item['contact']!r}" if isinstance(item.get("contact"), str) else "",
        str(item["operator"]) if isinstance(item.get("operator"), str) else "",
    ]
    details = ", ".join(w for w in what if w)
    return f"condition {i + 1} ({details})" if details else f"condition {i + 1}"


def _text(value: object, where: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _fail(f"{where}: the value must be text or a number, got {value!r}.")
    text = value if isinstance(value, str) else str(value)
    if not text or len(text) > MAX_TEXT or "\x00" in text:
        raise _fail(f"{where}: the value must be 1 to {MAX_TEXT} characters.")
    return text


def parse_condition(i: int, item: object) -> Condition:
    if not isinstance(item, dict):
        raise _fail(f"condition {i + 1} must be an object, got {item!r}.")
    name = _name(i, item)
    unknown = sorted(str(k) for k in item if k not in ConditionIn.model_fields)
    if unknown:
        raise _fail(f"{name}: unknown field(s) {', '.join(unknown)}; use property, operator, value (or contact).")
    value = item.get("value")
    if item.get("contact") is not None:
        state = item["contact"]
        if state not in CONTACT_STATES:
            raise _fail(f"{name}: contact must be one of {', '.join(CONTACT_STATES)}, not {state!r}.")
        if item.get("property") is not None or item.get("operator") is not None:
            raise _fail(f"{name}: a contact condition takes no property or operator.")
        if value is None:
            value = True
        if not isinstance(value, bool):
            raise _fail(f"{name}: value must be true or false, got {value!r}.")
        return Condition(contact=str(state), expected=value)
    prop = item.get("property")
    if not isinstance(prop, str) or not prop.strip() or len(prop) > MAX_PROPERTY or "\x00" in prop:
        raise _fail(f"{name}: property must be a case property name (or give contact).")
    op = item.get("operator")
    if op not in OPERATORS:
        raise _fail(f"{name}: unknown operator {op!r}; use one of {', '.join(OPERATORS)}.")
    if op in _PRESENCE_OPERATORS:
        if value not in (None, ""):
            raise _fail(f"{name}: {op} takes no value, got {value!r}.")
        return Condition(prop, op)
    if value is None or value == "" or value == []:
        raise _fail(f"{name}: a value is required.")
    if op in _TEXT_OPERATORS:
        return Condition(prop, op, text=_text(value, name))
    if op == "in":
        if not isinstance(value, list) or len(value) > MAX_VALUES:
            raise _fail(f"{name}: in takes a list of 1 to {MAX_VALUES} values.")
        texts = tuple(dict.fromkeys(_text(v, f"{name}, value {j + 1}") for j, v in enumerate(value)))
        return Condition(prop, op, values=texts)
    if op in _NUMBER_OPERATORS:
        text = str(value).strip() if isinstance(value, str | int | float) and not isinstance(value, bool) else ""
        if not NUMBER_RE.match(text):
            raise _fail(f"{name}: value must be a number such as 12 or 3.5, got {value!r}.")
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise _fail(f"{name}: value must be a number such as 12 or 3.5, got {value!r}.") from None
        return Condition(prop, op, number=number)
    if op in _DATE_OPERATORS:
        if not isinstance(value, str) or not _ISO_DAY.match(value) or not DATE_RE.fullmatch(value):
            raise _fail(f"{name}: value must be a date YYYY-MM-DD, got {value!r}.")
        return Condition(prop, op, text=value)
    # within_next_days / within_last_days
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_DAYS:
        raise _fail(f"{name}: value must be a whole number of days (0 to {MAX_DAYS}), got {value!r}.")
    return Condition(prop, op, days=value)


def parse_conditions(raw: object) -> list[Condition]:
    """Validate a group's conditions (JSON) into `Condition`s; INVALID_CONDITION names the first bad one."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise _fail("conditions must be a list of {property, operator, value} or {contact, value}.")
    if len(raw) > MAX_CONDITIONS:
        raise _fail(f"At most {MAX_CONDITIONS} conditions; got {len(raw)}.")
    return [parse_condition(i, item) for i, item in enumerate(raw)]


def conditions_from_json(raw: object) -> list[Condition]:
    """Stored (normalised) conditions back to `Condition`s."""
    return parse_conditions(raw)


def describe(conditions: Sequence[Condition]) -> str:
    """Every condition in words, joined with "and"."""
    return " and ".join(c.describe() for c in conditions)


# --------------------------------------------------------------------------------------------------
# SQL
# --------------------------------------------------------------------------------------------------


def today_in(project: Project, now: datetime) -> date:
    """Today's date in the project's time zone (UTC when it has none or an invalid one)."""
    zone = project.default_time_zone if timezones.is_valid(project.default_time_zone or "") else "UTC"
    return now.astimezone(ZoneInfo(zone)).date()


def _shifted(day: date, days: int) -> str:
    try:
        return (day + timedelta(days=days)).isoformat()
    except OverflowError:
        return "9999-12-31" if days > 0 else "0001-01-01"


def _property_q(c: Condition, today: date) -> Q:
    p = property_text(c.prop)
    op = c.operator
    if op == "equals":
        return Q(Exact(p, c.text))
    if op == "not_equals":
        return Q(IsNull(p, True)) | ~Q(Exact(p, c.text))
    if op == "in":
        return Q(In(p, list(c.values)))
    if op == "contains":
        return Q(IContains(p, c.text))
    if op == "is_set":
        return Q(IsNull(p, False)) & ~Q(Exact(p, ""))
    if op == "is_not_set":
        return Q(IsNull(p, True)) | Q(Exact(p, ""))
    if op in _NUMBER_OPERATORS:
        assert c.number is not None
        return Q(NumberCompare(p, _NUMBER_OPERATORS[op], c.number))
    if op in _DATE_OPERATORS:
        compare = {
            "before": LessThan,
            "after": GreaterThan,
            "on_or_before": LessThanOrEqual,
            "on_or_after": GreaterThanOrEqual,
        }[op]
        return is_date(p) & Q(compare(p, c.text))
    if op == "within_next_days":
        low, high = today.isoformat(), _shifted(today, c.days)
    else:
        low, high = _shifted(today, -c.days), today.isoformat()
    return is_date(p) & Q(GreaterThanOrEqual(p, low)) & Q(LessThanOrEqual(p, high))


@functools.lru_cache(maxsize=64)
def _consent_numbers(regions: frozenset[str]) -> tuple[tuple[str, ...], bool, tuple[str, ...]]:
    """For a set of consent regions: the country codes (other than +1) whose numbers need consent, whether
    +1 numbers do, and the +1 area codes that are exempt (those of +1 regions that are not consent regions).
    An area code's region is libphonenumber's for numbers in it, as `phone.check` finds it."""
    nanp = set(phonenumbers.region_codes_for_country_code(1))
    codes = sorted(
        {str(phonenumbers.country_code_for_region(r)) for r in regions if r not in nanp} - {"0", "1"},
        key=lambda c: (len(c), c),
    )
    plus_one = bool(regions & nanp)
    exempt: list[str] = []
    if plus_one:
        for npa in range(200, 1000):
            number = phonenumbers.parse(f"+1{npa}2345678")
            region = phonenumbers.region_code_for_number(number)
            if region is not None and region not in regions:
                exempt.append(str(npa))
    return tuple(codes), plus_one, tuple(exempt)


def _consent_q(project: Project) -> Q:
    """A filter on PhoneEntry: its number needs recorded consent in this project (see `_consent_numbers`)."""
    raw = phone.DEFAULT_CONSENT_REGIONS if project.consent_regions is None else project.consent_regions
    codes, plus_one, exempt = _consent_numbers(frozenset(raw or []))
    q = Q(pk__in=[])
    for code in codes:
        q |= Q(phone_number__startswith=code)
    if plus_one:
        one = Q(phone_number__startswith="1")
        if exempt:
            one &= ~Q(In(Substr("phone_number", 2, 3), list(exempt)))
        q |= one
    return q


def _contact_q(c: Condition, project: Project) -> Q:
    entries = PhoneEntry.objects.filter(case_id=OuterRef("pk"))
    bound = optouts.binding("phone_number", "project_id")
    if c.contact == "opted_out":
        q = Q(Exists(entries.filter(bound)))
    elif c.contact == "has_consent":
        q = Q(Exists(entries.filter(verified=True)))
    else:  # can_receive_sms
        ok = entries.filter(~Q(bound)).filter(Q(verified=True) | ~_consent_q(project))
        q = Q(closed=False) & Q(Exists(ok))
    return q if c.expected else ~q


def conditions_q(conditions: Sequence[Condition], project: Project, now: datetime) -> Q:
    """A filter on the project's `Case` rows: every condition holds at `now` (today in the project's zone)."""
    today = today_in(project, now)
    q = Q()
    for c in conditions:
        q &= _contact_q(c, project) if c.contact else _property_q(c, today)
    return q
