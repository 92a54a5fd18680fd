"""XLSForm import through pyxform's XForm: equivalence of .xlsx, .csv and JSON, and row-numbered refusals."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook

from casemsg.surveys.definition import Problem, SurveyError, parse_survey, to_dict
from casemsg.surveys.xlsform import import_xlsform, xform_to_survey_dict

FIXTURES = Path(__file__).parent / "fixtures"


def csv_sheets(data: str) -> list[tuple[str, list[list[str]]]]:
    """Split an XLSForm CSV (sheets stacked, sheet name in the first column) into sheets."""
    sheets: list[tuple[str, list[list[str]]]] = []
    for row in csv.reader(io.StringIO(data)):
        if row and row[0]:
            sheets.append((row[0], []))
        if row and any(row[1:]):
            sheets[-1][1].append(row[1:])
    return sheets


def xlsx_bytes(sheets: list[tuple[str, list[list[str]]]], blank_rows_after_header: int = 0) -> bytes:
    """An .xlsx with the same content, built at test time so no binary file is committed."""
    book = Workbook()
    book.remove(book.active)  # type: ignore[arg-type]
    for name, rows in sheets:
        sheet = book.create_sheet(name)
        for i, row in enumerate(rows):
            sheet.append([v if v != "" else None for v in row])
            if i == 0 and name == "survey":
                for _ in range(blank_rows_after_header):
                    sheet.append([])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def form(*rows: str, choices: str = "", settings: str = "", entities: str = "") -> bytes:
    """A small XLSForm CSV: each argument is a CSV line of the survey sheet, header first."""
    lines = [f"survey,{rows[0]}", *(f",{r}" for r in rows[1:])]
    for name, block in (("choices", choices), ("settings", settings), ("entities", entities)):
        if block:
            head, *rest = block.strip().splitlines()
            lines += [f"{name},{head}", *(f",{r}" for r in rest)]
    return ("\n".join(lines) + "\n").encode()


def problems_of(source: bytes | Path, **kw: Any) -> list[Problem]:
    with pytest.raises(SurveyError) as info:
        import_xlsform(source, **kw)
    return info.value.problems


def the_problem(source: bytes) -> Problem:
    found = problems_of(source)
    assert len(found) == 1, found
    return found[0]


@pytest.fixture(scope="module")
def expected() -> dict[str, Any]:
    return to_dict(parse_survey(json.loads((FIXTURES / "anc_followup.json").read_text())))


def test_csv_xlsx_and_json_give_equal_surveys(expected: dict[str, Any], tmp_path: Path) -> None:
    from_csv = import_xlsform(FIXTURES / "anc_followup.csv")
    xlsx = tmp_path / "anc_followup.xlsx"
    xlsx.write_bytes(xlsx_bytes(csv_sheets((FIXTURES / "anc_followup.csv").read_text())))
    from_xlsx = import_xlsform(xlsx)
    assert from_csv == expected
    assert from_xlsx == expected


def test_the_fixture_has_the_usual_types(expected: dict[str, Any]) -> None:
    types = {q["type"] for q in expected["questions"]}
    assert types == {"text", "integer", "decimal", "date", "time", "select_one", "select_multiple", "note", "metadata"}
    keys = {k for q in expected["questions"] for k in q}
    assert {"relevant", "constraint", "constraint_message", "save_to", "required", "choices", "hint"} <= keys


def test_bytes_are_detected_and_a_bom_is_tolerated(expected: dict[str, Any]) -> None:
    data = (FIXTURES / "anc_followup.csv").read_bytes()
    assert import_xlsform(b"\xef\xbb\xbf" + data) == expected
    assert import_xlsform(xlsx_bytes(csv_sheets(data.decode()))) == expected
    assert import_xlsform(data, file_type="csv") == expected


def test_only_xlsx_and_csv(tmp_path: Path) -> None:
    path = tmp_path / "form.xls"
    path.write_bytes(b"whatever")
    assert "must be .xlsx or .csv" in problems_of(path)[0].message


REJECTED_ROWS = [
    (4, "children", "has no upper bound"),  # a problem: the form cannot be imported as it is
    (7, "home", "phone's GPS"),  # refused: a phone's hardware answers these
    (8, "photo", "captured on a phone"),
]


def test_rejected_csv_names_the_rows() -> None:
    found = problems_of(FIXTURES / "rejected.csv")
    assert [(p.row, p.question) for p in found] == [(row, name) for row, name, _ in REJECTED_ROWS]
    for problem, (_, _, reason) in zip(found, REJECTED_ROWS, strict=True):
        assert reason in problem.message
        assert problem.sheet == "survey"
    assert str(found[0]).startswith("survey sheet, row 4, question 'children': the repeat_count")


def test_rejected_xlsx_rows_are_spreadsheet_rows() -> None:
    # Two blank rows under the header: in a spreadsheet every following row number moves down by two.
    data = xlsx_bytes(csv_sheets((FIXTURES / "rejected.csv").read_text()), blank_rows_after_header=2)
    found = problems_of(data)
    assert [(p.row, p.question) for p in found] == [(row + 2, name) for row, name, _ in REJECTED_ROWS]


def test_pyxform_errors_keep_their_row() -> None:
    problem = the_problem(form("type,name,label", "text,a,A?", "integer,b,B?", "integer,a,C?"))
    assert problem.row == 4 and problem.sheet == "survey"
    assert "'a' is invalid" in problem.message


def test_save_to_needs_an_entities_sheet() -> None:
    problem = the_problem(form("type,name,label,save_to", "text,a,A?,prop_a"))
    assert problem.row == 2 and "entities sheet" in problem.message


def test_survey_problems_get_the_question_row() -> None:
    # pyxform accepts a constraint reading a later question; casemsg does not (the reply is checked once), and
    # says where. (A relevant may: it is checked again as the answers arrive.)
    problem = the_problem(form("type,name,label,constraint", "text,a,A?,. = ${b}", "text,b,B?,"))
    assert (problem.row, problem.question) == (2, "a")
    assert "comes later" in problem.message


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("geopoint", "phone's GPS"),
        ("geotrace", "drawn on a phone"),
        ("geoshape", "drawn on a phone"),
        ("image", "captured on a phone"),
        ("audio", "captured on a phone"),
        ("video", "captured on a phone"),
        ("file", "captured on a phone"),
        ("barcode", "scanned by a phone's camera"),
    ],
)
def test_what_a_phone_answers_is_refused_with_its_row(kind: str, reason: str) -> None:
    source = form("type,name,label,relevant", "text,b,B?,", f"{kind},a,A?,", "text,c,C?,${a} = ''")
    found = problems_of(source)
    assert [(p.row, p.question) for p in found] == [(3, "a")] and reason in found[0].message
    # accepted without it, the row is an empty hidden field: what refers to it still reads
    survey = import_xlsform(source, accept_refused=True)
    assert [(q["name"], q["type"]) for q in survey["questions"]] == [("b", "text"), ("a", "hidden"), ("c", "text")]


@pytest.mark.parametrize(
    ("rows", "extra", "reason"),
    [
        (("type,name,label,calculation", "text,b,B?,", "calculate,a,,pulldata('x', 'y', 'z', ${b})"), {}, "pulldata"),
        (("type,name,label", "text,b,B?", "select_one_from_file places.csv,a,A?"), {}, "attach places.csv"),
        (("type,name,label", "text,b,B?", "select_one_from_file places.xml,a,A?"), {}, "from a CSV file"),
        (
            ("type,name,label,repeat_count", "integer,b,B?,", "begin repeat,a,A,${b}", "text,c,C?,", "end repeat,,,"),
            {},
            "has no upper bound",
        ),
        (
            ("type,name,label,calculation", "text,b,B?,", "calculate,a,,instance('yn')/root/item[name = ${b}]/label"),
            {"choices": "list_name,name,label\nyn,y,Yes"},
            "instance('yn')",
        ),
        (("type,name,label,constraint", "text,b,B?,", "integer,a,A?,. > ${c}", "integer,c,C?,"), {}, "comes later"),
    ],
)
def test_what_casemsg_cannot_read_is_a_problem_with_its_row(
    rows: tuple[str, ...], extra: dict[str, str], reason: str
) -> None:
    found = problems_of(form(*rows, **extra))
    assert len(found) == 1, found
    assert reason in found[0].message
    assert (found[0].row, found[0].question) == (3, "a")


def test_a_language_is_known_by_its_name_or_refused_by_it() -> None:
    data = import_xlsform(form("type,name,label::English,label::Français,label::Kiswahili", "text,a,Name?,Nom ?,Jina?"))
    assert data["languages"] == ["en", "fr", "sw"]
    found = problems_of(form("type,name,label::English,label::Klingon", "text,a,Name?,tlhIngan?"))
    assert [p.message for p in found] == [
        "The language 'Klingon' is not one casemsg knows by name; name its columns like label::Klingon (xx), with "
        "its code."
    ]
    assert found[0].row == 1


def test_untranslated_form_uses_default_language_code_or_english() -> None:
    rows = ("type,name,label,constraint,constraint_message", "integer,a,Age?,. > 0,Too small")
    plain = import_xlsform(form(*rows))
    assert plain["languages"] == ["en"] and plain["default_language"] == "en"
    assert plain["questions"][0]["constraint_message"] == {"en": "Too small"}
    assert "form_id" not in plain and plain["settings"]["keyword"] is None
    french = import_xlsform(form(*rows, settings="default_language,sms_keyword\nFrançais (fr),AGE"))
    assert french["languages"] == ["fr"] and french["questions"][0]["label"] == {"fr": "Age?"}
    assert french["settings"]["keyword"] == "AGE"


def test_default_language_comes_first_and_missing_translations_are_left_out() -> None:
    data = import_xlsform(
        form(
            "type,name,label::Kiswahili (sw),label::English (en)",
            "text,a,Jina?,Name?",
            "text,b,,Village?",
            settings="default_language\nEnglish (en)",
        )
    )
    assert data["languages"] == ["en", "sw"]
    assert data["questions"][1]["label"] == {"en": "Village?"}  # pyxform's '-' placeholder is dropped


def test_unnamed_label_columns_are_the_default_language() -> None:
    data = import_xlsform(form("type,name,label,label::Kiswahili (sw)", "text,a,Name?,Jina?"))
    assert data["languages"] == ["en", "sw"]
    assert data["questions"][0]["label"] == {"en": "Name?", "sw": "Jina?"}


def test_references_in_labels_survive() -> None:
    data = import_xlsform(form("type,name,label", "text,name,Name?", "note,hi,Hello ${name}!"))
    assert data["questions"][1]["label"] == {"en": "Hello ${name}!"}


def test_inline_choices_in_a_hand_written_xform() -> None:
    xform = """<h:html xmlns="http://www.w3.org/2002/xforms" xmlns:h="http://www.w3.org/1999/xhtml">
      <h:head><h:title>Inline</h:title><model>
        <instance><data id="inline"><color/></data></instance>
        <bind nodeset="/data/color" type="string" required="true()"/>
      </model></h:head>
      <h:body><select1 ref="/data/color"><label>Color?</label>
        <item><label>Red</label><value>red</value></item>
        <item><label>Blue</label><value>blue</value></item>
      </select1></h:body></h:html>"""
    data = to_dict(parse_survey(xform_to_survey_dict(xform)))
    assert data["form_id"] == "inline"
    assert data["questions"] == [
        {
            "name": "color",
            "type": "select_one",
            "label": {"en": "Color?"},
            "choices": [{"name": "red", "label": {"en": "Red"}}, {"name": "blue", "label": {"en": "Blue"}}],
            "required": True,
        }
    ]


def test_references_are_read_back_under_any_root_name() -> None:
    data = import_xlsform(
        form(
            "type,name,label,relevant",
            "text,a,A?,",
            "text,b,B?,${a} = ' /data/a ' or ${a} = 'x'",
            settings="form_id,name\nroots,visit",
        )
    )
    assert data["form_id"] == "roots"
    assert data["questions"][1]["relevant"] == "${a} = ' /data/a ' or ${a} = 'x'"


def test_a_bare_name_is_an_empty_path_except_in_a_choice_filter() -> None:
    # `NULL` (CHT's pregnancy home visit writes coalesce(…, NULL)) is a child path the node does not have
    data = import_xlsform(
        form(
            "type,name,label,calculation,choice_filter",
            "text,a,A?,,",
            "calculate,b,,\"coalesce(${a}, NULL, 'none')\",",
            "select_one place,c,C?,,region = ${a}",
            choices="list_name,name,label,region\nplace,x,X,north\nplace,y,Y,south",
        )
    )
    calculate, select = data["questions"][1], data["questions"][2]
    assert calculate["calculation"] == "coalesce(${a}, '', 'none')"
    assert select["choice_filter"] == "region = ${a}"


def test_loops_inside_loops_ask_fewer_by_default() -> None:
    # three nested repeats without counts: 10, then 5, then 3 iterations (not 10 × 10 × 10)
    data = import_xlsform(
        form(
            "type,name,label",
            "begin repeat,child,Child",
            "text,name,Name?",
            "begin repeat,toy,Toy",
            "text,toy_name,Toy?",
            "begin repeat,part,Part",
            "text,part_name,Part?",
            "end repeat,,",
            "end repeat,,",
            "end repeat,,",
        )
    )
    names = [q["name"] for q in data["questions"]]
    assert "child_10_name" in names and "child_11_name" not in names
    assert "child_1_toy_5_toy_name" in names and "child_1_toy_6_toy_name" not in names
    assert "child_1_toy_1_part_3_part_name" in names and "child_1_toy_1_part_4_part_name" not in names


def test_a_path_to_a_node_the_form_does_not_have_is_empty() -> None:
    # CHT's place forms read ../inputs/meta/location/lat, which the CHT app adds when it opens the form
    data = import_xlsform(
        form("type,name,label,calculation", "text,a,A?,", 'calculate,b,,"concat(/data/inputs/meta/lat, ${a})"')
    )
    assert data["questions"][1]["calculation"] == "concat('', ${a})"
