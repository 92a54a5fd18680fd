"""A survey over WhatsApp: select_one with at most 3 choices goes as reply buttons, at most 10 as a list,
more as numbered text; a tap answers with the choice's id, a typed answer as on SMS."""

from __future__ import annotations

import pytest

from casemsg.surveys.models import SurveySession
from fakes.whatsapp import meta_webhook
from tests.whatsapp.conftest import KE, post_meta, work

pytestmark = pytest.mark.django_db


def _choices(names: list[str]) -> list[dict]:
    return [{"name": n, "label": {"en": n.title()}} for n in names]


SURVEY = {
    "format": "casemsg-survey/1",
    "name": "Check-in",
    "form_id": "checkin",
    "version": "1",
    "default_language": "en",
    "languages": ["en"],
    "settings": {"expire_after": 1440, "reminder_intervals": []},
    "questions": [
        {"name": "well", "type": "select_one", "label": {"en": "Are you well?"}, "choices": _choices(["yes", "no"])},
        {
            "name": "district",
            "type": "select_one",
            "label": {"en": "Your district?"},
            "choices": _choices(["north", "south", "east", "west", "central"]),
        },
        {
            "name": "visits",
            "type": "select_one",
            "label": {"en": "Clinic visits so far?"},
            "choices": _choices(["none", "one", "two"]),
        },
        {
            "name": "month",
            "type": "select_one",
            "label": {"en": "Month?"},
            "choices": _choices([f"m{i}" for i in range(1, 13)]),
        },
    ],
}


def test_buttons_and_list_replies_answer_a_survey(api, meta_gw, fake_meta):
    case = api.case(
        {"contact_phone_number": KE, "contact_phone_number_is_verified": "1", "contact_backend_id": "wa"}, name="Amina"
    )
    fake_meta.user_wrote(KE)
    post_meta(meta_gw, meta_webhook(KE, "hi"))
    work()
    r = api.post("surveys", SURVEY)
    assert r.status_code == 201, r.content
    r = api.post(f"surveys/{r.json()['id']}/start", {"case_id": case["case_id"]})
    assert r.status_code == 201, r.content
    work()
    first = fake_meta.messages()[-1].body  # the first question too: 2 choices, reply buttons
    assert first["type"] == "interactive" and first["interactive"]["type"] == "button"
    assert "Are you well?" in first["interactive"]["body"]["text"]
    assert [b["reply"]["id"] for b in first["interactive"]["action"]["buttons"]] == ["yes", "no"]

    post_meta(meta_gw, meta_webhook(KE, "Yes"))  # typed, not tapped
    work()
    listed = fake_meta.messages()[-1].body
    assert listed["type"] == "interactive" and listed["interactive"]["type"] == "list"
    rows = listed["interactive"]["action"]["sections"][0]["rows"]
    assert [r["id"] for r in rows] == ["north", "south", "east", "west", "central"]

    post_meta(meta_gw, meta_webhook(KE, list_reply=("east", "East")))
    work()
    buttons = fake_meta.messages()[-1].body
    assert buttons["interactive"]["type"] == "button"
    assert [b["reply"]["id"] for b in buttons["interactive"]["action"]["buttons"]] == ["none", "one", "two"]

    post_meta(meta_gw, meta_webhook(KE, button=("two", "Two")))
    work()
    numbered = fake_meta.messages()[-1].body
    assert numbered["type"] == "text" and "12 M12" in numbered["text"]["body"]  # 12 choices: numbered text

    post_meta(meta_gw, meta_webhook(KE, "3"))
    work()
    session = SurveySession.objects.get()
    assert session.answers == {"well": "yes", "district": "east", "visits": "two", "month": "m3"}


def test_a_survey_started_outside_the_window_begins_with_a_template(api, project, fake_meta):
    from casemsg.gateways.services import add_gateway

    gw = add_gateway("wa", "meta_cloud", fake_meta.gateway_config(survey_template="survey_start"), project=project)
    assert api.post("whatsapp-templates/sync").status_code == 200
    case = api.case(
        {"contact_phone_number": KE, "contact_phone_number_is_verified": "1", "contact_backend_id": "wa"}, name="Amina"
    )
    r = api.post("surveys", SURVEY)
    r = api.post(f"surveys/{r.json()['id']}/start", {"case_id": case["case_id"]})
    assert r.status_code == 201, r.content
    work()
    (opening,) = fake_meta.messages()
    tpl = opening.body["template"]
    assert (tpl["name"], tpl["components"][0]["parameters"][0]["text"]) == ("survey_start", "Amina")

    fake_meta.user_wrote(KE)
    post_meta(gw, meta_webhook(KE, "ok"))  # the window opens; "ok" answers nothing: the question follows
    work()
    asked = fake_meta.messages()[-1].body
    assert asked["interactive"]["type"] == "button" and "Are you well?" in asked["interactive"]["body"]["text"]
    post_meta(gw, meta_webhook(KE, button=("no", "No")))
    work()
    assert SurveySession.objects.get().answers == {"well": "no"}


def test_a_first_question_of_up_to_ten_choices_goes_as_a_list(api, meta_gw, fake_meta):
    case = api.case(
        {"contact_phone_number": KE, "contact_phone_number_is_verified": "1", "contact_backend_id": "wa"}, name="Amina"
    )
    fake_meta.user_wrote(KE)
    post_meta(meta_gw, meta_webhook(KE, "hi"))
    work()
    survey = {**SURVEY, "form_id": "district", "questions": SURVEY["questions"][1:2]}
    r = api.post("surveys", survey)
    api.post(f"surveys/{r.json()['id']}/start", {"case_id": case["case_id"]})
    work()
    first = fake_meta.messages()[-1].body
    assert first["interactive"]["type"] == "list" and "Your district?" in first["interactive"]["body"]["text"]
    post_meta(meta_gw, meta_webhook(KE, list_reply=("west", "West")))
    work()
    assert SurveySession.objects.get().answers == {"district": "west"}


def test_a_broadcast_survey_outside_the_window_opens_with_the_contents_template(api, project, fake_meta):
    from datetime import timedelta

    from django.utils import timezone

    from casemsg.gateways.services import add_gateway
    from casemsg.scheduling import tick

    gw = add_gateway("wa", "meta_cloud", fake_meta.gateway_config(), project=project)  # no survey_template
    assert api.post("whatsapp-templates/sync").status_code == 200
    api.case(
        {"contact_phone_number": KE, "contact_phone_number_is_verified": "1", "contact_backend_id": "wa"},
        name="Amina",
        case_type="mother",
    )
    survey_id = api.post("surveys", SURVEY).json()["id"]
    opening = {"template": "survey_start", "variables": ["{case.name}"]}
    body = {
        "name": "Check-in",
        "content": {"channel": "survey", "survey_id": survey_id, "whatsapp": opening},
        "recipients": {"case_type": "mother"},
        "schedule": {"type": "now"},
    }
    r = api.post("broadcasts", body)
    assert r.status_code == 201, r.content
    assert r.json()["content"]["whatsapp"] == opening
    tick.tick(timezone.now() + timedelta(minutes=1))
    work()
    (first,) = fake_meta.messages()
    tpl = first.body["template"]
    assert (tpl["name"], tpl["components"][0]["parameters"][0]["text"]) == ("survey_start", "Amina")
    fake_meta.user_wrote(KE)
    post_meta(gw, meta_webhook(KE, "ok"))
    work()
    asked = fake_meta.messages()[-1].body
    assert asked["interactive"]["type"] == "button" and "Are you well?" in asked["interactive"]["body"]["text"]
