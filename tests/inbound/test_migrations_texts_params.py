"""The two data migrations of one home for texts and for keyword parameters, forward and back:
projects 0006 moves the five per-text JSON fields into `Project.texts`; inbound 0003 moves a keyword's
property_name / property_value / survey columns into its `params`."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from casemsg.inbound.models import Keyword
from casemsg.projects.models import Project

pytestmark = pytest.mark.django_db(transaction=True)

PROJECTS_BEFORE, PROJECTS_AFTER = ("projects", "0005_api_key_scopes_audit"), ("projects", "0006_project_texts")
INBOUND_BEFORE, INBOUND_AFTER = ("inbound", "0002_inbox"), ("inbound", "0003_keyword_params")


def migrate(*targets: tuple[str, str]):
    executor = MigrationExecutor(connection)
    executor.migrate(list(targets))
    return MigrationExecutor(connection).loader.project_state(list(targets)).apps


def test_the_texts_move_into_one_field_and_back() -> None:
    old = migrate(PROJECTS_BEFORE)
    OldProject = old.get_model("projects", "Project")
    OldProject.objects.create(
        slug="a",
        name="A",
        help_text={"en": "Call us. Reply STOP to stop.", "sw": "Msaada. Tuma STOP."},
        opt_in_question="Plain text from long ago?",  # a plain string: English
        opt_out_confirmation={"sw": ""},  # empty values: nothing of the project's own
    )
    OldProject.objects.create(slug="b", name="B")
    migrate(PROJECTS_AFTER)
    new = migrate(PROJECTS_AFTER)
    rows = {p.slug: p.texts for p in new.get_model("projects", "Project").objects.all()}
    assert rows == {
        "a": {
            "help_text": {"en": "Call us. Reply STOP to stop.", "sw": "Msaada. Tuma STOP."},
            "opt_in_question": {"en": "Plain text from long ago?"},
        },
        "b": {},
    }
    back = migrate(PROJECTS_BEFORE)
    a = back.get_model("projects", "Project").objects.get(slug="a")
    assert a.help_text == {"en": "Call us. Reply STOP to stop.", "sw": "Msaada. Tuma STOP."}
    assert (a.opt_in_question, a.opt_out_confirmation, a.unknown_sender_reply) == (
        {"en": "Plain text from long ago?"},
        {},
        {},
    )
    MigrationExecutor(connection).migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
    assert Project.objects.get(slug="a").texts["opt_in_question"] == {"en": "Plain text from long ago?"}


def test_keyword_parameters_move_into_params_and_back() -> None:
    project = Project.objects.create(slug="k", name="K").pk  # (the projects table as it is now)
    old = migrate(INBOUND_BEFORE)
    OldKeyword = old.get_model("inbound", "Keyword")
    OldKeyword.objects.create(project_id=project, keyword="HI", action="reply", reply={"en": "Hi"})
    OldKeyword.objects.create(project_id=project, keyword="W", action="update_case", property_name="weight_kg")
    OldKeyword.objects.create(
        project_id=project, keyword="V", action="update_case", property_name="visit", property_value="done: {rest}"
    )
    OldKeyword.objects.create(project_id=project, keyword="ANC", action="start_survey", survey="12")
    new = migrate(INBOUND_AFTER)
    params = {k.keyword: k.params for k in new.get_model("inbound", "Keyword").objects.all()}
    assert params == {
        "HI": {},
        "W": {"property_name": "weight_kg", "property_value": "{rest}"},
        "V": {"property_name": "visit", "property_value": "done: {rest}"},
        "ANC": {"survey": "12"},
    }
    back = migrate(INBOUND_BEFORE)
    columns = {
        k.keyword: (k.property_name, k.property_value, k.survey)
        for k in back.get_model("inbound", "Keyword").objects.all()
    }
    assert columns == {
        "HI": ("", "{rest}", ""),
        "W": ("weight_kg", "{rest}", ""),
        "V": ("visit", "done: {rest}", ""),
        "ANC": ("", "{rest}", "12"),
    }
    MigrationExecutor(connection).migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
    assert Keyword.objects.get(keyword="V").params["property_value"] == "done: {rest}"
