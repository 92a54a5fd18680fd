"""Conditional-alert criteria: validation, one case in memory (`matches`), and a set of cases in SQL
(`matching_q`). Both evaluations give the same answer for every case; tests/scheduling/test_rules.py
compares them over hundreds of cases on SQLite and PostgreSQL.

Criteria are `[{"property", "operator", "value"}]` and must all hold. Property values are compared as text
(the write path stores every property as a string); a property the case does not have is NULL in SQL and
None here.

=================  ==========================================================================================
operator           matches when
=================  ==========================================================================================
``equal``          the property's value is exactly ``value`` (a number is compared as its text, ``5`` as "5")
``not_equal``      the property is missing, or its value is not ``value``
``has_value``      the property is present and not ""
``has_no_value``   the property is missing or ""
``regex``          ``value`` (Python syntax) is found anywhere in the value (``re.search``; anchor with ^ $)
``days_before``    the value is a date ``YYYY-MM-DD`` and today ≥ date − ``value`` days (from N days before
                   the date on; the date itself and later dates keep matching)
``days_after``     the value is a date ``YYYY-MM-DD`` and today ≥ date + ``value`` days
=================  ==========================================================================================

Dates and zones
---------------
A date property is exactly ``YYYY-MM-DD`` and a real Gregorian date (0001-01-01 to 9999-12-31); anything
else (``2023-02-29``, ``2024-1-5``, a datetime) never matches a days criterion. "Today" is the date on the
case's wall clock: its ``time_zone`` property when that is an IANA zone, else the project's default zone
(`timing.zone_for`, as the scheduler reads it). At one instant the world's zones show at most three dates
(UTC−12 to UTC+14), so `Today` groups every IANA zone by its date and the SQL is, for a threshold
``date ≤ today + k``::

    valid(p) AND (p ≤ d0+k                                  -- every zone is at d0 or later
                  OR (p ≤ d1+k AND zone(case) shows ≥ d1)   -- only the boundary day(s) look at the zone
                  OR (p ≤ d2+k AND zone(case) shows ≥ d2))

where ``zone(case) shows ≥ d`` is ``time_zone IN (zones at ≥ d)``, or, when the project's zone is at ≥ d,
``time_zone`` is missing or not among the zones still at an earlier date (so an invalid or blank zone falls
back to the project's, as in `zone_for`). The dates compare as text, which for this one format is date
order. ``valid(p)`` is one regular expression of the Gregorian calendar on PostgreSQL (the same expression
`matches` uses) and ``date(p, '+0 days') = p`` on SQLite, which normalises impossible dates.

These criteria only ever become true as time passes (never false), so a case that matches keeps its
schedule until its properties change; the ticker re-runs alerts with days criteria once a day
(see `runner.continue_runs`) to start the cases whose day has come.

Regular expressions
-------------------
They are Python's `re`, validated when the alert is saved. On SQLite the set-based run uses Django's REGEXP
function, which is Python's `re.search` (registered by Django on every SQLite connection), so SQL and
`matches` agree by construction. PostgreSQL's ``~`` is another dialect (``\\b`` is a backspace there, ``\\y``
a word boundary), so on PostgreSQL regex criteria are left out of `matching_q` and checked in Python on the
rows the rest of the criteria let through (`python_only` lists them; `runner` does this per chunk).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Final, Literal, get_args
from zoneinfo import ZoneInfo, available_timezones

from django.db import connection
from django.db.models import Q
from django.db.models.lookups import Exact, In, IsNull, LessThanOrEqual, Regex
from pydantic import Field

from casemsg.cases.models import Case
from casemsg.cases.sql import DATE_RE, is_date, property_text
from casemsg.core import errors
from casemsg.core.errors import InputError
from casemsg.projects.models import Project
from casemsg.scheduling.fields import MAX_PROPERTY, Declaration, declared
from casemsg.scheduling.timing import local_date, zone_for

__all__ = [
    "OPERATORS",
    "Criterion",
    "CriterionIn",
    "Operator",
    "Today",
    "check_case_type",
    "describe_cases",
    "describe_criteria",
    "describe_criterion",
    "matches",
    "matching_q",
    "parse_criteria",
    "property_text",
    "python_only",
    "validate_rule",
    "zone_names",
]

Operator = Literal["equal", "not_equal", "has_value", "has_no_value", "regex", "days_before", "days_after"]
OPERATORS: Final[tuple[str, ...]] = get_args(Operator)
_DAYS_OPERATORS: Final = frozenset({"days_before", "days_after"})
_VALUE_OPERATORS: Final = frozenset({"equal", "not_equal", "regex"})
MAX_CRITERIA: Final = 50
MAX_REGEX_LENGTH: Final = 500
MAX_DAYS: Final = 36_500  # a hundred years either way
TIME_ZONE_PROPERTY: Final = "time_zone"


# One criterion as it comes in: the declaration the API and the alert form use (`parse_criteria` checks the
# rest). No docstring: it would become the OpenAPI description.
class CriterionIn(Declaration):
    property: str = Field(max_length=MAX_PROPERTY, examples=["edd"])
    operator: str = Field(
        max_length=16,
        description=" | ".join(OPERATORS),
        examples=["days_before"],
    )
    value: str | int | float | None = Field(None, description="text, a regex, or a number of days", examples=[14])


_KEYS: Final = declared(CriterionIn)


@dataclass(frozen=True)
class Criterion:
    """One validated criterion. `value` is the text for equal / not_equal / regex, `days` the whole number of
    days for days_before / days_after."""

    prop: str  # the case property ("property" in JSON)
    operator: Operator
    value: str = ""
    days: int = 0

    @functools.cached_property
    def pattern(self) -> re.Pattern[str]:
        return re.compile(self.value)

    @property
    def shift(self) -> int:
        """For days criteria, `k` in "the date ≤ today + k": days_before N is N, days_after N is −N."""
        return self.days if self.operator == "days_before" else -self.days

    def as_json(self) -> dict[str, Any]:
        """The normalised form to store: value as given for text operators, an int for days, none otherwise."""
        out: dict[str, Any] = {"property": self.prop, "operator": self.operator}
        if self.operator in _VALUE_OPERATORS:
            out["value"] = self.value
        elif self.operator in _DAYS_OPERATORS:
            out["value"] = self.days
        return out


# --------------------------------------------------------------------------------------------------
# In words (the pages, the CLI): never an operator's name
# --------------------------------------------------------------------------------------------------


def _days_text(n: int) -> str:
    return f"{n} day{'s' if n != 1 else ''}"


def describe_criterion(c: Mapping[str, Any]) -> str:
    """One stored criterion in words: "edd is set", "district is North", "today is 14 days before edd or
    later". Reads the JSON leniently (never an error)."""
    prop = str(c.get("property") or "?")
    op = c.get("operator")
    value = c.get("value")
    text = "" if value is None else str(value)
    if op == "equal":
        return f"{prop} is {text}"
    if op == "not_equal":
        return f"{prop} is not {text}"
    if op == "has_value":
        return f"{prop} is set"
    if op == "has_no_value":
        return f"{prop} is not set"
    if op == "regex":
        return f"{prop} matches the pattern {text}"
    if op in _DAYS_OPERATORS:
        try:
            days = int(str(value))
        except ValueError:
            days = 0
        k = days if op == "days_before" else -days  # the date ≤ today + k
        if k > 0:
            return f"today is {_days_text(k)} before {prop} or later"
        if k < 0:
            return f"today is {_days_text(-k)} after {prop} or later"
        return f"today is {prop} or later"
    return f"{prop} {str(op or '').replace('_', ' ')} {text}".strip()


def describe_criteria(criteria: object) -> str:
    """Every stored criterion in words, joined with "and"; "" for none."""
    items = criteria if isinstance(criteria, list) else []
    return " and ".join(describe_criterion(c) for c in items if isinstance(c, Mapping))


def describe_cases(case_type: str, criteria: object) -> str:
    """The cases an alert's criteria select: "open mother cases where edd is set", or "every open mother
    case" without criteria."""
    where = describe_criteria(criteria)
    return f"open {case_type} cases where {where}" if where else f"every open {case_type} case"


# --------------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------------


def _name(i: int, item: Mapping[str, Any]) -> str:
    """How a message names criterion i: its position (from 1), property and operator when known."""
    bits = [f"criterion {i + 1}"]
    prop, op = item.get("property"), item.get("operator")
    details = ", ".join(
        x for x in (f"property {prop!r}" if isinstance(prop, str) else "", op if isinstance(op, str) else "") if x
    )
    return f"{bits[0]} ({details})" if details else bits[0]


def _days(raw: object) -> int | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        value = raw
    elif isinstance(raw, str) and re.fullmatch(r"[+-]?[0-9]{1,6}", raw.strip()):
        value = int(raw.strip())
    else:
        return None
    return value if -MAX_DAYS <= value <= MAX_DAYS else None


def parse_criteria(raw: object) -> list[Criterion]:
    """Validate an alert's criteria (JSON) into Criterion objects; InputError names the first bad criterion."""
    if not isinstance(raw, list):
        raise InputError(errors.INVALID_CRITERION, "criteria must be a list of {property, operator, value}.")
    if len(raw) > MAX_CRITERIA:
        raise InputError(errors.INVALID_CRITERION, f"At most {MAX_CRITERIA} criteria; got {len(raw)}.")
    out: list[Criterion] = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise InputError(errors.INVALID_CRITERION, f"criterion {i + 1} must be an object, got {item!r}.")
        name = _name(i, item)
        unknown = sorted(str(k) for k in item if k not in _KEYS)
        if unknown:
            raise InputError(
                errors.INVALID_CRITERION,
                f"{name}: unknown field(s) {', '.join(unknown)}; use property, operator, value.",
            )
        prop = item.get("property")
        if not isinstance(prop, str) or not prop.strip() or len(prop) > MAX_PROPERTY or "\x00" in prop:
            raise InputError(errors.INVALID_CRITERION, f"{name}: property must be a case property name.")
        op = item.get("operator")
        if op not in OPERATORS:
            raise InputError(
                errors.UNKNOWN_OPERATOR, f"{name}: unknown operator {op!r}; use one of {', '.join(OPERATORS)}."
            )
        value = item.get("value")
        if op in _DAYS_OPERATORS:
            days = _days(value)
            if days is None:
                raise InputError(
                    errors.INVALID_CRITERION,
                    f"{name}: value must be a whole number of days (-{MAX_DAYS} to {MAX_DAYS}), got {value!r}.",
                )
            out.append(Criterion(prop, op, days=days))
            continue
        if op in ("has_value", "has_no_value"):
            if value not in (None, ""):
                raise InputError(errors.INVALID_CRITERION, f"{name}: {op} takes no value, got {value!r}.")
            out.append(Criterion(prop, op))
            continue
        # equal, not_equal, regex: a text (or a number, compared as its text)
        if value is None or value == "":
            raise InputError(errors.INVALID_CRITERION, f"{name}: a value is required.")
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise InputError(errors.INVALID_CRITERION, f"{name}: value must be text or a number, got {value!r}.")
        text = value if isinstance(value, str) else str(value)
        if "\x00" in text:
            raise InputError(errors.INVALID_CRITERION, f"{name}: value contains a NUL character.")
        if op == "regex":
            if len(text) > MAX_REGEX_LENGTH:
                raise InputError(errors.INVALID_REGEX, f"{name}: longer than {MAX_REGEX_LENGTH} characters.")
            try:
                re.compile(text)
            except re.error as e:
                raise InputError(errors.INVALID_REGEX, f"{name}: {text!r} is not a regular expression: {e}.") from e
        out.append(Criterion(prop, op, value=text))
    return out


def check_case_type(project: Project, case_type: str) -> None:
    """A 422 for a case type none of the project's cases has (open or closed): such an alert never matches."""
    if not (case_type or "").strip():
        raise InputError(errors.CASE_TYPE_REQUIRED, "An alert needs the case type its criteria apply to.")
    if not Case.objects.filter(project=project, case_type=case_type).exists():
        raise InputError(
            errors.UNKNOWN_CASE_TYPE, f"No case of project {project.slug} has the case type {case_type!r}."
        )


def validate_rule(project: Project, case_type: str, criteria: object) -> list[Criterion]:
    """What the alert create/update service checks: the criteria, then the case type."""
    parsed = parse_criteria(criteria)
    check_case_type(project, case_type)
    return parsed


# --------------------------------------------------------------------------------------------------
# Today, in every zone
# --------------------------------------------------------------------------------------------------


@functools.cache
def zone_names() -> frozenset[str]:
    """Every name `zone_for` accepts as a contact zone (the IANA names)."""
    return frozenset(name for name in available_timezones() if zone_for(name, None)[1] is None)


class Today:
    """Today's date on every wall clock at one instant (`now`, aware), with the project's zone as the
    fallback for cases without a valid `time_zone`. Pass one Today to a whole run or hook call."""

    def __init__(self, now: datetime, project_zone: str | None):
        self.now = now
        self.project_zone = project_zone or ""
        self._by_zone: dict[str, date] = {}
        zone, _ = zone_for(None, self.project_zone)
        self.project_date = local_date(now, zone)

    def in_zone(self, zone: ZoneInfo) -> date:
        return local_date(self.now, zone)

    def for_properties(self, properties: Mapping[str, Any]) -> date:
        """Today on the wall clock of a case with these properties."""
        name = properties.get(TIME_ZONE_PROPERTY)
        key = name if isinstance(name, str) else ""
        try:
            return self._by_zone[key]
        except KeyError:
            zone, _ = zone_for(key, self.project_zone)
            day = self._by_zone[key] = local_date(self.now, zone)
            return day

    @functools.cached_property
    def zone_dates(self) -> dict[date, frozenset[str]]:
        """Every IANA zone, grouped by the date it shows now (two or three dates)."""
        groups: dict[date, set[str]] = {}
        for name in zone_names():
            groups.setdefault(local_date(self.now, ZoneInfo(name)), set()).add(name)
        return {d: frozenset(names) for d, names in sorted(groups.items())}


def _threshold(day: date, shift: int) -> date | bool:
    """day + shift, or True when past 9999-12-31 (every date is before it), False before 0001-01-01."""
    try:
        return day + timedelta(days=shift)
    except OverflowError:
        return shift > 0


# --------------------------------------------------------------------------------------------------
# One case, in memory
# --------------------------------------------------------------------------------------------------


def _text(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return str(value)


def _holds(c: Criterion, properties: Mapping[str, Any], today: Today) -> bool:
    value = _text(properties.get(c.prop))
    op = c.operator
    if op == "equal":
        return value == c.value
    if op == "not_equal":
        return value != c.value
    if op == "has_value":
        return value is not None and value != ""
    if op == "has_no_value":
        return value is None or value == ""
    if op == "regex":
        return value is not None and c.pattern.search(value) is not None
    # days_before / days_after
    if value is None or DATE_RE.fullmatch(value) is None:
        return False
    limit = _threshold(today.for_properties(properties), c.shift)
    if isinstance(limit, bool):
        return limit
    return date.fromisoformat(value) <= limit


def matches(case: Case, criteria: Sequence[Criterion], today: Today) -> bool:
    """Whether the case's properties meet every criterion (the case type and closed state are the caller's)."""
    properties = case.properties or {}
    return all(_holds(c, properties, today) for c in criteria)


# --------------------------------------------------------------------------------------------------
# A set of cases, in SQL
# --------------------------------------------------------------------------------------------------


def _zone_from(day: date, today: Today) -> Q:
    """The case's wall clock shows `day` or a later date."""
    zones = today.zone_dates
    late = frozenset().union(*(names for d, names in zones.items() if d >= day))
    tz = property_text(TIME_ZONE_PROPERTY)
    if today.project_date >= day:
        # late unless the case names a valid zone that is still at an earlier date
        early = sorted(zone_names() - late)
        return Q(IsNull(tz, True)) | ~Q(In(tz, early)) if early else Q()  # Q(): no condition (it is ANDed)
    return Q(In(tz, sorted(late)))


def _date_q(c: Criterion, today: Today) -> Q:
    p = property_text(c.prop)
    either: Q | None = None
    for i, day in enumerate(sorted(today.zone_dates)):
        limit = _threshold(day, c.shift)
        if limit is False:
            continue
        part = Q(IsNull(p, False)) if isinstance(limit, bool) else Q(LessThanOrEqual(p, limit.isoformat()))
        if i > 0:
            part &= _zone_from(day, today)
        either = part if either is None else either | part
    if either is None:
        return Q(pk__in=[])
    return is_date(p) & either


def python_only(criteria: Sequence[Criterion]) -> list[Criterion]:
    """The criteria this database cannot evaluate as `matches` does: regex on PostgreSQL (see the notes)."""
    if connection.vendor == "sqlite":
        return []
    return [c for c in criteria if c.operator == "regex"]


def matching_q(criteria: Sequence[Criterion], today: Today) -> Q:
    """A filter on Case for the criteria (all must hold), except those `python_only` returns."""
    skip = set(map(id, python_only(criteria)))
    q = Q()
    for c in criteria:
        if id(c) in skip:
            continue
        p = property_text(c.prop)
        if c.operator == "equal":
            q &= Q(Exact(p, c.value))
        elif c.operator == "not_equal":
            q &= Q(IsNull(p, True)) | ~Q(Exact(p, c.value))
        elif c.operator == "has_value":
            q &= Q(IsNull(p, False)) & ~Q(Exact(p, ""))
        elif c.operator == "has_no_value":
            q &= Q(IsNull(p, True)) | Q(Exact(p, ""))
        elif c.operator == "regex":
            q &= Q(Regex(p, c.value))
        else:
            q &= _date_q(c, today)
    return q
