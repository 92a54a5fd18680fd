"""The parts behind the XLSForm features, one by one: language names, replies for the new types, the
format's new keys and their sentences, the XForms functions, and what the importer builds (names,
conditions, numbered properties, refused rows) — the conversations themselves are in
test_xlsform_features.py."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from casemsg.surveys.answers import parse_answer
from casemsg.surveys.definition import FORMAT, Question, SurveyError, parse_survey, to_dict
from casemsg.surveys.expressions import compile_expression, evaluate_value
from casemsg.surveys.languages import code_for
from casemsg.surveys.models import Survey
from casemsg.surveys.xlsform import import_xlsform, read_xlsform
from tests.surveys.forms import as_file, imported, upload, xlsform


@pytest.mark.parametrize(
    ("column", "code"),
    [
        ("English (en)", "en"),
        ("English", "en"),
        ("english", "en"),
        ("Français", "fr"),
        ("Francais", "fr"),
        ("Kiswahili", "sw"),
        ("Swahili", "sw"),
        ("Español", "es"),
        ("Português (pt-BR)", "pt-BR"),
        ("Spanish (Latin America)", "es"),
        ("हिन्दी", "hi"),
        ("sw", "sw"),
        ("Chichewa", "ny"),
        ("Klingon", None),
    ],
)
def test_language_columns_as_people_write_them(column: str, code: str | None) -> None:
    assert code_for(column) == code


def q(qtype: str, **extra: Any) -> Question:
    return Question(name="q", type=qtype, label={"en": "Q?"}, **extra)


def test_replies_for_the_new_types() -> None:
    moment = parse_answer(q("datetime"), "20240310 0415", zone="Africa/Nairobi")
    assert (moment.ok, moment.value) == (True, "2024-03-10T04:15:00.000+03:00")
    assert parse_answer(q("datetime"), "2024-03-10T04:15").value == "2024-03-10T04:15:00.000"
    assert parse_answer(q("datetime"), "20240310").error == "invalid_datetime"
    for reply in ("OK", "ok.", "1", "Yes", "y"):
        assert parse_answer(q("acknowledge"), reply).value == "OK"
    assert parse_answer(q("acknowledge"), "later").error == "invalid_acknowledge"
    from casemsg.surveys.definition import Choice

    rank = q("rank", choices=(Choice("a", {"en": "A"}), Choice("b", {"en": "B"}), Choice("c", {"en": "C"})))
    assert parse_answer(rank, "3 1 2").value == "c a b"
    assert parse_answer(rank, "3,1").error == "invalid_choices"  # every choice, once
    assert parse_answer(rank, "1 1 2").error == "invalid_choices"


def minimal(*questions: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "name": "T",
        "default_language": "en",
        "languages": ["en"],
        "questions": list(questions),
        **top,
    }


def problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(SurveyError) as info:
        parse_survey(data)
    return [p.message for p in info.value.problems]


def test_a_rich_definition_round_trips() -> None:
    data = minimal(
        {"name": "case", "type": "metadata", "metadata": "case_id"},
        {"name": "w", "type": "metadata", "metadata": "case_property", "property": "weight_kg"},
        {"name": "county", "type": "select_one", "label": {"en": "County?"}, "hint": {"en": "Where you live"},
         "choices": [{"name": "a", "label": {"en": "A"}}, {"name": "b", "label": {"en": "B"}}]},
        {"name": "sub", "type": "select_one", "label": {"en": "Sub-county?"},
         "choices": [{"name": "a1", "label": {"en": "A1"}, "columns": {"county": "a"}},
                     {"name": "b1", "label": {"en": "B1"}, "columns": {"county": "b"}}],
         "choice_filter": "county = ${county}", "required": "${county} = 'a'",
         "required_message": {"en": "Needed"}},
        {"name": "kg", "type": "decimal", "label": {"en": "Weight?"}, "default_expression": "${w}",
         "read_only": "${county} = 'b'", "save_to": "weight_kg"},
        {"name": "bmi", "type": "calculate", "calculation": "${kg} div 2", "save_to": "bmi"},
        {"name": "h", "type": "hidden", "default": "x"},
        {"name": "when", "type": "datetime", "label": {"en": "When?"}},
        {"name": "ok", "type": "acknowledge", "label": {"en": "Go now."}},
        entity={"list_name": "child", "action": "create", "label": "${sub}", "create_if": "${ok} = 'OK'",
                "parent": "sender"},
        tables={"fees": [{"service": "anc", "fee": "0"}]},
        settings={"keyword": None, "expire_after": 1440, "reminder_intervals": [], "submit_partial": False,
                  "skip_word": "#PASS", "progress": True, "prefill": True,
                  "prompts": {"en": {"keep": "Keep {value}: {word}"}}},
    )  # fmt: skip
    survey = parse_survey(data)
    assert to_dict(survey) == data
    assert survey.question("sub").compiled_filter is not None and survey.entity is not None


@pytest.mark.parametrize(
    ("question", "message"),
    [
        ({"name": "a", "type": "calculate"}, "A calculate question needs a calculation."),
        ({"name": "a", "type": "text", "label": {"en": "A"}, "calculation": "1"}, "Only calculate questions"),
        ({"name": "a", "type": "metadata", "metadata": "gps"}, "metadata must be one of"),
        ({"name": "a", "type": "metadata", "metadata": "case_property"}, "property names the case property"),
        ({"name": "a", "type": "text", "label": {"en": "A"}, "choice_filter": "x = 1"}, "Only select questions have"),
        ({"name": "a", "type": "calculate", "calculation": "1", "required": True}, "is not asked, so it cannot be"),
        ({"name": "a", "type": "text", "label": {"en": "A"}, "required": 3}, "required must be true, false or an"),
        ({"name": "a", "type": "text", "label": {"en": "A"}, "read_only": "${b} = 1"}, "no question named 'b'"),
        ({"name": "a", "type": "text"}, "The label has no text in the default language"),
    ],
)
def test_new_keys_are_checked_with_a_sentence(question: dict[str, Any], message: str) -> None:
    assert any(message in m for m in problems(minimal(question))), problems(minimal(question))


def test_entity_is_checked_with_a_sentence() -> None:
    text = {"name": "a", "type": "text", "label": {"en": "A"}}
    assert any("entity.action must be" in m for m in problems(minimal(text, entity={"list_name": "x", "action": "x"})))
    assert any(
        "entity.parent can only be" in m for m in problems(minimal(text, entity={"list_name": "x", "parent": "sender"}))
    )
    found = problems(minimal(text, entity={"list_name": "x", "action": "create", "label": "${zz}"}))
    assert any("no question named 'zz'" in m for m in found)
    # an entity's expressions are evaluated at the end: they may refer to any question
    parse_survey(
        minimal(
            {**text, "relevant": None} | {"name": "a"}, entity={"list_name": "x", "action": "create", "label": "${a}"}
        )
    )


@pytest.mark.parametrize(
    ("expr", "answers", "value"),
    [
        ("format-date('2024-03-05', '%d/%m/%Y %b %a')", {}, "05/03/2024 Mar Tue"),
        ("round(2.345, 2)", {}, "2.35"),
        ("round(2.5)", {}, "3"),
        ("max(3, ${a}, 1)", {"a": "7"}, "7"),
        ("min(${a} | ${b})", {"a": "7", "b": "2"}, "2"),
        ("pow(2, 10)", {}, "1024"),
        ("substr('casemsg', 4)", {}, "msg"),
        ("substr('casemsg', 0, 4)", {}, "case"),
        ("selected-at('a b c', 1)", {}, "b"),
        ("join(', ', ${a} | ${b})", {"a": "x", "b": "y"}, "x, y"),
        ("count-non-empty(${a} | ${b})", {"a": "x", "b": ""}, "1"),
        ("boolean-from-string('true') and true()", {}, "true"),
        ("date('2024-03-10T09:30:00.000+03:00')", {}, "2024-03-10"),
        ("decimal-time('06:00')", {}, "0.25"),
        ("count(${a}[. > 2])", {"a": "3"}, "1"),
        ("sum(${a} | ${b})", {"a": "3"}, "3"),  # b was never reached: no node
        ("int(decimal-date-time('1970-01-02T12:00:00+00:00'))", {}, "1"),
        ("if(${a} = '', 'none', ${a})", {}, "none"),
        ("1 div 0", {}, ""),  # Infinity is stored as nothing
    ],
)
def test_xforms_functions_give_values(expr: str, answers: dict[str, str], value: str) -> None:
    compiled = compile_expression(expr, {"a", "b"})
    assert evaluate_value(compiled, answers, dt.date(2024, 3, 15)) == value


def test_now_and_today_are_the_contacts() -> None:
    from zoneinfo import ZoneInfo

    moment = dt.datetime(2024, 3, 15, 23, 30, tzinfo=ZoneInfo("Asia/Kolkata"))
    now = compile_expression("now()", set())
    assert evaluate_value(now, {}, moment.date(), now=moment) == "2024-03-15T23:30:00.000+05:30"


FORM = xlsform(
    """type,name,label,relevant,repeat_count,constraint,calculation,save_to
       hidden,case,,,,,,
       integer,n,How many?,,,. <= 2,,
       begin group,outer,Outer,${n} > 0,,,,
       begin repeat,kid,Kid,,${n},,,
       text,name,Name of ${name}?,,,,,
       begin group,inner,Inner,${name} != 'x',,,,
       integer,age,Age of ${name}?,,,,,
       end group,,,,,,,
       end repeat,,,,,,,
       end group,,,,,,,
       calculate,ages,,,,,sum(${age}),ages
       geopoint,gps,Where?,,,,,""",
    entities="list_name,entity_id\nperson,${case}",
)


def test_what_the_importer_builds_for_groups_and_repeats() -> None:
    imported_form = read_xlsform(FORM.encode(), file_type="csv")
    assert [(p.row, p.question) for p in imported_form.refused] == [(13, "gps")]
    by_name = {q["name"]: q for q in imported_form.definition["questions"]}
    assert list(by_name) == [
        "case", "n", "kid_1_name", "kid_1_age", "kid_2_name", "kid_2_age", "ages", "gps",
    ]  # fmt: skip
    assert by_name["kid_2_age"]["relevant"] == "(${n} > 0) and ((${n}) >= 2) and (${kid_2_name} != 'x')"
    assert by_name["kid_2_age"]["label"] == {"en": "Age of ${kid_2_name}?"}
    assert by_name["kid_1_name"]["save_to"] == "kid_1_name"  # numbered properties: the form writes to a case
    assert by_name["ages"]["calculation"] == "sum((${kid_1_age} | ${kid_2_age}))"
    assert by_name["gps"] == {"name": "gps", "type": "hidden"}


def test_a_bound_from_the_settings_and_a_loop() -> None:
    loop = xlsform(
        "type,name,label\nbegin repeat,visit,Visite\ndate,d,Date?\nend repeat,,",
        settings="form_title,form_id,default_language,sms_repeat_max\nV,v,French (fr),2",
    )
    names = [q["name"] for q in import_xlsform(loop.encode(), file_type="csv")["questions"]]
    assert names == ["visit_1_d", "visit_another_1", "visit_2_d"]
    another = import_xlsform(loop.encode(), file_type="csv")["questions"][1]
    assert another["label"] == {"fr": "Ajouter un autre élément « Visite » ?"}
    assert [c["label"] for c in another["choices"]] == [{"fr": "Oui"}, {"fr": "Non"}]


def test_the_cli_attaches_files_and_accepts_refused_rows(api, tmp_path: Path) -> None:
    form = tmp_path / "wash.csv"
    form.write_text(
        xlsform(
            "type,name,label\nselect_one_from_file points.csv,point,Which water point?\ngeopoint,where,Where?",
            settings="form_title,form_id\nWash,wash",
        )
    )
    points = tmp_path / "points.csv"
    points.write_text("name,label\np1,North well\n")
    out = io.StringIO()
    with pytest.raises(Exception, match="phone's GPS"):
        call_command("surveys", "import", str(form), "--project", "alpha", "--attach", str(points), stdout=out)
    call_command(
        "surveys", "import", str(form), "--project", "alpha", "--attach", str(points), "--accept-refused", stdout=out
    )
    survey = Survey.objects.get(form_id="wash")
    assert survey.current_version is not None
    assert survey.current_version.definition["questions"][0]["choices"] == [
        {"name": "p1", "label": {"en": "North well"}}
    ]


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_the_api_refuses_device_rows_unless_accepted(api, kind: str) -> None:
    text = xlsform("type,name,label\ntext,a,A?\nimage,photo,Photo?\nbarcode,code,Scan?")
    r = upload(api, text, kind)
    assert r.status_code == 422
    message = r.json()["error"]["message"]
    assert "row 3, question 'photo'" in message and "row 4, question 'code'" in message
    survey = imported(api, text, kind, accept_refused="true")
    assert [(q["name"], q["type"]) for q in survey["definition"]["questions"]] == [
        ("a", "text"), ("photo", "hidden"), ("code", "hidden"),
    ]  # fmt: skip
    name, _ = as_file(text, kind)
    assert name.endswith(kind)


def test_repeats_unrolled_past_the_question_limit_are_refused() -> None:
    from casemsg.core.errors import InputError

    rows = "\n".join(f"integer,q{i},Q{i}?" for i in range(50))
    form = xlsform(f"type,name,label,repeat_count\nbegin repeat,r,R,50\n{rows}\nend repeat,,,")
    with pytest.raises(InputError) as info:
        import_xlsform(form.encode(), file_type="csv")
    assert info.value.code == "TOO_MANY_QUESTIONS" and "once its repeats are unrolled" in info.value.message


def test_a_number_as_repeat_count() -> None:
    form = xlsform("type,name,label,repeat_count\nbegin repeat,r,R,3\ntext,a,A?,\nend repeat,,,")
    questions = import_xlsform(form.encode(), file_type="csv")["questions"]
    assert [q["name"] for q in questions] == ["r_count", "r_1_a", "r_2_a", "r_3_a"]  # r_count: pyxform's, 3
