"""Each condition of a dynamic group, evaluated in SQL (SQLite and PostgreSQL alike): property operators,
dates against today in the project's zone, numbers only when the value is one, and contact state (can
receive SMS, has consent, opted out) from the registry, the opt-outs and the consent regions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from casemsg.cases.services import CaseChange, bulk_upsert
from casemsg.contacts import optouts
from casemsg.core import errors, phone
from casemsg.core.errors import InputError
from casemsg.groups import conditions, queries, services

KE, KE2, KE3 = "254711000101", "254711000102", "254711000103"
US, US2, CA = "12066171234", "12066171235", "16135550123"


def _day(days: int) -> str:
    return (datetime.now(UTC).date() + timedelta(days=days)).isoformat()


@pytest.fixture
def people(project):
    rows = [
        ("a", {"district": "North", "age": "12", "edd": _day(3), "tags": "pilot, urban", "contact_phone_number": KE}),
        ("b", {"district": "South", "age": "30.5", "edd": _day(40), "tags": "rural", "contact_phone_number": US}),
        (
            "c",
            {
                "district": "",
                "age": "old",
                "edd": _day(-5),
                "contact_phone_number": US2,
                "contact_phone_number_is_verified": "1",
            },
        ),
        ("d", {"age": "-4", "edd": "2024-02-30", "contact_phone_number": CA}),
        ("e", {"district": "north", "edd": _day(0), "contact_phone_number": KE2}),
        ("f", {"district": "North", "contact_phone_number": KE3}),
    ]
    made = bulk_upsert(
        project, [CaseChange(case_id=cid, case_type="mother", name=cid.upper(), properties=p) for cid, p in rows]
    )
    bulk_upsert(project, [CaseChange(case_id="other", case_type="child", properties={"district": "North"})])
    optouts.add(KE3, project.pk, on=timezone.now(), source="test")  # f opted out of this project
    return {c.case_id: c for c in made}


def members(project, conds, case_type="mother") -> set[str]:
    g = services.create_group(
        project,
        {
            "name": f"g{len(services.Group.objects.all())}",
            "kind": "dynamic",
            "case_type": case_type,
            "conditions": conds,
        },
    )
    return {c.case_id for c in queries.members(g)}


@pytest.mark.parametrize(
    "cond, expected",
    [
        ({"property": "district", "operator": "equals", "value": "North"}, {"a", "f"}),
        ({"property": "district", "operator": "not_equals", "value": "North"}, {"b", "c", "d", "e"}),
        ({"property": "district", "operator": "in", "value": ["South", "north"]}, {"b", "e"}),
        ({"property": "tags", "operator": "contains", "value": "URBAN"}, {"a"}),
        ({"property": "district", "operator": "is_set"}, {"a", "b", "e", "f"}),
        ({"property": "district", "operator": "is_not_set"}, {"c", "d"}),
        ({"property": "age", "operator": "greater_than", "value": 12}, {"b"}),
        ({"property": "age", "operator": "at_least", "value": "12"}, {"a", "b"}),
        ({"property": "age", "operator": "less_than", "value": 0}, {"d"}),
        ({"property": "age", "operator": "at_most", "value": 30.5}, {"a", "b", "d"}),
        ({"property": "edd", "operator": "before", "value": _day(0)}, {"c"}),
        ({"property": "edd", "operator": "on_or_before", "value": _day(0)}, {"c", "e"}),
        ({"property": "edd", "operator": "after", "value": _day(3)}, {"b"}),
        ({"property": "edd", "operator": "on_or_after", "value": _day(3)}, {"a", "b"}),
        ({"property": "edd", "operator": "within_next_days", "value": 7}, {"a", "e"}),
        ({"property": "edd", "operator": "within_last_days", "value": 7}, {"c", "e"}),
        ({"contact": "can_receive_sms"}, {"a", "c", "d", "e"}),
        ({"contact": "can_receive_sms", "value": False}, {"b", "f"}),
        ({"contact": "has_consent"}, {"c"}),
        ({"contact": "opted_out"}, {"f"}),
        ({"contact": "opted_out", "value": False}, {"a", "b", "c", "d", "e"}),
    ],
)
def test_each_condition(project, people, cond, expected):
    assert members(project, [cond]) == expected


def test_conditions_all_hold_and_closed_cases_are_left_out(project, people):
    both = [
        {"property": "district", "operator": "equals", "value": "North"},
        {"contact": "can_receive_sms"},
    ]
    assert members(project, both) == {"a"}
    bulk_upsert(project, [CaseChange(case_id="a", closed=True)])
    assert members(project, both) == set()
    assert members(project, []) == {"b", "c", "d", "e", "f"}  # the open cases of the type
    assert members(project, [], case_type="child") == {"other"}


def test_can_receive_sms_in_sql_agrees_with_the_phone_rules(project):
    """The consent rule in SQL (country code, +1 area codes by region) gives phone.needs_consent's answer."""
    numbers = [US, CA, "14165550123", "18095550123", "17875550123", "16715550123", KE, "447911123456", "919812345678"]
    rows = [
        CaseChange(case_id=f"n{i}", case_type="p", properties={"contact_phone_number": n})
        for i, n in enumerate(numbers)
    ]
    bulk_upsert(project, rows)
    # (a country code several regions share, such as +44 for GB, GG, JE and IM, counts as one in SQL: with
    # GB a consent region, a Guernsey number counts as needing consent too — the safe side; docs/groups.md)
    for regions in (None, ["US", "CA"], ["IN"], []):
        project.consent_regions = regions if regions is not None else phone.DEFAULT_CONSENT_REGIONS
        project.save(update_fields=["consent_regions"])
        g = services.create_group(
            project,
            {
                "name": f"r{regions}",
                "kind": "dynamic",
                "case_type": "p",
                "conditions": [{"contact": "can_receive_sms"}],
            },
        )
        got = {c.case_id for c in queries.members(g)}
        want = {
            f"n{i}" for i, n in enumerate(numbers) if not phone.needs_consent(phone.check(n), project.consent_regions)
        }
        assert got == want, regions


def test_today_is_the_projects_date(project, people):
    project.default_time_zone = "Pacific/Kiritimati"  # UTC+14: its today may be tomorrow in UTC
    project.save(update_fields=["default_time_zone"])
    now = datetime(2030, 1, 1, 11, 0, tzinfo=UTC)  # 2030-01-02 01:00 in Kiritimati
    assert conditions.today_in(project, now).isoformat() == "2030-01-02"


@pytest.mark.parametrize(
    "cond, words",
    [
        ({"property": "edd", "operator": "within_next_days", "value": "x"}, "whole number of days"),
        ({"property": "edd", "operator": "before", "value": "2024-2-1"}, "date YYYY-MM-DD"),
        ({"property": "age", "operator": "greater_than", "value": "ten"}, "a number"),
        ({"property": "x", "operator": "has_value"}, "unknown operator"),
        ({"property": "x", "operator": "in", "value": "North"}, "list"),
        ({"property": "x", "operator": "equals"}, "value is required"),
        ({"property": "x", "operator": "is_set", "value": "1"}, "takes no value"),
        ({"contact": "happy"}, "contact must be one of"),
        ({"contact": "opted_out", "value": "yes"}, "true or false"),
        ({"operator": "equals", "value": "x"}, "property must be"),
        ({"property": "x", "operator": "equals", "value": "y", "extra": 1}, "unknown field"),
    ],
)
def test_bad_conditions_are_refused_naming_them(cond, words):
    with pytest.raises(InputError) as e:
        conditions.parse_conditions([{"property": "district", "operator": "is_set"}, cond])
    assert e.value.code == errors.INVALID_CONDITION
    assert e.value.message.startswith("condition 2") and words in e.value.message, e.value.message


def test_conditions_in_words():
    parsed = conditions.parse_conditions(
        [
            {"property": "district", "operator": "in", "value": ["North", "East"]},
            {"property": "edd", "operator": "within_next_days", "value": 14},
            {"property": "age", "operator": "at_least", "value": 18},
            {"contact": "opted_out", "value": False},
        ]
    )
    assert conditions.describe(parsed) == (
        "district is one of North, East and edd is a date within the next 14 days and age is at least 18 "
        "and not opted out"
    )
    assert [c.as_json() for c in parsed][2] == {"property": "age", "operator": "at_least", "value": 18}
