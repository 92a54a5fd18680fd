"""Surveys as broadcast and alert content: each due occurrence starts a session (its first question
carries the occurrence's send key, so a tick run twice starts nothing twice), a case that cannot take the
survey records why on its instance, the answers come back through the sandbox into the case, and the
pre-flight shows the first question. Ticks are driven by explicit instants (nothing sleeps)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from casemsg.core import errors
from casemsg.messaging.models import Message
from casemsg.scheduling import runner, tick
from casemsg.scheduling.models import ConditionalAlert, ScheduleInstance
from casemsg.surveys.models import SurveySession
from tests.inbound.conftest import KE, KE2, KE3, sent_to, work
from tests.surveys.test_sessions import contact, converse, create_survey

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sandbox")]

AGE = "How old are you?"
VILLAGE = "Which village do you live in?"


def profile() -> dict[str, Any]:
    return {
        "format": "casemsg-survey/1",
        "name": "Profile",
        "default_language": "en",
        "languages": ["en", "sw"],
        "questions": [
            {
                "name": "hello",
                "type": "note",
                "label": {"en": "Hello from the clinic.", "sw": "Habari kutoka kliniki."},
            },
            {
                "name": "age",
                "type": "integer",
                "label": {"en": AGE, "sw": "Una miaka mingapi?"},
                "required": True,
                "save_to": "age",
            },
            {"name": "village", "type": "text", "label": {"en": VILLAGE, "sw": "Kijiji gani?"}, "save_to": "village"},
        ],
    }


def body(survey_id: int, **over: Any) -> dict[str, Any]:
    start = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    return {
        "name": "Profile round",
        "content": {"channel": "survey", "survey_id": survey_id},
        "recipients": {"case_type": "patient"},
        "schedule": {"type": "once", "date": start, "time": "09:00", "time_zone": "UTC"},
        **over,
    }


def due_time() -> datetime:
    return datetime.combine((datetime.now(UTC) + timedelta(days=1)).date(), datetime.min.time(), UTC) + timedelta(
        hours=9, minutes=1
    )


def test_a_broadcast_starts_one_session_per_case_and_the_answers_reach_the_case(api):
    survey = create_survey(api, profile())
    asha = contact(api, KE, "Asha")
    baraka = contact(api, KE2, "Baraka", language_code="sw")
    nameless = contact(api, KE3, " ")
    r = api.post("broadcasts", body(survey["id"]))
    assert r.status_code == 201, r.content
    assert r.json()["content"] == {"channel": "survey", "survey_id": survey["id"]}

    at = due_time()
    assert tick.tick(at) == 3
    assert tick.tick(at) == 0  # nothing left due
    work()
    assert sent_to(KE) == [f"Hello from the clinic.\n{AGE}"]
    assert sent_to(KE2) == ["Habari kutoka kliniki.\nUna miaka mingapi?"]
    assert sent_to(KE3) == []
    sessions = SurveySession.objects.filter(status="open").order_by("case__name")
    assert [s.case_id for s in sessions] == [asha.pk, baraka.pk]
    keys = set(Message.objects.filter(case__in=[asha, baraka]).values_list("send_key", flat=True))
    assert all(k.startswith("si:") for k in keys) and len(keys) == 2
    # the nameless case's instance says why it got nothing
    inst = ScheduleInstance.objects.get(case=nameless)
    assert inst.last_event["outcome"] == "not_sent" and inst.last_event["error"] == errors.NO_CASE_NAME

    assert converse(api, KE, ["forty", "34", "Kisumu"])[1:] == [("34", VILLAGE), ("Kisumu", "")]
    asha.refresh_from_db()
    assert (asha.properties["age"], asha.properties["village"]) == ("34", "Kisumu")
    assert SurveySession.objects.get(case=asha).status == "completed"


def test_an_occurrence_processed_twice_starts_its_session_once(api):
    survey = create_survey(api, profile())
    asha = contact(api, KE, "Asha")
    assert api.post("broadcasts", body(survey["id"])).status_code == 201
    at = due_time()
    inst = ScheduleInstance.objects.get(case=asha)
    due, iteration = inst.next_due_utc, inst.iteration
    assert tick.tick(at) == 1
    # a crash after the commit, as if the claim had never been recorded: the same occurrence is due again
    ScheduleInstance.objects.filter(pk=inst.pk).update(active=True, next_due_utc=due, iteration=iteration)
    assert tick.tick(at) == 1
    assert SurveySession.objects.filter(case=asha).count() == 1
    assert Message.objects.filter(case=asha).count() == 1


def test_an_alert_with_survey_content_asks_each_matching_case(api):
    survey = create_survey(api, profile())
    asha = contact(api, KE, "Asha", status="pregnant")
    contact(api, KE2, "Baraka", status="postnatal")
    r = api.post(
        "alerts",
        {
            "name": "Profile when pregnant",
            "case_type": "patient",
            "criteria": [{"property": "status", "operator": "equal", "value": "pregnant"}],
            "content": {"channel": "survey", "survey_id": survey["id"]},
            "recipients": ["case"],
            "schedule": {"type": "offsets", "unit": "minutes", "offsets": [0]},
        },
    )
    assert r.status_code == 201, r.content
    runner.run(ConditionalAlert.objects.get(pk=r.json()["id"]))
    tick.tick(datetime.now(UTC) + timedelta(minutes=1))
    work()
    assert sent_to(KE) == [f"Hello from the clinic.\n{AGE}"]
    assert sent_to(KE2) == []
    assert SurveySession.objects.get(status="open").case_id == asha.pk


def test_the_preflight_and_the_case_schedule_show_the_first_question(api):
    survey = create_survey(api, profile())
    asha = contact(api, KE, "Asha")
    contact(api, KE2, "Baraka", language_code="sw")
    contact(api, KE3, " ")
    api.case(case_type="patient", name="One way", properties={"contact_phone_number": "254744000004"})
    r = api.post("broadcasts/preflight", body(survey["id"]))
    assert r.status_code == 200, r.content
    pre = r.json()
    assert (pre["recipients"], pre["sendable"]) == (4, 2)
    assert pre["blocked"] == {errors.NO_CASE_NAME: 1, errors.NO_TWO_WAY_PHONE_NUMBER: 1}
    texts = {s["language"]: s["text"] for s in pre["first_sends"]}
    assert texts == {"en": f"Hello from the clinic.\n{AGE}", "sw": "Habari kutoka kliniki.\nUna miaka mingapi?"}
    assert api.post("broadcasts", body(survey["id"])).status_code == 201
    sends = api.get(f"cases/{asha.case_id}/schedule").json()
    assert sends["items"][0]["channel"] == "survey" and sends["items"][0]["text"] == f"Hello from the clinic.\n{AGE}"


def test_bad_survey_content_is_refused_with_the_reason(api):
    survey = create_survey(api, profile())
    r = api.post("broadcasts", body(999_999))
    assert r.status_code == 404 and r.json()["error"]["code"] == errors.SURVEY_NOT_FOUND
    r = api.post(
        "broadcasts", body(survey["id"], content={"channel": "survey", "survey_id": survey["id"], "text": "x"})
    )
    assert r.status_code == 422 and "unknown field" in r.json()["error"]["message"]
    r = api.post("broadcasts", body(survey["id"], recipients={"mobile_workers": "all"}))
    assert r.status_code == 422 and "asked of cases" in r.json()["error"]["message"]
    contact(api, KE, "Asha", status="pregnant")
    r = api.post(
        "alerts",
        {
            "name": "To the owner",
            "case_type": "patient",
            "criteria": [{"property": "status", "operator": "has_value"}],
            "content": {"channel": "survey", "survey_id": survey["id"]},
            "recipients": ["case", "owner"],
            "schedule": {"type": "offsets", "unit": "days", "offsets": [0]},
        },
    )
    assert r.status_code == 422 and "asked of cases" in r.json()["error"]["message"]
