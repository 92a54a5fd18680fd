"""XLSForm import: .xlsx or .csv in, a `casemsg-survey/1` dict out.

pyxform converts the form to an XForm, and we read the XForm XML (`xform.py`), never pyxform's internal
JSON: the XML is pyxform's stable, specified output, while its dict changes between releases. Reading the
XML also means every XLSForm spelling (aliases, `${}` references, translations) has already been
normalised by pyxform. This module reads the file itself: within the limits (docs/surveys.md, "Limits"),
before pyxform does, keeping only what the XForm leaves out — each question's sheet row (for the
problems), the settings row (`sms_keyword` and casemsg's other `sms_*` settings), and the
external_choices sheet (`select_one_external`).

What is supported, and what is refused, is listed in docs/surveys.md and in `xform.py`'s docstring: in
short, everything that can be asked or computed by SMS — groups flattened, repeats unrolled, calculate,
hidden, metadata, defaults, dynamic required and read_only, choice filters, external and CSV choices,
or_other, dateTime, acknowledge, range, rank, translated labels, hints and messages, ODK Entities —, and
the questions a phone's hardware answers (geo types, media, barcodes) are refused, each with its row.

Row numbers are those of the XLSForm sheet, as pyxform reports them: the header is row 1. In an .xlsx
that is the spreadsheet row; in a .csv (sheets stacked, the sheet name in the first column) it counts
the non-blank rows of that sheet, as pyxform does.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import logging
import os
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openpyxl import load_workbook
from pyxform.constants import SUPPORTED_SHEET_NAMES as _PYXFORM_SHEETS
from pyxform.errors import PyXFormError
from pyxform.xls2json_backends import DefinitionData, get_xlsform
from pyxform.xls2xform import convert

from casemsg.core import errors, uploads
from casemsg.core.errors import InputError
from casemsg.surveys.definition import MAX_QUESTIONS, Problem, SurveyError, parse_survey, to_dict
from casemsg.surveys.xform import read_xform

__all__ = ["Imported", "import_xlsform", "read_xlsform", "xform_to_survey_dict"]

log = logging.getLogger(__name__)

_GROUPING = re.compile(r"^(begin|end)[ _](group|repeat|lgroup|loop|looped group)$")


@dataclass
class _Sheets:
    """What we read from the XLSForm ourselves: where each question is, and the settings row."""

    rows: dict[str, int] = field(default_factory=dict)  # question path below the root ("g/q") -> row
    settings: dict[str, str] = field(default_factory=dict)
    external: list[dict[str, str]] = field(default_factory=list)  # the external_choices sheet's rows

    def row_of(self, path: str) -> int | None:
        return self.rows.get(path)


###
# Limits: the work an XLSForm may cost is bounded before pyxform reads it (docs/surveys.md, "Limits")

MAX_XLSX_PARTS = 1_000  # files in the .xlsx (a zip archive)
MAX_SHEET_PART_BYTES = 10 << 20  # a worksheet, the shared strings or a media file, unzipped
MAX_OTHER_PART_BYTES = 2 << 20  # any other XML part (styles, workbook, theme, ...), unzipped
MAX_XLSX_BYTES = 20 << 20  # all parts together, unzipped
MAX_EXPANSION = 100  # a part over 1 MB may not expand more than this many times
MAX_SHEET_ROWS = 10_000  # rows of a sheet below its header, blank ones included
MAX_COLUMNS = 200  # named columns of a sheet
MAX_CELLS = 50_000  # filled cells of all sheets together
MAX_TEXT = 2_000_000  # characters in all cells together
# pyxform stops reading a sheet after this many empty rows in a row, and its header after this many empty
# columns; rows and columns past them cost nothing, so they are not counted either.
_PYXFORM_EMPTY_ROWS = 60
_PYXFORM_EMPTY_COLUMNS = 20


def _part_limit(name: str) -> int:
    lower = name.lower()
    if lower.startswith("xl/worksheets/") or lower == "xl/sharedstrings.xml":
        return MAX_SHEET_PART_BYTES
    if lower.endswith((".xml", ".rels", ".vml")):
        return MAX_OTHER_PART_BYTES
    return MAX_SHEET_PART_BYTES  # media: stored compressed already, so the 5 MB upload limit bounds it


def _too_many_rows(message: str) -> InputError:
    return InputError(errors.TOO_MANY_ROWS, message, 422)


def too_many_questions(count: int) -> InputError:
    return InputError(
        errors.TOO_MANY_QUESTIONS, f"The survey has more than {MAX_QUESTIONS:,} questions ({count:,} so far).", 422
    )


@dataclass
class _Budget:
    """Filled cells and characters counted across every sheet while streaming; over a limit is a 422 at once."""

    cells: int = 0
    text: int = 0
    questions: int = 0

    def add(self, sheet: str, value: str) -> None:
        self.cells += 1
        self.text += len(value)
        if self.cells > MAX_CELLS:
            raise _too_many_rows(
                f"The XLSForm has more than {MAX_CELLS:,} filled cells (passed on the {sheet} sheet); "
                f"an SMS survey needs far fewer."
            )
        if self.text > MAX_TEXT:
            raise _too_many_rows(
                f"The XLSForm's cells hold more than {MAX_TEXT:,} characters (passed on the {sheet} sheet)."
            )

    def row(self, sheet: str, number: int) -> None:
        """Row `number` of a sheet (the header is row 1) is read."""
        if number > MAX_SHEET_ROWS + 1:
            raise _too_many_rows(f"The {sheet} sheet has more than {MAX_SHEET_ROWS:,} rows below its header.")

    def header(self, sheet: str, width: int) -> None:
        if width > MAX_COLUMNS:
            raise _too_many_rows(f"The {sheet} sheet has more than {MAX_COLUMNS:,} columns.")

    def question(self, kind_of_row: str) -> None:
        """A survey sheet row of this type: everything but the group and repeat markers counts."""
        if kind_of_row and not _GROUPING.match(kind_of_row):
            self.questions += 1
            if self.questions > MAX_QUESTIONS:
                raise too_many_questions(self.questions)


###
# Reading the sheets (for row numbers and sms_keyword), counting as we go

_Rows = dict[str, list[tuple[int, dict[str, str]]]]
# Of the sheets read, only what the importer uses is kept: the survey sheet's type and name, the settings,
# the external choices (their cells are counted against the limits like every other sheet's).
_KEPT = {"survey": ("type", "name"), "settings": None, "external_choices": None}


def _keep(sheet: str, rows: _Rows, number: int, cells: dict[str, str]) -> None:
    if sheet not in _KEPT:
        return
    columns = _KEPT[sheet]
    kept = cells if columns is None else {k: v for k, v in cells.items() if k in columns}
    if sheet != "settings" or not rows.get(sheet):  # the settings: their first row only
        rows.setdefault(sheet, []).append((number, kept))


def _header(values: tuple[Any, ...] | list[str]) -> list[str]:
    """A header as pyxform reads it: lower-cased names, ending after a run of empty columns."""
    header: list[str] = []
    empty = 0
    for v in values:
        name = str(v).strip().lower() if v is not None else ""
        header.append(name)
        if name:
            empty = 0
        else:
            empty += 1
            if empty > _PYXFORM_EMPTY_COLUMNS:
                break
    while header and not header[-1]:
        header.pop()
    return header


def _sheet_rows_xlsx(data: bytes) -> _Rows:
    """Stream the sheets pyxform reads (openpyxl's read-only mode: one row at a time), counting rows, cells
    and questions against the limits; the archive's parts were checked first (check_zip)."""
    book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    try:
        names = book.sheetnames
        # pyxform reads the sheets it knows by name, or a workbook's only sheet as the survey
        read = [(n, n.strip().lower()) for n in names if n.strip().lower() in _PYXFORM_SHEETS]
        if not read and len(names) == 1:
            read = [(names[0], "survey")]
        budget = _Budget()
        sheets: _Rows = {}
        for title, name in read:
            sheet = book[title]
            sheet.reset_dimensions()  # rows and columns as they are, not as the file claims
            rows = sheet.iter_rows(values_only=True)
            header = _header(next(rows, ()))
            budget.header(name, len([h for h in header if h]))
            for h in header:
                if h:
                    budget.add(name, h)
            empty = 0
            for number, values in enumerate(rows, start=2):
                budget.row(name, number)
                cells: dict[str, str] = {}
                for h, v in zip(header, values, strict=False):
                    if h and v is not None and (text := str(v).strip()):
                        budget.add(name, text)
                        cells[h] = text
                if cells:
                    empty = 0
                else:
                    empty += 1
                    if empty > _PYXFORM_EMPTY_ROWS:
                        break
                if name == "survey":
                    budget.question(" ".join(cells.get("type", "").lower().split()))
                _keep(name, sheets, number, cells)
        return sheets
    finally:
        book.close()


def _sheet_rows_csv(data: bytes) -> _Rows:
    # pyxform's CSV layout: a non-empty first column starts a sheet; its first non-blank content row is the
    # header; the following non-blank rows are numbered from 2, exactly as pyxform numbers them. Every
    # sheet is read (pyxform reads them all), counting rows, cells and questions against the limits.
    sheets: _Rows = {}
    budget = _Budget()
    name: str | None = None
    header: list[str] | None = None
    count = 0
    for row in csv.reader(io.StringIO(data.decode("utf-8"), newline="")):
        if not row:
            continue
        if row[0].strip():
            name, header, count = row[0].strip().lower(), None, 0
        content = [v.strip() for v in row[1:]]
        if name is None or not any(content):
            continue
        if header is None:
            header = [h.lower() for h in content]
            budget.header(name, len([h for h in header if h]))
            for h in header:
                if h:
                    budget.add(name, h)
            continue
        count += 1
        budget.row(name, count + 1)
        cells: dict[str, str] = {}
        for h, v in zip(header, content, strict=False):
            if h and v:
                budget.add(name, v)
                cells[h] = v
        if name == "survey":
            budget.question(" ".join(cells.get("type", "").lower().split()))
        _keep(name, sheets, count + 1, cells)
    return sheets


def _check_archive(data: bytes) -> bool:
    """The .xlsx's parts against the limits (413 FILE_TOO_LARGE); False when it is no readable zip at all
    (pyxform then says so in its own words, having nothing to expand either)."""
    try:
        uploads.check_zip(
            data,
            what="The XLSForm",
            max_members=MAX_XLSX_PARTS,
            max_member_bytes=_part_limit,
            max_total_bytes=MAX_XLSX_BYTES,
            max_ratio=MAX_EXPANSION,
        )
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError, OSError, ValueError):
        return False
    return True


def _read_sheets(data: bytes, kind: str) -> _Sheets:
    """Check the file against the limits while reading what we need of it (raises InputError: 413
    FILE_TOO_LARGE, 422 TOO_MANY_ROWS or TOO_MANY_QUESTIONS); unreadable files are left to pyxform."""
    if kind == "xlsx":
        if not _check_archive(data):
            return _Sheets()
        try:
            raw = _sheet_rows_xlsx(data)
        except InputError:
            raise
        except Exception as exc:  # noqa: BLE001 — whatever openpyxl raised, pyxform must not read it either
            raise SurveyError([Problem(None, f"The file could not be read as an .xlsx workbook: {exc}")]) from None
    else:
        try:
            raw = _sheet_rows_csv(data)
        except UnicodeDecodeError:  # pyxform reports it, in its own words, without reading further
            return _Sheets()
    result = _Sheets()
    stack: list[str] = []
    for number, cells in raw.get("survey", []):
        kind_of_row = " ".join(cells.get("type", "").lower().split())
        name = cells.get("name", "")
        grouping = _GROUPING.match(kind_of_row)
        if grouping and grouping[1] == "end":
            if stack:
                stack.pop()
            continue
        if name:
            result.rows.setdefault("/".join([*stack, name]), number)
        if grouping:
            stack.append(name)
    settings_rows = raw.get("settings", [])
    if settings_rows:
        result.settings = settings_rows[0][1]
    result.external = [cells for _number, cells in raw.get("external_choices", [])]
    return result


###
# Reading the XForm (xform.py)


def xform_to_survey_dict(
    xform: str, *, rows: Mapping[str, int] | None = None, settings: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Read an XForm (as pyxform writes it) into a survey dict, not yet validated or canonical; raises
    SurveyError for anything outside the supported subset, refused rows included (see `read_xlsform` to
    accept a form without them)."""
    imported = read_xform(xform, rows=rows, settings=settings)
    if imported.refused:
        raise SurveyError(imported.refused)
    return imported.survey


###
# Entry point


def _load(source: str | os.PathLike[str] | bytes, file_type: str | None) -> tuple[bytes, str]:
    if isinstance(source, bytes):
        data = source
        kind = file_type or ("xlsx" if data[:4] == b"PK\x03\x04" else "csv")
    else:
        path = Path(source)
        data = path.read_bytes()
        kind = file_type or path.suffix.lower().lstrip(".")
    kind = kind.lower().lstrip(".")
    if kind not in ("xlsx", "csv"):
        raise SurveyError([Problem(None, f"XLSForms must be .xlsx or .csv files, not .{kind}.")])
    if kind == "csv" and data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]  # Excel's "CSV UTF-8" adds a BOM that would glue itself to the sheet name
    return data, kind


def _cht_dialect(workbook: DefinitionData) -> DefinitionData:
    """The Community Health Toolkit's forms, as cht-conf converts them, read by pyxform 4: their `meta` group
    (which pyxform now reserves) renamed, their `tel` and `db:<type>` questions as text, and the
    `instance::` columns (CHT's own document attributes, which pyxform 4 fails on) dropped. Each of these
    is refused by pyxform 4 otherwise, so no form pyxform accepts changes."""
    rows = []
    for row in workbook.survey or []:
        kept = {k: v for k, v in row.items() if not str(k).startswith("instance::")}
        kind, name = str(kept.get("type", "")).strip(), str(kept.get("name", "")).strip()
        if kind in ("begin group", "begin_group") and name == "meta":
            kept["name"] = "cht_meta"
        elif kind == "tel" or kind.startswith("db:"):
            kept["type"] = "text"
        rows.append(kept)
    workbook.survey = rows
    return workbook


def _pyxform_problem(message: str) -> Problem:
    m = re.match(r"^\s*\[row : (\d+)\]\s*", message)
    row = int(m[1]) if m else None
    text = message[m.end() :] if m else message
    sheet = re.search(r"On the '(\w+)' sheet", text)
    return Problem(None, text.strip(), row=row, sheet=sheet[1] if sheet else ("survey" if row else None))


def _by_row(problems: list[Problem]) -> list[Problem]:
    """Problems in the order of the sheets' rows (the survey's own, without a row, first)."""
    return sorted(problems, key=lambda p: (p.row is not None, p.sheet or "", p.row or 0))


@dataclass
class Imported:
    """An XLSForm read: its canonical survey dict, and the rows refused because a phone's hardware answers
    them (kept in the survey as empty hidden fields)."""

    definition: dict[str, Any]
    refused: list[Problem]


def read_xlsform(
    source: str | os.PathLike[str] | bytes,
    *,
    file_type: str | None = None,
    attachments: Mapping[str, bytes] | None = None,
) -> Imported:
    """Convert an XLSForm (.xlsx or .csv; a path or the file's bytes) into a canonical survey dict.

    `file_type` ('xlsx' or 'csv') overrides detection from the file name or content; `attachments` are
    the files attached with the form (name -> bytes: CSVs of choices for `select_one_from_file`). Raises
    SurveyError whose problems carry the survey sheet row of each invalid question, and InputError for a
    file over the limits (413 FILE_TOO_LARGE, 422 TOO_MANY_ROWS or TOO_MANY_QUESTIONS), found before
    pyxform reads it. The rows refused because a phone's hardware answers them are in `refused`.
    """
    data, kind = _load(source, file_type)
    sheets = _read_sheets(data, kind)  # first: refuses what is over the limits before pyxform reads it
    try:
        # only the XForm is kept: pyxform's own structures are freed before the XForm is parsed
        workbook = _cht_dialect(get_xlsform(io.BytesIO(data), file_type=f".{kind}"))
        xform = convert(xlsform=dataclasses.asdict(workbook), warnings=[]).xform
    except PyXFormError as err:
        raise SurveyError([_pyxform_problem(str(err))]) from None
    except (TypeError, ValueError, KeyError, AttributeError, IndexError) as err:
        # pyxform fails on some columns it does not check (a group's `instance::tag`, in CHT's forms) with a
        # Python error: the form is refused as pyxform could not read it, not a server error
        log.info("pyxform could not convert a form: %r", err)
        raise SurveyError(
            [Problem(None, f"pyxform could not convert this form ({type(err).__name__}: {err}).")]
        ) from None
    del data
    try:
        imported = read_xform(
            xform, rows=sheets.rows, settings=sheets.settings, attachments=attachments or {}, external=sheets.external
        )
    except SurveyError as err:
        raise SurveyError(_by_row(err.problems)) from None
    del xform
    try:
        return Imported(to_dict(parse_survey(imported.survey)), imported.refused)
    except SurveyError as err:
        located = []
        for p in err.problems:
            path = imported.paths.get(p.question or "", p.question or "")
            row = sheets.row_of(path) if p.question else None
            located.append(Problem(p.question, p.message, row=row, sheet="survey") if row is not None else p)
        raise SurveyError(_by_row(located + imported.refused)) from None


def import_xlsform(
    source: str | os.PathLike[str] | bytes,
    *,
    file_type: str | None = None,
    attachments: Mapping[str, bytes] | None = None,
    accept_refused: bool = False,
) -> dict[str, Any]:
    """`read_xlsform`'s canonical survey dict; refused rows are problems (SurveyError) unless
    `accept_refused`, which keeps them as empty hidden fields."""
    imported = read_xlsform(source, file_type=file_type, attachments=attachments)
    if imported.refused and not accept_refused:
        raise SurveyError(imported.refused)
    return imported.definition
