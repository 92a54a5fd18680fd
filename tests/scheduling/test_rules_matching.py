"""Alert criteria (casemsg.scheduling.rules): validation codes, each operator in memory and in SQL, and
days_before / days_after around midnight in two zones, with a frozen `now`.

The SQL filter and the in-memory evaluation must agree on every case: `_both` asserts it for each check.

Zones used (hand-worked): Asia/Kolkata UTC+5:30, America/Los_Angeles UTC−7 in March after 10 Mar 2024,
Pacific/Kiritimati UTC+14, Pacific/Pago_Pago UTC−11, Africa/Nairobi UTC+3 (the project's zone).
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from django.db import connection

from casemsg.cases.models import Case
from casemsg.cases.services import CaseChange, bulk_upsert
from casemsg.core import errors
from casemsg.core.errors import InputError
from casemsg.projects.services import create_project
from casemsg.scheduling import rules
from casemsg.scheduling.rules import Today, matches, matching_q, parse_criteria, python_only


@pytest.fixture
def nairobi(db):
    project, _ = create_project("nairobi", "Nairobi program", time_zone="Africa/Nairobi")
    return project


def _cases(project, rows: list[dict[str, Any]], case_type: str = "mother") -> list[Case]:
    return bulk_upsert(project, [CaseChange(case_type=case_type, properties=props) for props in rows])


def _sql(project, criteria, today: Today, case_type: str = "mother") -> set[int]:
    """What a rule run selects: the SQL filter, then the criteria this database leaves to Python."""
    qs = Case.objects.filter(project=project, case_type=case_type, closed=False).filter(matching_q(criteria, today))
    rest = python_only(criteria)
    return {c.pk for c in qs if not rest or matches(c, rest, today)}


def _both(project, raw: list[dict], now: datetime, case_type: str = "mother") -> set[int]:
    """The pks matching `raw` at `now`, asserting SQL and memory agree; returns them."""
    criteria = parse_criteria(raw)
    today = Today(now, project.default_time_zone)
    in_memory = {
        c.pk
        for c in Case.objects.filter(project=project, case_type=case_type, closed=False)
        if matches(c, criteria, today)
    }
    assert _sql(project, criteria, today, case_type) == in_memory, raw
    return in_memory


NOW = datetime(2024, 3, 20, 12, 0, tzinfo=UTC)


# --- validation ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "code", "names"),
    [
        ("edd", errors.INVALID_CRITERION, "criteria must be a list"),
        ([{"property": "x", "operator": "bigger", "value": "1"}], errors.UNKNOWN_OPERATOR, "criterion 1"),
        ([{"property": "x", "operator": "equal"}], errors.INVALID_CRITERION, "property 'x', equal"),
        ([{"property": "x", "operator": "equal", "value": ""}], errors.INVALID_CRITERION, "a value is required"),
        ([{"property": "x", "operator": "equal", "value": True}], errors.INVALID_CRITERION, "text or a number"),
        ([{"property": "", "operator": "equal", "value": "1"}], errors.INVALID_CRITERION, "criterion 1"),
        ([{"operator": "equal", "value": "1"}], errors.INVALID_CRITERION, "property must be"),
        ([{"property": "x", "operator": "regex", "value": "(a"}], errors.INVALID_REGEX, "property 'x', regex"),
        ([{"property": "x", "operator": "regex", "value": "a" * 501}], errors.INVALID_REGEX, "longer than"),
        (
            [
                {"property": "ok", "operator": "has_value"},
                {"property": "edd", "operator": "days_before", "value": "3d"},
            ],
            errors.INVALID_CRITERION,
            "criterion 2 (property 'edd', days_before)",
        ),
        ([{"property": "edd", "operator": "days_after", "value": 2.5}], errors.INVALID_CRITERION, "whole number"),
        ([{"property": "edd", "operator": "days_after"}], errors.INVALID_CRITERION, "whole number"),
        ([{"property": "edd", "operator": "days_after", "value": 10**6}], errors.INVALID_CRITERION, "whole number"),
        ([{"property": "x", "operator": "has_value", "value": "1"}], errors.INVALID_CRITERION, "takes no value"),
        ([{"property": "x", "operator": "equal", "value": "1", "extra": 1}], errors.INVALID_CRITERION, "extra"),
        (["x"], errors.INVALID_CRITERION, "criterion 1 must be an object"),
    ],
)
def test_bad_criteria_are_input_errors_naming_the_criterion(raw, code, names) -> None:
    with pytest.raises(InputError) as e:
        parse_criteria(raw)
    assert e.value.code == code
    assert e.value.status == 422
    assert names in e.value.message


def test_criteria_are_normalised() -> None:
    parsed = parse_criteria(
        [
            {"property": "n", "operator": "equal", "value": 5},
            {"property": "edd", "operator": "days_before", "value": " 7 "},
            {"property": "risk", "operator": "has_value", "value": None},
        ]
    )
    assert [c.as_json() for c in parsed] == [
        {"property": "n", "operator": "equal", "value": "5"},
        {"property": "edd", "operator": "days_before", "value": 7},
        {"property": "risk", "operator": "has_value"},
    ]


def test_a_case_type_no_case_has_is_refused(nairobi) -> None:
    _cases(nairobi, [{}], case_type="mother")
    rules.validate_rule(nairobi, "mother", [])
    with pytest.raises(InputError) as e:
        rules.validate_rule(nairobi, "mothr", [{"property": "x", "operator": "has_value"}])
    assert (e.value.code, e.value.status) == (errors.UNKNOWN_CASE_TYPE, 422)
    with pytest.raises(InputError) as e:
        rules.check_case_type(nairobi, " ")
    assert e.value.code == errors.CASE_TYPE_REQUIRED


# --- each operator ---------------------------------------------------------------------------------


def test_text_operators(nairobi) -> None:
    a, b, c, d, e = _cases(
        nairobi,
        [
            {"risk": "high", "visits": "5"},
            {"risk": "low", "visits": "50"},
            {"risk": ""},
            {},
            {"risk": "High risk", "visits": "5.0"},
        ],
    )
    assert _both(nairobi, [{"property": "risk", "operator": "equal", "value": "high"}], NOW) == {a.pk}
    assert _both(nairobi, [{"property": "visits", "operator": "equal", "value": 5}], NOW) == {a.pk}
    assert _both(nairobi, [{"property": "risk", "operator": "not_equal", "value": "high"}], NOW) == {
        b.pk,
        c.pk,
        d.pk,
        e.pk,
    }
    assert _both(nairobi, [{"property": "risk", "operator": "has_value"}], NOW) == {a.pk, b.pk, e.pk}
    assert _both(nairobi, [{"property": "risk", "operator": "has_no_value"}], NOW) == {c.pk, d.pk}
    assert _both(nairobi, [{"property": "risk", "operator": "regex", "value": "^[Hh]igh"}], NOW) == {a.pk, e.pk}
    assert _both(nairobi, [{"property": "risk", "operator": "regex", "value": r"\brisk$"}], NOW) == {e.pk}
    assert _both(nairobi, [{"property": "visits", "operator": "regex", "value": r"^\d+$"}], NOW) == {a.pk, b.pk}
    # all must hold
    both = [
        {"property": "risk", "operator": "has_value"},
        {"property": "visits", "operator": "equal", "value": "5"},
    ]
    assert _both(nairobi, both, NOW) == {a.pk}
    assert _both(nairobi, [], NOW) == {a.pk, b.pk, c.pk, d.pk, e.pk}


def test_property_names_are_taken_literally(nairobi) -> None:
    a, b = _cases(nairobi, [{"a__b": "1", "a": "x"}, {"contains": "1"}])
    assert _both(nairobi, [{"property": "a__b", "operator": "equal", "value": "1"}], NOW) == {a.pk}
    assert _both(nairobi, [{"property": "contains", "operator": "has_value"}], NOW) == {b.pk}


def test_days_before_and_after_on_the_project_zone(nairobi) -> None:
    # NOW is 20 Mar 2024 15:00 in Nairobi (the project's zone; these cases name none).
    on, before, after, bad, feb = _cases(
        nairobi,
        [
            {"edd": "2024-03-23"},
            {"edd": "2024-03-24"},
            {"edd": "2024-03-10"},
            {"edd": "2024-3-23"},
            {"edd": "2023-02-29"},
        ],
    )
    # days_before 3: from 3 days before the date on
    assert _both(nairobi, [{"property": "edd", "operator": "days_before", "value": 3}], NOW) == {on.pk, after.pk}
    assert _both(nairobi, [{"property": "edd", "operator": "days_before", "value": 0}], NOW) == {after.pk}
    # days_after 10: from 10 days after the date on
    assert _both(nairobi, [{"property": "edd", "operator": "days_after", "value": 10}], NOW) == {after.pk}
    assert _both(nairobi, [{"property": "edd", "operator": "days_after", "value": 11}], NOW) == set()
    assert _both(nairobi, [{"property": "edd", "operator": "days_after", "value": -4}], NOW) == {
        on.pk,
        before.pk,
        after.pk,
    }
    # the malformed and the impossible date never match
    assert bad.pk not in _both(nairobi, [{"property": "edd", "operator": "days_after", "value": -3650}], NOW)
    assert feb.pk not in _both(nairobi, [{"property": "edd", "operator": "days_after", "value": -3650}], NOW)


@pytest.mark.parametrize(
    ("now", "kolkata", "los_angeles"),
    [
        # 10 Mar 18:29 UTC: Kolkata 23:59 on the 10th, Los Angeles 11:29 on the 10th
        (datetime(2024, 3, 10, 18, 29, tzinfo=UTC), False, False),
        # 10 Mar 18:30 UTC: Kolkata 00:00 on the 11th: its day has come; Los Angeles still the 10th
        (datetime(2024, 3, 10, 18, 30, tzinfo=UTC), True, False),
        # 11 Mar 06:59 UTC: Los Angeles (PDT, UTC−7) 23:59 on the 10th
        (datetime(2024, 3, 11, 6, 59, tzinfo=UTC), True, False),
        # 11 Mar 07:00 UTC: Los Angeles 00:00 on the 11th
        (datetime(2024, 3, 11, 7, 0, tzinfo=UTC), True, True),
    ],
)
def test_days_before_uses_today_in_the_cases_zone_around_midnight(nairobi, now, kolkata, los_angeles) -> None:
    # The date 14 Mar, 3 days before: each case matches from 11 Mar on its own wall clock.
    k, la = _cases(
        nairobi,
        [{"edd": "2024-03-14", "time_zone": "Asia/Kolkata"}, {"edd": "2024-03-14", "time_zone": "America/Los_Angeles"}],
    )
    got = _both(nairobi, [{"property": "edd", "operator": "days_before", "value": 3}], now)
    assert (k.pk in got, la.pk in got) == (kolkata, los_angeles)
    # days_after: the same day boundary, 11 Mar = 7 Mar + 4
    k2, la2 = _cases(
        nairobi,
        [{"lmp": "2024-03-07", "time_zone": "Asia/Kolkata"}, {"lmp": "2024-03-07", "time_zone": "America/Los_Angeles"}],
    )
    got = _both(nairobi, [{"property": "lmp", "operator": "days_after", "value": 4}], now)
    assert (k2.pk in got, la2.pk in got) == (kolkata, los_angeles)


def test_an_invalid_or_blank_zone_falls_back_to_the_projects(nairobi) -> None:
    # 20 Mar 21:30 UTC: Nairobi (the project) is on the 21st, UTC on the 20th, Los Angeles on the 20th.
    now = datetime(2024, 3, 20, 21, 30, tzinfo=UTC)
    rows = [{"edd": "2024-03-21", "time_zone": tz} for tz in ("Mars/Olympus", "", "UTC", "America/Los_Angeles")]
    rows.append({"edd": "2024-03-21"})
    bogus, blank, utc, la, unset = _cases(nairobi, rows)
    got = _both(nairobi, [{"property": "edd", "operator": "days_before", "value": 0}], now)
    assert got == {bogus.pk, blank.pk, unset.pk}


def test_three_dates_at_once(nairobi) -> None:
    # 10 Mar 10:30 UTC: Kiritimati (UTC+14) is on the 11th at 00:30, Pago Pago (UTC−11) on the 9th at 23:30.
    now = datetime(2024, 3, 10, 10, 30, tzinfo=UTC)
    assert len(Today(now, "UTC").zone_dates) == 3
    zones = ["Pacific/Kiritimati", "UTC", "Pacific/Pago_Pago"]
    cases = _cases(
        nairobi, [{"d": day, "time_zone": tz} for tz in zones for day in ("2024-03-09", "2024-03-10", "2024-03-11")]
    )
    got = _both(nairobi, [{"property": "d", "operator": "days_before", "value": 0}], now)
    expected = {
        cases[0].pk, cases[1].pk, cases[2].pk,  # Kiritimati: up to the 11th
        cases[3].pk, cases[4].pk,  # UTC: up to the 10th
        cases[6].pk,  # Pago Pago: the 9th
    }  # fmt: skip
    assert got == expected


def test_sql_and_memory_agree_on_random_cases(nairobi) -> None:
    rng = random.Random(7)
    zones = ["Asia/Kolkata", "America/Los_Angeles", "Pacific/Kiritimati", "Pacific/Pago_Pago", "UTC", "", "bad/zone"]
    base = date(2024, 3, 10)
    rows = []
    for _ in range(300):
        props: dict[str, Any] = {}
        if rng.random() < 0.8:
            props["edd"] = (base + timedelta(days=rng.randrange(-6, 7))).isoformat()
        if rng.random() < 0.1:
            props["edd"] = rng.choice(["2023-02-29", "soon", "2024-03-10T10:00", "20240310", "0000-01-01"])
        if rng.random() < 0.9:
            props["time_zone"] = rng.choice(zones)
        if rng.random() < 0.7:
            props["risk"] = rng.choice(["high", "low", "", "HIGH", "medium high"])
        rows.append(props)
    _cases(nairobi, rows)
    criteria_sets = [
        [{"property": "edd", "operator": "days_before", "value": 2}],
        [{"property": "edd", "operator": "days_after", "value": 1}, {"property": "risk", "operator": "has_value"}],
        [{"property": "risk", "operator": "regex", "value": "(?i)high"}, {"property": "edd", "operator": "has_value"}],
        [
            {"property": "risk", "operator": "not_equal", "value": "low"},
            {"property": "time_zone", "operator": "has_no_value"},
        ],
    ]
    for hours in range(0, 48, 1):
        now = datetime(2024, 3, 9, 0, 30, tzinfo=UTC) + timedelta(hours=hours)
        for raw in criteria_sets:
            _both(nairobi, raw, now)


def test_regex_on_postgresql_is_checked_in_python() -> None:
    criteria = parse_criteria(
        [{"property": "a", "operator": "regex", "value": r"\bx"}, {"property": "b", "operator": "has_value"}]
    )
    assert python_only(criteria) == ([criteria[0]] if connection.vendor == "postgresql" else [])
