"""Recipients and criteria in words on every page that shows them — the broadcast and alert lists and
pages, a broadcast kept as it is on its edit form, the pre-flight, a case's coming sends, the groups — never a
Python dict (`{'case_type': …}`) and never an operator's name (`has_value`); and every operator of an alert's
criteria and of a group's conditions has its words (`rules.describe_criterion`, `Condition.describe`), which
the CLI prints too."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command

from casemsg.cases.services import CaseChange, bulk_upsert
from casemsg.groups import conditions
from casemsg.groups import services as group_services
from casemsg.scheduling import rules, services
from casemsg.scheduling.models import Broadcast

ALERT_CRITERIA = [
    ({"property": "district", "operator": "equal", "value": "North"}, "district is North"),
    ({"property": "district", "operator": "not_equal", "value": "South"}, "district is not South"),
    ({"property": "edd", "operator": "has_value"}, "edd is set"),
    ({"property": "delivered", "operator": "has_no_value"}, "delivered is not set"),
    ({"property": "phone", "operator": "regex", "value": "^2547"}, "phone matches the pattern ^2547"),
    ({"property": "edd", "operator": "days_before", "value": 14}, "today is 14 days before edd or later"),
    ({"property": "edd", "operator": "days_after", "value": 1}, "today is 1 day after edd or later"),
]
GROUP_CONDITIONS = [
    ({"property": "district", "operator": "equals", "value": "North"}, "district is North"),
    ({"property": "district", "operator": "not_equals", "value": "South"}, "district is not South"),
    ({"property": "district", "operator": "in", "value": ["North", "East"]}, "district is one of North, East"),
    ({"property": "name", "operator": "contains", "value": "sha"}, "name contains sha"),
    ({"property": "edd", "operator": "is_set"}, "edd is set"),
    ({"property": "delivered", "operator": "is_not_set"}, "delivered is not set"),
    ({"property": "visits", "operator": "greater_than", "value": 2}, "visits is more than 2"),
    ({"property": "visits", "operator": "at_least", "value": 2}, "visits is at least 2"),
    ({"property": "visits", "operator": "less_than", "value": 9}, "visits is less than 9"),
    ({"property": "visits", "operator": "at_most", "value": 9}, "visits is at most 9"),
    ({"property": "edd", "operator": "before", "value": "2031-01-01"}, "edd is a date before 2031-01-01"),
    ({"property": "edd", "operator": "after", "value": "2020-01-01"}, "edd is a date after 2020-01-01"),
    ({"property": "edd", "operator": "on_or_before", "value": "2031-01-01"}, "edd is a date on or before 2031-01-01"),
    ({"property": "edd", "operator": "on_or_after", "value": "2020-01-01"}, "edd is a date on or after 2020-01-01"),
    ({"property": "edd", "operator": "within_next_days", "value": 30}, "edd is a date within the next 30 days"),
    ({"property": "edd", "operator": "within_last_days", "value": 1}, "edd is a date within the last 1 day"),
    ({"contact": "can_receive_sms", "value": True}, "can receive SMS"),
    ({"contact": "has_consent", "value": False}, "has no consent"),
    ({"contact": "opted_out", "value": False}, "not opted out"),
]
OPERATOR_NAMES = sorted(
    {op for op in (*rules.OPERATORS, *conditions.OPERATORS) if "_" in op or op == "regex"}
    | {"can_receive_sms", "has_consent", "opted_out"}
)


def test_every_alert_operator_in_words():
    assert {c["operator"] for c, _words in ALERT_CRITERIA} == set(rules.OPERATORS)  # a new one needs words
    for criterion, words in ALERT_CRITERIA:
        assert rules.describe_criterion(criterion) == words
    assert (
        rules.describe_criterion({"property": "edd", "operator": "days_before", "value": 0}) == "today is edd or later"
    )
    assert rules.describe_criterion({"property": "edd", "operator": "days_after", "value": -3}) == (
        "today is 3 days before edd or later"  # days_after −3 is days_before 3
    )
    assert rules.describe_cases("mother", []) == "every open mother case"
    assert rules.describe_cases("mother", [ALERT_CRITERIA[2][0]]) == "open mother cases where edd is set"


def test_every_group_operator_in_words():
    ops = {c.get("operator") or c["contact"] for c, _words in GROUP_CONDITIONS}
    assert set(conditions.OPERATORS) | set(conditions.CONTACT_LABELS) <= ops
    for condition, words in GROUP_CONDITIONS:
        assert conditions.parse_conditions([condition])[0].describe() == words


def visible(html: str) -> str:
    """The page's text as a person reads it (no tags, so no form's option values)."""
    body = re.sub(r"(?s)<(script|style|select)\b.*?</\1>", " ", html)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body))


@pytest.fixture
def setup(project):
    bulk_upsert(
        project,
        [
            CaseChange(
                case_id="m-1",
                case_type="mother",
                name="Asha",
                properties={"contact_phone_number": "254711000001", "district": "North", "edd": "2030-01-01"},
            )
        ],
    )
    now = datetime.now(UTC)
    later = (now + timedelta(days=3)).date().isoformat()
    group = group_services.create_group(
        project,
        {
            "name": "Everything",
            "kind": "dynamic",
            "case_type": "mother",
            "conditions": [c for c, _ in GROUP_CONDITIONS],
        },
    )
    schedule = {"type": "daily", "time": "09:00", "start_date": later, "count": 2}
    b = services.create_broadcast(
        project,
        {
            "name": "Tips",
            "content": {"text": "Hello"},
            "recipients": {"case_type": "mother", "filters": {"district": "North"}},
            "schedule": schedule,
        },
    )
    owners = services.create_broadcast(
        project,
        {
            "name": "Workers",
            "content": {"text": "Visit"},
            "recipients": {"owners_of": {"case_type": "mother", "filters": {}}},
            "schedule": schedule,
        },
    )
    a = services.create_alert(
        project,
        {
            "name": "Every operator",
            "case_type": "mother",
            "criteria": [c for c, _ in ALERT_CRITERIA],
            "content": {"text": "Hi"},
            "recipients": {"roles": ["case"], "group": group.pk},
            "schedule": {"type": "offsets", "unit": "days", "offsets": [1]},
        },
    )
    return b, owners, a, group


def test_no_dict_and_no_operator_name_on_any_page(staff, project, setup):
    b, owners, a, group = setup
    slug = project.slug
    pages = {
        "broadcasts": f"/projects/{slug}/broadcasts/",
        "broadcast": f"/projects/{slug}/broadcasts/{b.pk}/",
        "owners": f"/projects/{slug}/broadcasts/{owners.pk}/",
        "owners edit": f"/projects/{slug}/broadcasts/{owners.pk}/edit/",
        "alerts": f"/projects/{slug}/alerts/",
        "alert": f"/projects/{slug}/alerts/{a.pk}/",
        "case": f"/projects/{slug}/cases/m-1/",
        "groups": f"/projects/{slug}/groups/",
        "group": f"/projects/{slug}/groups/{group.pk}/",
    }
    texts = {}
    for name, url in pages.items():
        r = staff.get(url)
        assert r.status_code == 200, url
        texts[name] = visible(r.content.decode())
    r = staff.post(
        f"/projects/{slug}/broadcasts/preflight/",
        {
            "name": "Pre",
            "channel": "sms",
            "text": "Hello",
            "case_type": "mother",
            "filters": "district=North",
            "group": str(group.pk),
            "schedule_type": "once",
            "date": (datetime.now(UTC) + timedelta(days=3)).date().isoformat(),
            "time": "09:00",
            "time_zone": "recipient",
        },
        HTTP_HX_REQUEST="true",
    )
    assert r.status_code == 200
    texts["preflight"] = visible(r.content.decode())

    for name, text in texts.items():
        assert "{'" not in text and "{&#x27;" not in text and "[{" not in text, (name, text[:2000])
        found = [op for op in OPERATOR_NAMES if re.search(rf"\b{op}\b", text)]
        assert found == [], (name, found)

    assert "open mother cases where district is North" in texts["broadcast"]
    assert "the mobile workers who own open mother cases" in texts["owners edit"]
    assert "open mother cases where district is North and district is not South and edd is set" in texts["alert"]
    assert "today is 14 days before edd or later" in texts["alerts"]
    assert "members of group “Everything”" in texts["alert"]
    assert "edd is a date within the next 30 days" in texts["group"]
    assert "open mother cases where district is North; group “Everything”" in texts["preflight"]


def test_the_cli_shows_an_alert_in_words(project, setup):
    _b, _owners, a, _group = setup
    out = io.StringIO()
    call_command("alerts", "show", str(a.pk), "--project", project.slug, stdout=out)
    text = out.getvalue()
    assert "open mother cases where district is North" in text and "has_value" not in text
    out = io.StringIO()
    call_command(
        "broadcasts", "show", str(Broadcast.objects.get(name="Tips").pk), "--project", project.slug, stdout=out
    )
    assert "open mother cases where district is North" in out.getvalue()
