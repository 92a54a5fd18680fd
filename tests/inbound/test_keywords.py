"""Project keywords: CRUD through the API, and their actions when the first word of an inbound message
matches (case-insensitive): a translated reply, an update of the sender's case, nothing for unknown
words."""

from __future__ import annotations

import json

import pytest

from casemsg.inbound.models import Keyword
from casemsg.messaging.models import Message
from tests.inbound.conftest import KE, KE2, KE3, gateway_in, outbox, sent_to, sms_in

pytestmark = pytest.mark.django_db


def put(api, path: str, body: dict):
    return api.client.put(api.url(path), json.dumps(body), content_type="application/json", **api._h(None))


def create(api, expect: int = 201, **body) -> dict:
    r = api.post("keywords", body)
    assert r.status_code == expect, r.content
    return r.json()


# --- CRUD ------------------------------------------------------------------------------------------
def test_create_list_update_delete(api):
    k = create(api, keyword=" clinic ", reply={"en": "Open 8-5", "sw": "Wazi 8-5"}, description="hours")
    assert k["keyword"] == "CLINIC" and k["action"] == "reply" and k["reply"] == {"en": "Open 8-5", "sw": "Wazi 8-5"}
    w = create(api, keyword="weight", action="update_case", property_name="weight_kg")
    assert w["property_value"] == "{rest}" and w["reply"] == {}

    listed = api.get("keywords").json()["items"]
    assert [x["keyword"] for x in listed] == ["CLINIC", "WEIGHT"]
    assert listed[0] == k

    r = put(api, f"keywords/{k['id']}", {"keyword": "hours", "reply": {"en": "Open 9-5"}})
    assert r.status_code == 200, r.content
    assert (r.json()["keyword"], r.json()["reply"], r.json()["description"]) == ("HOURS", {"en": "Open 9-5"}, "")
    assert Keyword.objects.get(pk=k["id"]).keyword == "HOURS"

    assert api.delete(f"keywords/{k['id']}").status_code == 204
    assert [x["keyword"] for x in api.get("keywords").json()["items"]] == ["WEIGHT"]
    assert api.delete(f"keywords/{k['id']}").status_code == 404
    r = put(api, f"keywords/{k['id']}", {"keyword": "hours", "reply": {"en": "x"}})
    assert r.status_code == 404 and r.json()["error"]["code"] == "KEYWORD_NOT_FOUND"


@pytest.mark.parametrize(
    "word", ["STOP", "stop", "Unsubscribe", "END", "start", "YES", "unstop", "help", "INFO", "optout", "quit"]
)
def test_reserved_words_are_refused(api, word):
    r = api.post("keywords", {"keyword": word, "reply": {"en": "x"}})
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "RESERVED_KEYWORD"
    assert Keyword.objects.count() == 0


def test_project_opt_out_words_are_reserved_too(api, project):
    project.opt_out_keywords = ["sitisha"]
    project.opt_in_keywords = ["anza"]
    project.save()
    for word in ("SITISHA", "anza"):
        r = api.post("keywords", {"keyword": word, "reply": {"en": "x"}})
        assert (r.status_code, r.json()["error"]["code"]) == (422, "RESERVED_KEYWORD")


@pytest.mark.parametrize(
    "body",
    [
        {"reply": {"en": "x"}},  # no keyword
        {"keyword": "", "reply": {"en": "x"}},
        {"keyword": "two words", "reply": {"en": "x"}},
        {"keyword": "x" * 41, "reply": {"en": "x"}},
        {"keyword": "clinic", "action": "dance", "reply": {"en": "x"}},
        {"keyword": "clinic"},  # a reply keyword without a reply
        {"keyword": "clinic", "reply": {"en": "  "}},
        {"keyword": "weight", "action": "update_case"},  # no property_name
        {"keyword": "clinic", "reply": "not a dict"},
    ],
)
def test_invalid_keywords_are_422(api, body):
    r = api.post("keywords", body)
    assert r.status_code == 422, r.content
    assert r.json()["error"]["code"] == "VALIDATION_ERROR"
    assert Keyword.objects.count() == 0


def test_duplicate_keyword_is_409(api):
    k = create(api, keyword="clinic", reply={"en": "x"})
    r = api.post("keywords", {"keyword": "CLINIC", "reply": {"en": "y"}})
    assert (r.status_code, r.json()["error"]["code"]) == (409, "KEYWORD_EXISTS")
    other = create(api, keyword="hours", reply={"en": "x"})
    r = put(api, f"keywords/{other['id']}", {"keyword": "clinic", "reply": {"en": "y"}})
    assert (r.status_code, r.json()["error"]["code"]) == (409, "KEYWORD_EXISTS")
    assert Keyword.objects.get(pk=k["id"]).reply == {"en": "x"}


def test_keywords_belong_to_their_project(api, other_api):
    k = create(api, keyword="clinic", reply={"en": "x"})
    create(other_api, keyword="clinic", reply={"en": "beta"})  # the same word in another project is fine
    assert [x["reply"] for x in other_api.get("keywords").json()["items"]] == [{"en": "beta"}]
    assert other_api.delete(f"keywords/{k['id']}").status_code == 404
    assert put(other_api, f"keywords/{k['id']}", {"keyword": "x", "reply": {"en": "x"}}).status_code == 404
    assert api.get("keywords", key="").status_code == 401
    assert other_api.get("/api/v1/projects/alpha/keywords").status_code == 403


# --- actions -------------------------------------------------------------------------------------
def test_reply_keyword_is_translated_and_case_insensitive(api, alpha_sandbox):
    create(api, keyword="clinic", reply={"en": "The clinic opens at 8.", "sw": "Kliniki inafunguliwa saa mbili."})
    api.case({"contact_phone_number": KE, "contact_phone_number_is_verified": "1", "language_code": "sw"})
    api.case({"contact_phone_number": KE2, "contact_phone_number_is_verified": "1"})

    sms_in(api, KE, "clinic")
    sms_in(api, KE2, "  Clinic  hours please")
    gateway_in(alpha_sandbox, KE3, "CLINIC")  # an unknown sender gets the project's default language

    assert sent_to(KE) == ["Kliniki inafunguliwa saa mbili."]
    assert sent_to(KE2) == ["The clinic opens at 8."]
    assert sent_to(KE3) == ["The clinic opens at 8."]
    assert Message.objects.get(direction="out", to=KE).event.source == "keyword"


def test_reply_is_a_template_rendered_for_the_sender(api, sandbox):
    # (Replies used to go out raw: people received "{case.name}" and "{rest}".)
    create(api, keyword="code", reply={"en": "Hi {case.name}, code {rest} noted for {case.village} {{ok}}"})
    api.case({"contact_phone_number": KE, "contact_phone_number_is_verified": "1"}, name="Asha")
    sms_in(api, KE, "code 4711 {case.name}")
    # {rest} is the sender's words taken literally; an unknown property shows as (?)
    assert sent_to(KE) == ["Hi Asha, code 4711 {case.name} noted for (?) {ok}"]


def test_a_reply_template_with_an_unknown_field_is_refused_when_saved(api, sandbox):
    r = api.post("keywords", {"keyword": "code", "action": "reply", "reply": {"en": "Use {your} code"}})
    assert r.status_code == 422 and r.json()["error"]["code"] == "CANNOT_RENDER_MESSAGE"
    assert "{your}" in r.json()["error"]["message"]
    assert api.get("keywords").status_code == 200


def test_update_case_keyword_sets_a_property(api, sandbox):
    create(
        api,
        keyword="weight",
        action="update_case",
        property_name="weight_kg",
        reply={"en": "Thank you, weight recorded."},
    )
    create(api, keyword="visit", action="update_case", property_name="last_visit", property_value="done: {rest}")
    case = api.case({"contact_phone_number": KE, "contact_phone_number_is_verified": "1"})
    cid = case["case_id"]

    sms_in(api, KE, "WEIGHT 3.2")
    assert api.get(f"cases/{cid}").json()["properties"]["weight_kg"] == "3.2"
    assert outbox(api) == ["Thank you, weight recorded."]

    sms_in(api, KE, " weight   3.4 kg ")
    assert api.get(f"cases/{cid}").json()["properties"]["weight_kg"] == "3.4 kg"

    sms_in(api, KE, "Visit clinic A")
    props = api.get(f"cases/{cid}").json()["properties"]
    assert props["last_visit"] == "done: clinic A"
    assert props["weight_kg"] == "3.4 kg"  # other properties are kept
    assert outbox(api) == ["Thank you, weight recorded."] * 2  # "visit" has no reply


def test_update_case_through_the_case_service_keeps_the_registry_in_sync(api, sandbox):
    """A keyword can set a contact property: it goes through the normal case update."""
    create(api, keyword="lang", action="update_case", property_name="language_code")
    create(api, keyword="clinic", reply={"en": "open", "sw": "wazi"})
    api.case({"contact_phone_number": KE, "contact_phone_number_is_verified": "1"})
    sms_in(api, KE, "lang sw")
    sms_in(api, KE, "clinic")
    assert sent_to(KE) == ["wazi"]


def test_update_case_keyword_from_an_unknown_number(api, alpha_sandbox):
    create(api, keyword="weight", action="update_case", property_name="weight_kg")
    one_way = api.case({"contact_phone_number": KE2})  # registered, but not for two-way
    gateway_in(alpha_sandbox, KE3, "weight 3.2")
    sms_in(api, KE2, "weight 3.3")
    assert sent_to(KE3) == ["We could not find your record; this number is not registered."]
    assert "weight_kg" not in api.get(f"cases/{one_way['case_id']}").json()["properties"]


def test_update_case_of_an_other_projects_owner_is_not_touched(api, other_api, alpha_sandbox):
    """Alpha's keyword never writes into a beta case, even on alpha's gateway."""
    create(api, keyword="weight", action="update_case", property_name="weight_kg")
    beta_case = other_api.case({"contact_phone_number": KE, "contact_phone_number_is_verified": "1"})
    gateway_in(alpha_sandbox, KE, "weight 3.2")  # beta's contact texts alpha's number
    assert "weight_kg" not in other_api.get(f"cases/{beta_case['case_id']}").json()["properties"]


def test_unknown_keyword_is_logged_without_reply(api, sandbox):
    create(api, keyword="clinic", reply={"en": "open"})
    case = api.case({"contact_phone_number": KE, "contact_phone_number_is_verified": "1"})
    sms_in(api, KE, "clinical question")
    sms_in(api, KE, "hello there")
    assert outbox(api) == []
    items = api.get("messages", direction="in").json()["items"]
    assert [(m["text"], m["recipient"]) for m in items] == [
        ("hello there", {"case_id": case["case_id"]}),
        ("clinical question", {"case_id": case["case_id"]}),
    ]
    assert {m.error_detail for m in Message.objects.filter(direction="in")} == {"No keyword matched."}


def test_deleted_keyword_no_longer_answers(api, sandbox):
    k = create(api, keyword="clinic", reply={"en": "open"})
    api.case({"contact_phone_number": KE, "contact_phone_number_is_verified": "1"})
    sms_in(api, KE, "clinic")
    api.delete(f"keywords/{k['id']}")
    sms_in(api, KE, "clinic")
    assert outbox(api) == ["open"]


def test_start_survey_keyword_replies_then_asks(api, sandbox):
    # (tests/surveys/test_sessions_lifecycle.py has the whole conversation)
    survey = {"format": "casemsg-survey/1", "name": "S", "default_language": "en", "languages": ["en"],
              "questions": [{"name": "q", "type": "text", "label": {"en": "How are you?"}}]}  # fmt: skip
    survey_id = str(api.post("surveys", survey).json()["id"])
    create(api, keyword="survey", action="start_survey", survey=survey_id, reply={"en": "Starting the survey."})
    api.case({"contact_phone_number": KE, "contact_phone_number_is_verified": "1"})
    sms_in(api, KE, "survey")
    assert outbox(api) == ["Starting the survey.", "How are you?"]
