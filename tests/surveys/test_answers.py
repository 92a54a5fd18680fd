"""Reading SMS replies as answers, and the error sentences."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from casemsg.surveys.answers import (
    DEFAULT_MESSAGES,
    ERROR_CODES,
    Parsed,
    error_message,
    parse_answer,
)
from casemsg.surveys.definition import Question, Survey, parse_survey

SURVEY: Survey = parse_survey(json.loads((Path(__file__).parent / "fixtures" / "anc_followup.json").read_text()))
VISITED = SURVEY.question("visited")  # select_one yes/no, required; sw labels Ndiyo/Hapana
SYMPTOMS = SURVEY.question("symptoms")  # select_multiple headache bleeding fever none


def ok(question: Question, reply: str, **kw: str) -> str:
    parsed = parse_answer(question, reply, **kw)
    assert parsed.ok, parsed
    assert parsed.error == ""
    return parsed.value


def bad(question: Question, reply: str, **kw: str) -> str:
    parsed = parse_answer(question, reply, **kw)
    assert not parsed.ok, parsed
    assert parsed.value == ""
    return parsed.error


def typed(type_: str, required: bool = False) -> Question:
    return Question(name="q", type=type_, label={"en": "Q?"}, required=required)


@pytest.mark.parametrize(
    ("reply", "expected"),
    [("1", "yes"), ("2", "no"), (" yes ", "yes"), ("YES", "yes"), ("No.", "no"), ("ndiyo", "yes"), ("Hapana", "no")],
)
def test_select_one_by_number_name_or_label_in_any_language(reply: str, expected: str) -> None:
    assert ok(VISITED, reply) == expected


@pytest.mark.parametrize("reply", ["3", "0", "maybe", "1 2", "-1"])
def test_select_one_rejects(reply: str) -> None:
    assert bad(VISITED, reply) == "invalid_choice"


def test_select_one_error_says_how_many_choices() -> None:
    assert (
        error_message(parse_answer(VISITED, "7"), "en") == "Please reply with the number of your choice, from 1 to 2."
    )


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("1 3", "headache fever"),
        ("3 1", "headache fever"),  # stored in choice order
        ("1,3", "headache fever"),
        ("1, 3, 3", "headache fever"),  # duplicates removed
        ("bleeding FEVER", "bleeding fever"),
        ("homa 1", "headache fever"),
        ("Maumivu ya kichwa", "headache"),  # a multi-word label as the whole reply
        ("4", "none"),
    ],
)
def test_select_multiple(reply: str, expected: str) -> None:
    assert ok(SYMPTOMS, reply) == expected


@pytest.mark.parametrize("reply", ["1 5", "cough", "1 maumivu", ","])
def test_select_multiple_rejects(reply: str) -> None:
    assert bad(SYMPTOMS, reply) == "invalid_choices"


@pytest.mark.parametrize(
    ("reply", "expected"), [("12", "12"), ("+12", "12"), ("-3", "-3"), ("007", "7"), (" 42 ", "42"), ("0", "0")]
)
def test_integer(reply: str, expected: str) -> None:
    assert ok(typed("integer"), reply) == expected


@pytest.mark.parametrize("reply", ["1.5", "1.0", "1,5", "12a", "twelve", "1 2", "++1", "2147483648", "1e3"])
def test_integer_rejects(reply: str) -> None:
    assert bad(typed("integer"), reply) == "invalid_integer"


@pytest.mark.parametrize(
    ("reply", "expected"),
    [("61.5", "61.5"), ("61,5", "61.5"), ("+2", "2"), ("-0.250", "-0.25"), (".5", "0.5"), ("5.", "5"), ("-0", "0")],
)
def test_decimal(reply: str, expected: str) -> None:
    assert ok(typed("decimal"), reply) == expected


@pytest.mark.parametrize("reply", ["1,234.5", "1.2.3", "abc", "1e5", "NaN", "Infinity", "."])
def test_decimal_rejects(reply: str) -> None:
    assert bad(typed("decimal"), reply) == "invalid_decimal"


@pytest.mark.parametrize(
    ("reply", "date_format", "expected"),
    [
        ("20240315", "YYYYMMDD", "2024-03-15"),
        ("2024-03-15", "YYYYMMDD", "2024-03-15"),
        ("2024/3/5", "YYYYMMDD", "2024-03-05"),
        ("2024.03.15", "YYYYMMDD", "2024-03-15"),
        ("15032024", "DDMMYYYY", "2024-03-15"),
        ("15/03/2024", "DDMMYYYY", "2024-03-15"),
        ("5-3-2024", "DDMMYYYY", "2024-03-05"),
        ("03152024", "MMDDYYYY", "2024-03-15"),
        ("3/5/2024", "MMDDYYYY", "2024-03-05"),
        ("2024-03-15", "DDMMYYYY", "2024-03-15"),  # year first is unambiguous in any format
        ("20240229", "YYYYMMDD", "2024-02-29"),
    ],
)
def test_date(reply: str, date_format: str, expected: str) -> None:
    assert ok(typed("date"), reply, date_format=date_format) == expected


@pytest.mark.parametrize(
    ("reply", "date_format"),
    [
        ("20230229", "YYYYMMDD"),  # not a leap year
        ("20241301", "YYYYMMDD"),
        ("31042024", "DDMMYYYY"),  # 31 April
        ("15032024", "MMDDYYYY"),  # month 15
        ("15/03/24", "DDMMYYYY"),  # two-digit year
        ("15/03/2024", "YYYYMMDD"),  # day-first when the project writes year first
        ("2024315", "YYYYMMDD"),
        ("March 15", "YYYYMMDD"),
        ("00000101", "YYYYMMDD"),
    ],
)
def test_date_rejects(reply: str, date_format: str) -> None:
    assert bad(typed("date"), reply, date_format=date_format) == "invalid_date"


def test_date_error_shows_the_project_format() -> None:
    parsed = parse_answer(typed("date"), "tomorrow", date_format="DDMMYYYY")
    assert error_message(parsed, "en") == "Please reply with a date as DDMMYYYY, for example 15032024."


def test_unknown_date_format_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="date_format"):
        parse_answer(typed("date"), "20240101", date_format="YYMMDD")


@pytest.mark.parametrize(
    ("reply", "expected"),
    [("0930", "09:30"), ("09:30", "09:30"), ("9:30", "09:30"), ("930", "09:30"), ("2359", "23:59"), ("0000", "00:00")],
)
def test_time(reply: str, expected: str) -> None:
    assert ok(typed("time"), reply) == expected


@pytest.mark.parametrize("reply", ["2400", "12:60", "1", "12345", "noon", "9:5"])
def test_time_rejects(reply: str) -> None:
    assert bad(typed("time"), reply) == "invalid_time"


def test_text_is_stripped() -> None:
    assert ok(typed("text"), "  hello there \n") == "hello there"


@pytest.mark.parametrize("type_", ["text", "integer", "decimal", "date", "time", "select_one", "select_multiple"])
def test_blank_reply(type_: str) -> None:
    question = typed(type_, required=True)
    assert bad(question, "   ") == "required"
    assert ok(typed(type_), "") == ""


def test_notes_take_no_answer() -> None:
    assert ok(SURVEY.question("intro"), "anything") == ""


def test_every_error_code_has_an_english_message() -> None:
    assert set(DEFAULT_MESSAGES["en"]) == set(ERROR_CODES)


def test_messages_use_overrides_then_fallbacks() -> None:
    parsed = parse_answer(typed("integer"), "x")
    overrides = {"sw": {"invalid_integer": "Tafadhali jibu kwa namba kamili."}}
    assert error_message(parsed, "sw", overrides) == "Tafadhali jibu kwa namba kamili."
    # No Swahili text for this code: the fallback language, then English.
    required = parse_answer(typed("text", required=True), "")
    assert error_message(required, "sw", overrides) == DEFAULT_MESSAGES["en"]["required"]
    fr = {"fr": {"required": "Une réponse est requise."}}
    assert error_message(required, "sw", fr, fallback_language="fr") == "Une réponse est requise."


def test_unknown_placeholder_in_a_translation_still_renders() -> None:
    parsed = parse_answer(VISITED, "9")
    assert error_message(parsed, "en", {"en": {"invalid_choice": "1-{count} {oops}"}}) == "1-2 {oops}"


def test_ok_has_no_message() -> None:
    assert error_message(Parsed(True, "x", ""), "en") == ""
