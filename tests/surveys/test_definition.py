"""The casemsg-survey/1 format: validation sentences, round-trip, and the JSON Schema."""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pytest

from casemsg.surveys.answers import parse_answer
from casemsg.surveys.definition import (
    FORMAT,
    QUESTION_TYPES,
    Problem,
    Question,
    SurveyError,
    parse_survey,
    to_dict,
)
from casemsg.surveys.expressions import evaluate_bool

FIXTURES = Path(__file__).parent / "fixtures"
SCHEMA_PATH = Path(__file__).parents[2] / "casemsg" / "surveys" / "schema.json"


def example() -> dict[str, Any]:
    return json.loads((FIXTURES / "anc_followup.json").read_text())


def minimal(*questions: dict[str, Any]) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "name": "Test",
        "default_language": "en",
        "languages": ["en", "sw"],
        "questions": list(questions) or [{"name": "q", "type": "text", "label": {"en": "Q?"}}],
    }


def q(name: str, type_: str = "text", **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": type_, "label": {"en": f"{name}?"}, **extra}


YES_NO = [{"name": "yes", "label": {"en": "Yes"}}, {"name": "no", "label": {"en": "No"}}]


def problems(data: dict[str, Any]) -> list[Problem]:
    with pytest.raises(SurveyError) as info:
        parse_survey(data)
    return info.value.problems


def only(data: dict[str, Any], question: str | None, pattern: str) -> Problem:
    found = problems(data)
    assert len(found) == 1, found
    assert found[0].question == question
    assert re.search(pattern, found[0].message), found[0].message
    return found[0]


def test_example_round_trips() -> None:
    data = example()
    survey = parse_survey(data)
    assert to_dict(survey) == data
    assert parse_survey(to_dict(survey)) == survey
    assert survey.question("weeks").type == "integer"
    assert survey.settings.keyword == "ANC"


def test_defaults_are_filled_and_optional_keys_left_out() -> None:
    data = minimal(q("a", required=False))
    out = to_dict(parse_survey(data))
    assert out["settings"] == {"keyword": None, "expire_after": 1440, "reminder_intervals": [], "submit_partial": False}
    assert out["questions"] == [{"name": "a", "type": "text", "label": {"en": "a?"}}]
    assert "form_id" not in out and "version" not in out


def test_expressions_are_compiled_once_and_usable() -> None:
    survey = parse_survey(example())
    visit_date = survey.question("visit_date")
    assert visit_date.compiled_relevant is not None and visit_date.compiled_constraint is not None
    today = dt.date(2024, 3, 15)
    assert evaluate_bool(visit_date.compiled_relevant, {"visited": "yes"}, None, today)
    assert not evaluate_bool(visit_date.compiled_constraint, {}, "2024-03-16", today)


def test_unknown_type() -> None:
    only(minimal(q("a", "geopoint")), "a", r"type 'geopoint' is not supported; use one of text, integer")


def test_duplicate_question_names() -> None:
    only(minimal(q("a"), q("a", "integer")), "a", r"used by more than one question")


def test_invalid_question_name() -> None:
    only(minimal(q("1st")), "1st", r"needs a name of letters")


def test_select_without_choices() -> None:
    only(minimal(q("a", "select_one")), "a", r"non-empty list of choices")
    only(minimal(q("a", "select_multiple", choices=[])), "a", r"non-empty list of choices")


def test_choices_on_a_non_select() -> None:
    only(minimal(q("a", "text", choices=YES_NO)), "a", r"Only select questions have choices")


def test_duplicate_choice_names() -> None:
    choices = [{"name": "yes", "label": {"en": "Yes"}}, {"name": "yes", "label": {"en": "Yeah"}}]
    found = problems(minimal(q("a", "select_one", choices=choices)))
    assert any("'yes' is used twice" in p.message for p in found)


def test_choice_name_with_space() -> None:
    only(minimal(q("a", "select_multiple", choices=[{"name": "a b", "label": {"en": "AB"}}])), "a", r"without spaces")


def _select(choices: list[dict[str, Any]], type_: str = "select_one") -> Question:
    return parse_survey(minimal(q("a", type_, choices=choices))).question("a")


def test_a_number_is_the_place_in_the_list_not_a_coded_name() -> None:
    # Choices coded 0/1 in that order, as forms code them: "1" is the first one listed (`1 No 2 Yes`).
    choices = [{"name": "0", "label": {"en": "No"}}, {"name": "1", "label": {"en": "Yes"}}]
    question = _select(choices)
    assert [parse_answer(question, r).value for r in ("1", "2", "yes", "NO")] == ["0", "1", "1", "0"]
    assert not parse_answer(question, "0").ok  # a coded name is not a reply: only the numbers sent are
    coded = _select([{"name": "99", "label": {"en": "Don't know"}}, {"name": "1", "label": {"en": "10"}}])
    assert parse_answer(coded, "2").value == "1" and not parse_answer(coded, "10").ok


def test_a_label_two_choices_share_picks_neither() -> None:
    # Refused before; now imported as it is (ODK taps a choice): the shared word is not read, the number is.
    choices = [
        {"name": "a", "label": {"en": "Moja", "sw": "Moja"}},
        {"name": "b", "label": {"en": "Two", "sw": "moja"}},
    ]
    question = _select(choices)
    assert not parse_answer(question, "moja").ok
    assert parse_answer(question, "1").value == "a" and parse_answer(question, "two").value == "b"


def test_a_select_one_name_may_have_spaces() -> None:
    question = _select([{"name": "cash crop", "label": {"en": "Cash"}}, {"name": "food", "label": {"en": "Food"}}])
    assert parse_answer(question, "1").value == "cash crop"


def test_numeric_names_in_position_are_fine() -> None:
    choices = [{"name": "1", "label": {"en": "Yes"}}, {"name": "0", "label": {"en": "No"}}]
    parse_survey(minimal(q("a", "select_one", choices=choices)))


def test_expression_that_does_not_parse() -> None:
    only(minimal(q("a", "integer", constraint=". >")), "a", r"constraint: The expression '\. >' is not valid")


def test_expression_with_unknown_function() -> None:
    only(minimal(q("a", "integer", constraint="area('x')")), "a", r"uses area\(\), which surveys do not")


def test_reference_to_unknown_question() -> None:
    only(minimal(q("a"), q("b", relevant="${zz} = 'x'")), "b", r"refers to \$\{zz\}, but there is no question named")


def test_reference_to_later_question() -> None:
    # a relevant may read a later question (evaluated with it empty, then checked again: flow.recalculate)
    parse_survey(minimal(q("a", relevant="${b} = 'x'"), q("b")))
    only(
        minimal(q("a", "integer", constraint=". > ${b}"), q("b", "integer")),
        "a",
        r"refers to \$\{b\}, which comes later",
    )


def test_reference_to_itself_suggests_dot() -> None:
    only(minimal(q("a", "integer", constraint="${a} > 3")), "a", r"refers to the question itself.*Use '\.'")


def test_reference_to_a_note() -> None:
    only(minimal(q("n", "note"), q("a", relevant="${n} = ''")), "a", r"is a note and has no answer")


def test_dot_only_in_constraints() -> None:
    only(minimal(q("a", relevant=". = 'x'")), "a", r"uses '\.', which means the answer being checked")


def test_bare_name_instead_of_reference() -> None:
    only(minimal(q("a"), q("b", relevant="a = 'x'")), "b", r"write \$\{a\}")


def test_label_missing_in_default_language() -> None:
    only(minimal({"name": "a", "type": "text", "label": {"sw": "Jina?"}}), "a", r"no text in the default language 'en'")


def test_label_in_undeclared_language() -> None:
    only(minimal({"name": "a", "type": "text", "label": {"en": "A?", "fr": "A ?"}}), "a", r"'fr', which is not one")


def test_choice_label_missing_default_language() -> None:
    choices = [{"name": "yes", "label": {"sw": "Ndiyo"}}]
    only(minimal(q("a", "select_one", choices=choices)), "a", r"label of choice 'yes' has no text in the default")


def test_save_to_invalid() -> None:
    only(minimal(q("a", save_to="has space")), "a", r"save_to 'has space' is not a valid case property name")
    only(minimal(q("a", save_to="case_type")), "a", r"is a case field, not a property")
    only(minimal(q("a", "note", save_to="x")), "a", r"A note has no answer, so it cannot have save_to")


def test_constraint_message_without_constraint() -> None:
    only(minimal(q("a", constraint_message={"en": "Bad"})), "a", r"no constraint")


def test_unknown_key_is_reported() -> None:
    only(minimal(q("a", relevent="1 = 1")), "a", r"unknown key 'relevent'")


def test_survey_level_problems() -> None:
    data = minimal()
    data["format"] = "casemsg-survey/2"
    data["default_language"] = "fr"
    data["settings"] = {"expire_after": 60, "reminder_intervals": [30, 30]}
    messages = [p.message for p in problems(data)]
    assert any("format must be 'casemsg-survey/1'" in m for m in messages)
    assert any("default_language 'fr' must be one of" in m for m in messages)
    assert any("after the survey expires" in m for m in messages)


def test_all_problems_are_reported_at_once() -> None:
    data = minimal(q("a", "bogus"), q("b", "select_one"), q("c", constraint=". = ${d}"), q("d"))
    assert [p.question for p in problems(data)] == ["a", "b", "c"]


def test_problem_renders_sheet_and_row() -> None:
    assert str(Problem("age", "Bad.", row=4, sheet="survey")) == "survey sheet, row 4, question 'age': Bad."
    assert str(Problem(None, "Bad.")) == "Bad."


###
# JSON Schema. jsonschema is not a dependency, so a validator for the keywords schema.json uses
# checks the example surveys against it; that keeps schema and parser from drifting apart.


def _validate(instance: Any, schema: dict[str, Any], root: dict[str, Any], path: str = "$") -> list[str]:
    errors: list[str] = []
    if "$ref" in schema:
        target: Any = root
        for part in schema["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        errors += _validate(instance, target, root, path)
    types = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}
    if "type" in schema:
        allowed = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        ok = any(
            (isinstance(instance, int) and not isinstance(instance, bool))
            if t == "integer"
            else isinstance(instance, types[t])
            for t in allowed
        )
        if not ok:
            return [f"{path}: not of type {allowed}"]
    if "const" in schema and instance != schema["const"]:
        errors.append(f"{path}: not {schema['const']!r}")
    if "enum" in schema and instance not in schema["enum"]:
        errors.append(f"{path}: not one of {schema['enum']}")
    if isinstance(instance, str):
        if "pattern" in schema and not re.search(schema["pattern"], instance):
            errors.append(f"{path}: does not match {schema['pattern']}")
        if len(instance) < schema.get("minLength", 0) or len(instance) > schema.get("maxLength", 10**9):
            errors.append(f"{path}: wrong length")
    if isinstance(instance, int) and "minimum" in schema and instance < schema["minimum"]:
        errors.append(f"{path}: below minimum")
    if isinstance(instance, list):
        if len(instance) < schema.get("minItems", 0):
            errors.append(f"{path}: too few items")
        if schema.get("uniqueItems") and len({json.dumps(i) for i in instance}) != len(instance):
            errors.append(f"{path}: items not unique")
        for i, item in enumerate(instance):
            if "items" in schema:
                errors += _validate(item, schema["items"], root, f"{path}[{i}]")
    if isinstance(instance, dict):
        for key in schema.get("required", []):
            if key not in instance:
                errors.append(f"{path}: missing {key}")
        if len(instance) < schema.get("minProperties", 0):
            errors.append(f"{path}: too few properties")
        props = schema.get("properties", {})
        for key, value in instance.items():
            if key in props:
                errors += _validate(value, props[key], root, f"{path}.{key}")
            elif schema.get("additionalProperties") is False:
                errors.append(f"{path}: unexpected {key}")
            elif isinstance(schema.get("additionalProperties"), dict):
                errors += _validate(value, schema["additionalProperties"], root, f"{path}.{key}")
    for sub in schema.get("allOf", []):
        errors += _validate(instance, sub, root, path)
    if "anyOf" in schema and not any(not _validate(instance, s, root, path) for s in schema["anyOf"]):
        errors.append(f"{path}: matches none of anyOf")
    if "not" in schema and not _validate(instance, schema["not"], root, path):
        errors.append(f"{path}: matches a forbidden schema")
    if "if" in schema:
        branch = "then" if not _validate(instance, schema["if"], root, path) else "else"
        if branch in schema:
            errors += _validate(instance, schema[branch], root, path)
    return errors


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text())


def test_schema_is_draft_2020_12_and_lists_every_type(schema: dict[str, Any]) -> None:
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$defs"]["question"]["properties"]["type"]["enum"] == list(QUESTION_TYPES)
    assert schema["properties"]["format"]["const"] == FORMAT


def test_example_surveys_validate_against_schema(schema: dict[str, Any]) -> None:
    for path in sorted(FIXTURES.glob("*.json")):
        data = json.loads(path.read_text())
        if data.get("format") != FORMAT:
            continue  # other fixtures (e.g. the expression conformance cases)
        assert _validate(data, schema, schema) == [], path.name
        assert _validate(to_dict(parse_survey(data)), schema, schema) == []


def _named(data: dict[str, Any], name: str) -> dict[str, Any]:
    return next(q for q in data["questions"] if q["name"] == name)


def test_schema_rejects_what_the_parser_rejects(schema: dict[str, Any]) -> None:
    bad = example()
    _named(bad, "visited").pop("choices")
    assert _validate(bad, schema, schema)
    bad = example()
    _named(bad, "intro")["save_to"] = "x"  # a note
    assert _validate(bad, schema, schema)
    bad = copy.deepcopy(example())
    _named(bad, "visit_date")["type"] = "geopoint"
    assert _validate(bad, schema, schema)
    bad = example()
    _named(bad, "weeks").pop("label")  # only what is computed may go without a label
    assert _validate(bad, schema, schema)
    bad = example()
    _named(bad, "case")["type"] = "calculate"  # a calculate needs its calculation
    assert _validate(bad, schema, schema)
