"""Keyword actions as modules (casemsg.inbound.actions): each declares its parameters, their checks, its
handler and the texts it sends, and the registry has one line per action. The API, the form, the router and
the Texts page take everything from there, so a new action is one module and one registry line."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from django.contrib.auth import get_user_model

from casemsg.consent import texts
from casemsg.core import errors
from casemsg.core.errors import InputError
from casemsg.core.fields import Param
from casemsg.inbound.actions import registry
from casemsg.inbound.actions.base import KeywordAction, KeywordContext
from casemsg.inbound.actions.registry import ACTIONS
from casemsg.inbound.models import Keyword
from casemsg.projects.models import Project
from tests.inbound.conftest import KE, KE2, sent_to, sms_in
from tests.web.clients import logged_in

pytestmark = pytest.mark.django_db


def test_every_action_declares_its_parameters_texts_and_handler() -> None:
    assert set(ACTIONS) == {"reply", "update_case", "start_survey"}
    max_length = Keyword._meta.get_field("action").max_length
    assert max_length is not None
    for name, action in ACTIONS.items():
        assert isinstance(action, KeywordAction)
        assert action.name == name and len(name) <= max_length
        assert action.description.strip() and "\n" not in action.description
        assert all(isinstance(p, Param) and p.label and p.help for p in action.params)
        # every text an action sends is in the catalogue, with an English default
        for t in action.texts:
            assert texts.get(t.key) == t and t.default
    assert [p.name for p in ACTIONS["update_case"].params] == ["property_name", "property_value"]
    assert [p.name for p in ACTIONS["start_survey"].params] == ["survey"]
    assert "Start the survey" in ACTIONS["start_survey"].description


def test_the_api_accepts_exactly_the_registrys_actions(api) -> None:
    survey = {"format": "casemsg-survey/1", "name": "S", "default_language": "en", "languages": ["en"],
              "questions": [{"name": "q", "type": "text", "label": {"en": "Q?"}}]}  # fmt: skip
    survey_id = str(api.post("surveys", survey).json()["id"])
    for i, name in enumerate(ACTIONS):
        # the body older clients send: every parameter at the top level, taken where the action has it
        body = {"keyword": f"word{i}", "action": name, "reply": {"en": "x"}, "property_name": "p", "survey": survey_id}
        r = api.post("keywords", body)
        assert (r.status_code, r.json()["action"]) == (201, name), r.content
    r = api.post("keywords", {"keyword": "other", "action": "dance", "reply": {"en": "x"}})
    assert r.status_code == 422
    assert r.json()["error"]["message"] == f"action must be one of {', '.join(ACTIONS)}."
    assert sorted(k.action for k in Keyword.objects.all()) == sorted(ACTIONS)
    stored = {k.action: k.params for k in Keyword.objects.all()}
    assert stored == {
        "reply": {},
        "update_case": {"property_name": "p", "property_value": "{rest}"},
        "start_survey": {"survey": survey_id},
    }


def test_params_and_the_old_fields_are_one_thing(api) -> None:
    """`params` is the parameters' home; the older top-level fields still work (and are answered) for the
    action that has them; `params` wins over them; a parameter the action does not declare is a 422."""
    r = api.post("keywords", {"keyword": "weight", "action": "update_case", "params": {"property_name": "weight_kg"}})
    assert r.status_code == 201, r.content
    k = r.json()
    assert k["params"] == {"property_name": "weight_kg", "property_value": "{rest}"}
    assert (k["property_name"], k["property_value"], k["survey"]) == ("weight_kg", "{rest}", "")

    body = {"keyword": "visit", "action": "update_case", "property_name": "old", "params": {"property_name": "new"}}
    assert api.post("keywords", body).json()["params"]["property_name"] == "new"

    r = api.post("keywords", {"keyword": "x", "action": "update_case", "params": {"property_name": "a", "colour": "b"}})
    assert (r.status_code, r.json()["error"]["code"]) == (422, "VALIDATION_ERROR")
    assert r.json()["error"]["message"].startswith("params.colour is not a parameter of an update_case keyword")
    r = api.post("keywords", {"keyword": "x", "action": "update_case", "params": {"property_name": "a" * 256}})
    assert (r.status_code, r.json()["error"]["code"]) == (422, "VALUE_TOO_LONG")
    r = api.post("keywords", {"keyword": "x", "action": "reply", "reply": {"en": "x"}, "params": {"survey": "1"}})
    assert r.status_code == 422 and "its parameters: none" in r.json()["error"]["message"]


class Echo(KeywordAction):
    """An action as a new module would declare it: a required parameter, a check, a text of its own."""

    name = "echo"
    description = "Say the words after the keyword back, after a prefix."
    params = (Param("prefix", "Prefix", required=True, help="What the answer starts with.", max_length=20),)
    texts = (
        texts.SystemText("echo_nothing", "Echo: nothing to echo", "Sent when nothing follows.", "Nothing to echo."),
    )

    def check(self, params: dict[str, str], reply: Mapping[str, str], project: Project) -> None:
        if params["prefix"].upper() == "STOP":
            raise InputError(errors.VALIDATION_ERROR, "An echo keyword's prefix may not be STOP.")

    def handle(self, ctx: KeywordContext) -> str:
        if not ctx.rest:
            ctx.send_text("echo_nothing")
            return "echo_nothing"
        ctx.send_reply({"en": f"{ctx.params['prefix']}: {ctx.rest}"})
        return "echoed"


@pytest.fixture
def echo(monkeypatch):
    """The registry line of a new action (and its text in the catalogue, as InboundConfig.ready does)."""
    monkeypatch.setitem(registry.ACTIONS, "echo", Echo())
    for t in Echo.texts:  # (undone after the test, as the registry line is)
        monkeypatch.setitem(texts._CATALOGUE, t.key, t)


def test_a_new_action_is_one_module_and_one_registry_line(api, project, sandbox, echo) -> None:
    """Its parameters are checked by the API and shown on the form, its handler runs, its text is on the
    Texts page and is sent in the contact's language."""
    r = api.post("keywords", {"keyword": "echo", "action": "echo"})
    assert (r.status_code, r.json()["error"]["message"]) == (422, "An echo keyword needs prefix.")
    r = api.post("keywords", {"keyword": "echo", "action": "echo", "params": {"prefix": "stop"}})
    assert r.json()["error"]["message"] == "An echo keyword's prefix may not be STOP."
    assert (
        api.post("keywords", {"keyword": "echo", "action": "echo", "params": {"prefix": "You said"}}).status_code == 201
    )

    owner = logged_in(get_user_model().objects.create_superuser("boss", password="pw-boss-1"))
    form = owner.get(f"/projects/{project.slug}/keywords/new/").content.decode()
    assert 'name="p_echo__prefix"' in form and "What the answer starts with." in form
    page = owner.get(f"/projects/{project.slug}/settings/texts/").content.decode()
    assert "echo_nothing" in page and "Nothing to echo." in page

    api.case({"contact_phone_number": KE, "contact_phone_number_is_verified": "1"})
    api.case({"contact_phone_number": KE2, "contact_phone_number_is_verified": "1", "language_code": "sw"})
    texts.update(project, {"echo_nothing": {"sw": "Hakuna cha kurudia."}})
    sms_in(api, KE, "Echo hello there")
    sms_in(api, KE, "echo")
    sms_in(api, KE2, "echo")
    assert sent_to(KE) == ["You said: hello there", "Nothing to echo."]
    assert sent_to(KE2) == ["Hakuna cha kurudia."]
