"""How sessions begin and end: reminders then expiry (explicit times, no sleeping), partial answers,
`#STOP`, STOP, a survey replacing another, numbers shared by two contacts, keywords that start surveys,
and a reply racing a reminder."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from casemsg.consent import optout
from casemsg.surveys import engine
from casemsg.surveys.models import SurveySession
from tests.inbound.conftest import KE, KE2, OPT_OUT_CONFIRMATION, is_opted_out, sent_to, sms_in, work
from tests.surveys.test_sessions import (
    WELCOME,
    anc,
    contact,
    converse,
    create_survey,
    session_of,
    start,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sandbox")]

AGE = "How old are you?"
VILLAGE = "Which village do you live in?"


def small(name: str = "Profile", **settings: Any) -> dict[str, Any]:
    return {
        "format": "casemsg-survey/1",
        "name": name,
        "default_language": "en",
        "languages": ["en"],
        "settings": settings,
        "questions": [
            {"name": "age", "type": "integer", "label": {"en": AGE}, "required": True, "save_to": "age"},
            {"name": "village", "type": "text", "label": {"en": VILLAGE}, "save_to": "village"},
        ],
    }


def props(case) -> dict[str, str]:
    case.refresh_from_db()
    return {k: v for k, v in case.properties.items() if not k.startswith("contact_")}


def test_reminders_then_expiry(api):
    survey = create_survey(api, small(reminder_intervals=[60, 120], expire_after=240))
    asha = contact(api, KE)
    start(api, survey["id"], asha)
    t0 = session_of(asha).started_on
    assert session_of(asha).next_reminder_on == t0 + timedelta(minutes=60)

    def tick(minutes: int) -> engine.Swept:
        swept = engine.remind_and_expire(t0 + timedelta(minutes=minutes))
        work()
        return swept

    assert tick(59) == engine.Swept()
    assert tick(60).reminded == 1
    assert sent_to(KE) == [AGE, AGE]
    assert tick(61).reminded == 0  # the next one is 120 minutes after this reminder
    s = session_of(asha)
    assert (s.reminders_sent, s.next_reminder_on) == (1, t0 + timedelta(minutes=180))
    assert tick(180).reminded == 1
    assert session_of(asha).next_reminder_on is None  # no third interval
    assert tick(239) == engine.Swept()
    assert tick(240).expired == 1
    s = session_of(asha)
    assert (s.status, s.error, s.next_reminder_on) == ("expired", "SURVEY_EXPIRED", None)
    assert sent_to(KE) == [AGE, AGE, AGE]
    # a late answer is not the survey's any more: no keyword, no reply, nothing saved
    assert converse(api, KE, ["34"]) == [("34", "")]
    assert props(asha) == {}


def test_an_answer_restarts_the_reminders_for_the_next_question(api):
    survey = create_survey(api, small(reminder_intervals=[60], expire_after=240))
    asha = contact(api, KE)
    start(api, survey["id"], asha)
    t0 = session_of(asha).started_on
    engine.remind_and_expire(t0 + timedelta(minutes=60))
    work()
    assert converse(api, KE, ["34"]) == [("34", VILLAGE)]
    s = session_of(asha)
    assert (s.reminders_sent, s.next_reminder_on) == (0, s.last_activity_on + timedelta(minutes=60))
    engine.remind_and_expire(s.last_activity_on + timedelta(minutes=60))
    work()
    assert sent_to(KE)[-2:] == [VILLAGE, VILLAGE]


@pytest.mark.parametrize("submit_partial", [False, True])
def test_expiry_saves_the_answers_so_far_only_with_submit_partial(api, submit_partial):
    survey = create_survey(api, small(submit_partial=submit_partial, expire_after=30))
    asha = contact(api, KE)
    start(api, survey["id"], asha)
    converse(api, KE, ["34"])
    assert props(asha) == {}
    swept = engine.remind_and_expire(session_of(asha).started_on + timedelta(minutes=30))
    assert swept.expired == 1
    assert session_of(asha).status == "expired"
    assert props(asha) == ({"age": "34"} if submit_partial else {})


def test_hash_stop_ends_the_survey_only(api):
    survey = create_survey(api, small())
    asha = contact(api, KE)
    start(api, survey["id"], asha)
    assert converse(api, KE, ["#stop"]) == [("#stop", engine.SURVEY_ENDED)]
    s = session_of(asha)
    assert (s.status, s.error, s.completed_on is not None) == ("cancelled", "", True)
    assert not is_opted_out(KE)
    assert converse(api, KE, ["34"]) == [("34", "")]  # not an answer any more
    # with no survey running, #STOP is STOP (the compliance words ignore punctuation)
    assert converse(api, KE, ["#STOP"]) == [("#STOP", OPT_OUT_CONFIRMATION)]
    assert is_opted_out(KE)
    assert props(asha) == {}


def test_stop_mid_survey_opts_out_and_ends_the_session(api):
    survey = create_survey(api, small(reminder_intervals=[60]))
    asha = contact(api, KE)
    start(api, survey["id"], asha)
    assert converse(api, KE, ["Stop."]) == [("Stop.", OPT_OUT_CONFIRMATION)]
    assert is_opted_out(KE)
    s = session_of(asha)
    assert (s.status, s.error, s.next_reminder_on) == ("cancelled", "PHONE_OPTED_OUT", None)
    assert engine.remind_and_expire(s.started_on + timedelta(minutes=60)) == engine.Swept()


def test_help_mid_survey_keeps_the_session(api):
    survey = create_survey(api, small())
    asha = contact(api, KE)
    start(api, survey["id"], asha)
    converse(api, KE, ["help"])
    assert converse(api, KE, ["34"]) == [("34", VILLAGE)]


def test_an_opt_out_reported_elsewhere_ends_the_session_at_the_next_beat(api):
    survey = create_survey(api, small())
    asha = contact(api, KE)
    start(api, survey["id"], asha)
    optout.opt_out(KE, source="gateway")  # e.g. the provider reported the number opted out
    assert engine.remind_and_expire().opted_out == 1
    assert (session_of(asha).status, session_of(asha).error) == ("cancelled", "PHONE_OPTED_OUT")


def test_a_second_survey_replaces_the_first(api):
    first = create_survey(api, small("First"))
    second = create_survey(api, anc())
    asha = contact(api, KE)
    start(api, first["id"], asha)
    start(api, second["id"], asha)
    sessions = list(SurveySession.objects.order_by("pk"))
    assert [(s.survey_version.survey.name, s.status) for s in sessions] == [
        ("First", "replaced"),
        ("ANC follow-up", "open"),
    ]
    assert converse(api, KE, ["1"]) == [("1", "What was the date of the visit? Reply like 20240315")]
    assert sent_to(KE)[:2] == [AGE, WELCOME]


def test_two_contacts_sharing_a_number_only_the_two_way_owner_answers(api):
    survey = create_survey(api, small())
    owner = contact(api, KE, "Asha")
    sister = contact(api, KE, "Zawadi")  # the same number, verified later: not its two-way owner
    r = api.post(f"surveys/{survey['id']}/start", {"case_id": sister.case_id})
    assert (r.status_code, r.json()["error"]["code"]) == (422, "NO_TWO_WAY_PHONE_NUMBER"), r.content
    assert "Asha" in r.json()["error"]["message"] or "two-way" in r.json()["error"]["message"]
    start(api, survey["id"], owner)
    assert converse(api, KE, ["34", "Kisumu"]) == [("34", VILLAGE), ("Kisumu", "")]
    assert props(owner) == {"age": "34", "village": "Kisumu"}
    assert props(sister) == {}
    assert SurveySession.objects.filter(case=sister).count() == 0


def test_a_case_needs_a_name_and_a_two_way_number(api):
    survey = create_survey(api, small())
    nameless = contact(api, KE, "")
    r = api.post(f"surveys/{survey['id']}/start", {"case_id": nameless.case_id})
    assert (r.status_code, r.json()["error"]["code"]) == (422, "NO_CASE_NAME")
    one_way = api.case({"contact_phone_number": KE2}, name="Juma")
    r = api.post(f"surveys/{survey['id']}/start", {"case_id": one_way["case_id"]})
    assert (r.status_code, r.json()["error"]["code"]) == (422, "NO_TWO_WAY_PHONE_NUMBER")
    assert SurveySession.objects.count() == 0
    assert sent_to(KE) == [] and sent_to(KE2) == []


def test_the_start_survey_keyword_and_the_surveys_own_keyword(api):
    anc_survey = create_survey(api, anc())  # settings.keyword: ANC
    assert anc_survey["keyword"] == "ANC"
    profile = create_survey(api, small())
    r = api.post(
        "keywords",
        {"keyword": "profile", "action": "start_survey", "survey": str(profile["id"]), "reply": {"en": "Hi!"}},
    )
    assert r.status_code == 201, r.content
    asha = contact(api, KE, "Asha")
    contact(api, KE2, "Baraka")
    assert converse(api, KE, ["profile"]) == [("profile", f"Hi!\n--\n{AGE}")]
    assert converse(api, KE2, ["anc"]) == [("anc", WELCOME)]
    assert converse(api, KE, ["34", "Kisumu"])[-1] == ("Kisumu", "")
    assert props(asha) == {"age": "34", "village": "Kisumu"}
    # a keyword naming no survey of the project is refused when saved
    r = api.post("keywords", {"keyword": "other", "action": "start_survey", "survey": "999"})
    assert (r.status_code, r.json()["error"]["code"]) == (422, "VALIDATION_ERROR")


def test_a_keyword_from_a_case_that_cannot_take_the_survey_starts_nothing(api):
    create_survey(api, anc())
    contact(api, KE, "")  # no name
    sms_in(api, KE, "ANC")
    assert sent_to(KE) == []
    assert SurveySession.objects.count() == 0


def test_a_reply_racing_a_reminder_is_applied_to_the_new_state(api):
    survey = create_survey(api, small(reminder_intervals=[1]))
    asha = contact(api, KE)
    start(api, survey["id"], asha)
    stale = engine.open_session(session_of(asha).gateway, KE)
    assert stale is not None
    engine.remind_and_expire(stale.started_on + timedelta(minutes=1))  # moves the session first
    assert engine.answer(stale, "34") == engine.ANSWERED
    s = session_of(asha)
    assert (s.current_question, s.answers, s.reminders_sent) == ("village", {"age": "34"}, 0)
