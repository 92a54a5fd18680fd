"""The reply that skips a survey question, per project: Settings (the page, PATCH …/settings, `casemsg
project settings --set survey_skip_word=…`), #SKIP by default; a survey's own `sms_skip_word` wins. The
word is said in the re-prompt that offers a value ("Reply RUKA to keep 2.") and takes that value."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command

from casemsg.projects.models import Project
from casemsg.surveys.models import SurveySession
from tests.inbound.conftest import KE
from tests.surveys.forms import contact, converse, imported, own_properties, session_of, start, xlsform

pytestmark = pytest.mark.usefixtures("sandbox")

ENTITY = "list_name,entity_id\nperson,${case}"
FORM = xlsform(
    """type,name,label,default,save_to
       hidden,case,,,
       integer,children,How many children live here?,2,children
       text,village,Which village?,,village""",
    entities=ENTITY,
)


def test_the_projects_skip_word_is_said_and_keeps_the_value(api) -> None:
    r = api.patch("settings", {"survey_skip_word": " ruka "})
    assert r.status_code == 200, r.content
    assert r.json()["survey_skip_word"] == "RUKA"
    assert api.get("settings").json()["survey_skip_word"] == "RUKA"
    survey = imported(api, FORM, "csv")
    asha = contact(api, KE, "Asha")
    assert start(api, survey["id"], asha) == "How many children live here? Reply RUKA to keep 2."
    # #SKIP is an answer like any other now (and not a number): refused; RUKA keeps the 2 offered
    said = converse(api, KE, ["#SKIP", "ruka", "Kibera"])
    assert said[0][1].endswith("How many children live here? Reply RUKA to keep 2.")
    assert said[1:] == [("ruka", "Which village?"), ("Kibera", "")]
    assert session_of(asha).status == SurveySession.COMPLETED
    assert own_properties(asha) == {"children": "2", "village": "Kibera"}


def test_a_surveys_own_word_wins_over_the_projects(api) -> None:
    api.patch("settings", {"survey_skip_word": "RUKA"})
    form = FORM.replace("\n", "\n", 1) + "settings,sms_skip_word\n,PASS\n"
    survey = imported(api, form, "xlsx")
    asha = contact(api, KE, "Asha")
    assert start(api, survey["id"], asha) == "How many children live here? Reply PASS to keep 2."
    assert converse(api, KE, ["pass"]) == [("pass", "Which village?")]


def test_without_a_setting_it_is_skip(api) -> None:
    assert api.get("settings").json()["survey_skip_word"] == "#SKIP"
    survey = imported(api, FORM, "csv")
    asha = contact(api, KE, "Asha")
    assert start(api, survey["id"], asha) == "How many children live here? Reply #SKIP to keep 2."
    assert converse(api, KE, ["#skip"]) == [("#skip", "Which village?")]


@pytest.mark.parametrize(
    ("word", "why"),
    [
        ("two words", "one word"),
        ("STOP", "something else"),
        ("#stop", "something else"),
        ("7", "one word"),
        ("", "one word"),
    ],
)
def test_a_word_that_cannot_be_the_skip_word_is_a_422(api, word: str, why: str) -> None:
    r = api.patch("settings", {"survey_skip_word": word})
    assert r.status_code == 422, r.content
    assert r.json()["error"]["code"] == "VALIDATION_ERROR" and why in r.json()["error"]["message"]
    assert api.get("settings").json()["survey_skip_word"] == "#SKIP"


def test_the_command_line_sets_it(api) -> None:
    out = io.StringIO()
    call_command("project", "settings", api.slug, "--set", 'survey_skip_word="ACHA"', stdout=out)
    assert json.loads(out.getvalue())["survey_skip_word"] == "ACHA"
    assert Project.objects.get(slug=api.slug).survey_skip_word == "ACHA"
