"""Survey content on the broadcast and alert forms: the survey is chosen from the project's surveys, the
pre-flight shows its first question, a missing choice is a form error, and an edit shows the choice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from casemsg.cases.services import CaseChange, bulk_upsert
from casemsg.scheduling.models import Broadcast, ConditionalAlert
from casemsg.surveys import services as surveys

pytestmark = pytest.mark.django_db

QUESTION = "How old are you?"


@pytest.fixture
def officer(db) -> Client:
    c = Client()
    c.force_login(get_user_model().objects.create_superuser("officer", password="pw-officer-1"))
    return c


@pytest.fixture
def survey(project):
    definition = {
        "format": "casemsg-survey/1",
        "name": "Profile <b>",
        "default_language": "en",
        "languages": ["en"],
        "questions": [{"name": "age", "type": "integer", "label": {"en": QUESTION}, "save_to": "age"}],
    }
    return surveys.create_survey(project, definition)


@pytest.fixture
def mothers(project):
    props = {"contact_phone_number": "254711000001", "contact_phone_number_is_verified": "1", "status": "due"}
    return bulk_upsert(project, [CaseChange(case_id="m-1", case_type="mother", name="Asha", properties=props)])


def in_days(n: int) -> str:
    return (datetime.now(UTC).date() + timedelta(days=n)).isoformat()


def broadcast_form(**over: Any) -> dict[str, Any]:
    return {
        "name": "Profile round",
        "channel": "survey",
        "case_type": "mother",
        "schedule_type": "once",
        "date": in_days(3),
        "time": "09:00",
        "time_zone": "recipient",
        **over,
    }


def test_a_broadcast_form_with_a_survey(officer, project, survey, mothers):
    new = f"/projects/{project.slug}/broadcasts/new/"
    page = officer.get(new).content.decode()
    assert f'<option value="{survey.pk}">Profile &lt;b&gt;</option>' in page
    r = officer.post(f"/projects/{project.slug}/broadcasts/preflight/", broadcast_form(survey=str(survey.pk)))
    assert r.status_code == 200 and QUESTION in r.content.decode()
    r = officer.post(new, {**broadcast_form(), "action": "save"})  # no survey chosen
    assert r.status_code == 200 and "survey_id" in r.content.decode()
    assert not Broadcast.objects.exists()
    r = officer.post(new, {**broadcast_form(survey=str(survey.pk)), "action": "save"})
    assert r.status_code == 302, r.content.decode()[-2000:]
    b = Broadcast.objects.get()
    assert b.content == {"channel": "survey", "survey_id": survey.pk}
    edit = officer.get(f"/projects/{project.slug}/broadcasts/{b.pk}/edit/").content.decode()
    assert f'<option value="{survey.pk}" selected>' in edit


def test_an_alert_form_with_a_survey(officer, project, survey, mothers):
    data = {
        "name": "Profile when due",
        "case_type": "mother",
        "crit_property_0": "status",
        "crit_operator_0": "equal",
        "crit_value_0": "due",
        "schedule_type": "offsets",
        "unit": "days",
        "offsets": "0",
        "timing": "time",
        "time_zone": "recipient",
        "start_from": "matched",
        "recipients": ["case"],
        "channel": "survey",
        "survey": str(survey.pk),
    }
    r = officer.post(f"/projects/{project.slug}/alerts/new/", data)
    assert r.status_code == 302, r.content.decode()[-3000:]
    assert ConditionalAlert.objects.get().content == {"channel": "survey", "survey_id": survey.pk}
    r = officer.post(f"/projects/{project.slug}/alerts/new/", {**data, "name": "Owner", "recipients": ["owner"]})
    assert r.status_code == 200 and "asked of cases" in r.content.decode()
