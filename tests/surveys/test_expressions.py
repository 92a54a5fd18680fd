"""XForms expressions: the conformance cases, compile-time errors, and isolation from elementpath."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from elementpath import XPath1Parser

from casemsg.surveys.expressions import (
    SUPPORTED_FUNCTIONS,
    ExpressionError,
    XFormsParser,
    compile_expression,
    evaluate_bool,
    find_references,
)

CASES: list[dict[str, Any]] = json.loads((Path(__file__).parent / "expressions_conformance.json").read_text())


def test_there_are_enough_conformance_cases() -> None:
    assert len(CASES) >= 40


@pytest.mark.parametrize("case", CASES, ids=[f"{i}:{c['expr']}" for i, c in enumerate(CASES)])
def test_conformance(case: dict[str, Any]) -> None:
    compiled = compile_expression(case["expr"], set(find_references(case["expr"])))
    result = evaluate_bool(compiled, case["answers"], case["current"], dt.date.fromisoformat(case["today"]))
    assert result is case["expected"], case.get("note", "")


@pytest.mark.parametrize(
    ("expr", "known", "message"),
    [
        ("", set(), r"is empty"),
        ("${a} >", {"a"}, r"is not valid: unexpected end"),
        ("${a} = 'x", {"a"}, r"is not valid"),
        ("${b} = 1", {"a"}, r"\$\{b\}, which is not a known question"),
        ("${1x} = 1", set(), r"not a question name"),
        ("foo(1)", set(), r"uses foo\(\), which surveys do not support"),
        ("position() = 1", set(), r"uses position\(\)"),
        ("${a} | 1", {"a"}, r"paths, variables or axes"),
        ("pulldata('a', 'b', 'c')", set(), r"is not valid"),
        ("digest('a', 'SHA-1')", set(), r"uses digest\(\)"),
        ("jr:itext('x')", set(), r"is not valid"),
        ("a > 1", {"a"}, r"write \$\{a\}"),
        ("/data/a = 1", {"a"}, r"paths, variables or axes"),
        ("${a}/b = 1", {"a"}, r"paths, variables or axes"),
        ("$a = 1", {"a"}, r"paths, variables or axes"),
        ("../a = 1", {"a"}, r"paths, variables or axes"),
        ("* = 1", set(), r"wildcard"),
        ("regex(., '[')", set(), r"invalid regular expression"),
        ("selected(.)", set(), r"is not valid"),
        ("if(1, 2)", set(), r"is not valid"),
    ],
)
def test_compile_errors(expr: str, known: set[str], message: str) -> None:
    with pytest.raises(ExpressionError, match=message):
        compile_expression(expr, known)


def test_dot_can_be_forbidden() -> None:
    with pytest.raises(ExpressionError, match=r"only makes sense in a constraint"):
        compile_expression(". > 1", set(), allow_dot=False)
    assert compile_expression("${a} > 1", {"a"}, allow_dot=False).uses_current is False
    assert compile_expression(". > ${a}", {"a"}).uses_current is True


def test_references_in_order_and_outside_literals() -> None:
    assert find_references("${b} > ${a} and '${c}' = ${b}") == ["b", "a"]
    assert compile_expression("${b} > ${a}", {"a", "b"}).references == ("b", "a")


def test_answers_that_are_not_referenced_are_ignored() -> None:
    compiled = compile_expression(". = 'x'", set())
    assert evaluate_bool(compiled, {"other": "y", "not a name": "z"}, "x", dt.date(2024, 1, 1))


def test_runtime_regex_error_is_an_expression_error() -> None:
    compiled = compile_expression("regex('abc', ${p})", {"p"})
    with pytest.raises(ExpressionError, match=r"could not be evaluated"):
        evaluate_bool(compiled, {"p": "["}, None, dt.date(2024, 1, 1))


def test_today_is_the_given_date() -> None:
    compiled = compile_expression("today() = '1999-12-31'", set())
    assert evaluate_bool(compiled, {}, None, dt.date(1999, 12, 31))
    assert not evaluate_bool(compiled, {}, None, dt.date(2000, 1, 1))


def test_xpath1_parser_is_left_untouched() -> None:
    # Our functions and operator overrides live in XFormsParser's own symbol table only.
    assert "selected" in XFormsParser.symbol_table and "selected" not in XPath1Parser.symbol_table
    assert XFormsParser.symbol_table["="] is not XPath1Parser.symbol_table["="]
    assert issubclass(XFormsParser.symbol_table["="], XPath1Parser.symbol_table["="])


def test_supported_functions_are_all_registered() -> None:
    for name in SUPPORTED_FUNCTIONS:
        assert name in XFormsParser.symbol_table, name
