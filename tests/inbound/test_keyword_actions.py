"""The keyword actions table (casemsg.inbound.keywords.ACTIONS): each entry holds an action's checks and
its handler, and the API and the router take the list of actions from it, so a new action is one entry."""

from __future__ import annotations

import pytest

from casemsg.core.errors import InputError
from casemsg.inbound import keywords
from casemsg.inbound.keywords import ACTIONS, KeywordAction, KeywordContext, KeywordFields
from casemsg.inbound.models import Keyword
from casemsg.projects.models import Project
from tests.inbound.conftest import KE, sent_to, sms_in


def test_every_action_has_a_description_a_validator_and_a_handler() -> None:
    assert set(ACTIONS) == {"reply", "update_case", "start_survey"}
    max_length = Keyword._meta.get_field("action").max_length
    assert max_length is not None
    for name, action in ACTIONS.items():
        assert action.name == name and len(name) <= max_length
        assert action.description.strip() and "\n" not in action.description
        assert callable(action.validate) and callable(action.handle)
    assert "Start the survey" in ACTIONS["start_survey"].description


@pytest.mark.django_db
def test_the_api_accepts_exactly_the_tables_actions(api) -> None:
    survey = {"format": "casemsg-survey/1", "name": "S", "default_language": "en", "languages": ["en"],
              "questions": [{"name": "q", "type": "text", "label": {"en": "Q?"}}]}  # fmt: skip
    survey_id = str(api.post("surveys", survey).json()["id"])
    for i, name in enumerate(ACTIONS):
        body = {"keyword": f"word{i}", "action": name, "reply": {"en": "x"}, "property_name": "p", "survey": survey_id}
        r = api.post("keywords", body)
        assert (r.status_code, r.json()["action"]) == (201, name), r.content
    r = api.post("keywords", {"keyword": "other", "action": "dance", "reply": {"en": "x"}})
    assert r.status_code == 422
    assert r.json()["error"]["message"] == f"action must be one of {', '.join(ACTIONS)}."
    assert sorted(k.action for k in Keyword.objects.all()) == sorted(ACTIONS)


@pytest.mark.django_db
def test_a_new_action_is_one_table_entry(api, sandbox, monkeypatch) -> None:
    """An action added to the table is checked by the API and run by the router, with nothing else."""

    def validate(fields: KeywordFields, project: Project) -> None:
        if not fields.description:
            raise InputError("VALIDATION_ERROR", "An echo keyword needs a description.")

    def handle(ctx: KeywordContext) -> str:
        ctx.send_reply({"en": f"echo: {ctx.rest}"})
        return "echoed"

    monkeypatch.setitem(keywords.ACTIONS, "echo", KeywordAction("echo", "Say the words back.", validate, handle))
    r = api.post("keywords", {"keyword": "echo", "action": "echo"})
    assert (r.status_code, r.json()["error"]["code"]) == (422, "VALIDATION_ERROR")
    assert api.post("keywords", {"keyword": "echo", "action": "echo", "description": "x"}).status_code == 201
    api.case({"contact_phone_number": KE, "contact_phone_number_is_verified": "1"})
    sms_in(api, KE, "Echo hello there")
    assert sent_to(KE) == ["echo: hello there"]
