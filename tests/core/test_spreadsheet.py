"""casemsg.core.spreadsheet: the one rule that keeps exported cells from being spreadsheet formulas, and a
scan of the tree that every module writing CSV or a workbook uses it."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from casemsg.core import spreadsheet

ROOT = Path(spreadsheet.__file__).resolve().parents[1]


@pytest.mark.parametrize("value", ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx", '=HYPERLINK("http://x")'])
def test_a_formula_start_gets_an_apostrophe(value):
    assert spreadsheet.safe_cell(value) == "'" + value


@pytest.mark.parametrize(
    ("value", "expected"), [("hello", "hello"), (" =1", " =1"), ("a=b", "a=b"), (None, ""), (12, "12"), (-5, "'-5")]
)
def test_other_values_are_written_as_they_are(value, expected):
    assert spreadsheet.safe_cell(value) == expected


def test_csv_lines_make_the_header_safe_too():
    lines = list(spreadsheet.csv_lines(["id", "=evil()"], [[1, "@x"], ["-2", "ok"]]))
    assert list(csv.reader(io.StringIO("".join(lines)))) == [["id", "'=evil()"], ["1", "'@x"], ["'-2", "ok"]]
    out = io.StringIO()
    spreadsheet.write_csv(out, ["+h"], [["=v"]])
    assert out.getvalue() == "'+h\r\n'=v\r\n"


def test_every_export_in_the_tree_goes_through_the_rule():
    """No module writes CSV (or a workbook) with a writer of its own: exports go through
    casemsg.core.spreadsheet (csv_lines, write_csv), so that no new export can skip the rule."""
    offenders = []
    for path in ROOT.rglob("*.py"):
        if path.name == "spreadsheet.py" or "migrations" in path.parts:
            continue
        text = path.read_text(encoding="utf-8")
        if "csv.writer" in text or "csv.DictWriter" in text or "Workbook(" in text:
            offenders.append(f"{path.relative_to(ROOT)}: writes CSV/xlsx itself")
    assert not offenders, offenders
