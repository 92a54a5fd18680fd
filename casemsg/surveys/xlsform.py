"""XLSForm import: .xlsx or .csv in, a `casemsg-survey/1` dict out.

pyxform converts the form to an XForm, and we read the XForm XML, never pyxform's internal JSON: the XML
is pyxform's stable, specified output, while its dict changes between releases. Reading the XML also means
every XLSForm spelling (aliases, `${}` references, translations) has already been normalised by pyxform.

Supported subset (anything else is refused with its sheet row and a reason, not silently dropped):

* types text, integer, decimal, date, time, select_one, select_multiple (inline or sheet choices) and note;
* `label` and `constraint_message`, translated as `label::English (en)`: the language code is the part in
  parentheses, and the default language is pyxform's (settings `default_language`, else the first);
  columns without a language (plain `label`) are in the settings `default_language` code, else English;
* `required` (yes/no only), `constraint`, `relevant`, and `save_to` (pyxform's `entities:saveto`). pyxform
  only accepts `save_to` together with an entities sheet; casemsg ignores the entity declaration itself
  (list_name/label), because a survey always updates the case it was sent to;
* settings `form_title` (the survey name), `form_id`, `version`, and `sms_keyword` (the survey keyword).
  pyxform does not put `sms_keyword` in the XForm, so it is read from the settings sheet directly
  (openpyxl for .xlsx, the csv module for .csv);
* `hint`, `appearance` and other presentation-only columns are ignored: an SMS has no room for them.

Refused: groups and repeats, media (image/audio/video/file questions and media labels), geo types,
calculate/hidden/metadata fields, acknowledge, range, rank, dateTime, barcode, default values, choice
filters, choices from external files, read_only and dynamic `required`.

Row numbers are those of the XLSForm sheet, as pyxform reports them: the header is row 1. In an .xlsx
that is the spreadsheet row; in a .csv (sheets stacked, the sheet name in the first column) it counts
the non-blank rows of that sheet, as pyxform does.
"""

from __future__ import annotations

import csv
import io
import os
import re
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openpyxl import load_workbook
from pyxform.constants import SUPPORTED_SHEET_NAMES as _PYXFORM_SHEETS
from pyxform.errors import PyXFormError
from pyxform.xls2xform import convert

from casemsg.core import errors, uploads
from casemsg.core.errors import InputError
from casemsg.surveys.definition import (
    FORMAT,
    MAX_CHOICES,
    MAX_QUESTIONS,
    Problem,
    SurveyError,
    parse_survey,
    to_dict,
)

__all__ = ["import_xlsform", "xform_to_survey_dict"]

_NS = {
    "h": "http://www.w3.org/1999/xhtml",
    "xf": "http://www.w3.org/2002/xforms",
    "jr": "http://openrosa.org/javarosa",
    "odk": "http://www.opendatakit.org/xforms",
    "entities": "http://www.opendatakit.org/xforms/entities",
}
_JR = "{" + _NS["jr"] + "}"
_XF = "{" + _NS["xf"] + "}"
_SAVETO = "{" + _NS["entities"] + "}saveto"
_ITEXT_REF = re.compile(r"""^\s*jr:itext\(\s*'([^']*)'\s*\)\s*$""")
_LANG_CODE = re.compile(r"\(\s*([A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*)\s*\)\s*$")
_GROUPING = re.compile(r"^(begin|end)[ _](group|repeat|lgroup|loop|looped group)$")
_MISSING_TRANSLATION = "-"  # pyxform's placeholder for a translation left empty
_BIND_TYPES = {"string": "text", "int": "integer", "decimal": "decimal", "date": "date", "time": "time"}
_REFUSED_BIND_TYPES = {
    "geopoint": "geo types (geopoint, geotrace, geoshape) cannot be answered by SMS",
    "geotrace": "geo types (geopoint, geotrace, geoshape) cannot be answered by SMS",
    "geoshape": "geo types (geopoint, geotrace, geoshape) cannot be answered by SMS",
    "binary": "media questions (image, audio, video, file) cannot be answered by SMS",
    "dateTime": "dateTime is not supported; use a date question and a time question",
    "barcode": "barcode cannot be answered by SMS",
}
_REFUSED_CONTROLS = {
    "upload": "media questions (image, audio, video, file) cannot be answered by SMS",
    "trigger": "acknowledge is not supported; use a select_one with a single choice",
    "range": "range is not supported; use an integer or decimal question with a constraint",
    "rank": "rank is not supported",
}


@dataclass
class _Sheets:
    """What we read from the XLSForm ourselves: where each question is, and the settings row."""

    rows: dict[str, int] = field(default_factory=dict)  # question path below the root ("g/q") -> row
    settings: dict[str, str] = field(default_factory=dict)

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
# Of the sheets read, only what the importer uses is kept: the survey sheet's type and name, the settings.
_KEPT = {"survey": ("type", "name"), "settings": None}


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
    return result


###
# Reading the XForm


def _from_xpath(expr: str, root: str) -> str:
    """Undo pyxform's `${q}` -> ' /data/q ' (spaces included) so the survey shows what the author wrote.

    Only paths under the form's own root with pyxform's leading space are references; string literals
    are skipped, and anything else is left for the expression compiler to judge.
    """
    pattern = re.compile(
        r"""'[^']*'|"[^"]*"| /""" + re.escape(root) + r"""/(?P<path>[A-Za-z_][\w.-]*(?:/[\w.-]+)*) ?"""
    )

    def sub(m: re.Match[str]) -> str:
        return f"${{{m['path']}}}" if m["path"] else m[0]

    return pattern.sub(sub, expr).strip()


def _text_of(element: ET.Element, root: str) -> str:
    """Text with pyxform's `<output value=" /data/q "/>` turned back into `${q}`."""
    parts = [element.text or ""]
    for child in element:
        if child.tag == _XF + "output":
            parts.append(_from_xpath(child.get("value", ""), root))
        parts.append(child.tail or "")
    return "".join(parts).strip()


@dataclass
class _Reader:
    xml: ET.Element
    sheets: _Sheets
    problems: list[Problem] = field(default_factory=list)
    languages: list[tuple[str, str]] = field(default_factory=list)  # (pyxform lang, code)
    default_language: str = "en"
    itext: dict[str, dict[str, str]] = field(default_factory=dict)  # text id -> {code: text}
    media_texts: set[str] = field(default_factory=set)
    binds: dict[str, dict[str, str]] = field(default_factory=dict)
    controls: dict[str, ET.Element] = field(default_factory=dict)
    repeats: set[str] = field(default_factory=set)
    instances: dict[str, ET.Element] = field(default_factory=dict)
    root_name: str = "data"
    choice_count: int = 0  # every question's choices are its own in the survey dict: bounded by MAX_CHOICES

    def problem(self, path: str | None, message: str) -> None:
        row = self.sheets.row_of(path) if path else None
        question = path.rsplit("/", 1)[-1] if path else None
        self.problems.append(Problem(question, message, row=row, sheet="survey" if row is not None else None))

    def model(self) -> ET.Element:
        model = self.xml.find("h:head/xf:model", _NS)
        if model is None:
            raise SurveyError([Problem(None, "The XForm has no model.")])
        return model

    def read_languages(self, model: ET.Element) -> None:
        translations = model.findall("xf:itext/xf:translation", _NS)
        default_setting = self.sheets.settings.get("default_language", "")
        if not translations:
            m = _LANG_CODE.search(default_setting)
            self.default_language = m[1] if m else "en"
            self.languages = [("", self.default_language)]
            return
        default = None
        # pyxform files columns without a language (`label`, or media) under the language "default"; they
        # are in the form's default language: the settings' default_language, else English.
        m = _LANG_CODE.search(default_setting)
        unnamed = m[1] if m else "en"
        # Explicitly named languages first, so their texts win over unnamed columns in the same language.
        for translation in sorted(translations, key=lambda t: t.get("lang") == "default"):
            lang = translation.get("lang", "")
            m = _LANG_CODE.search(lang)
            if lang == "default":
                code = unnamed
            elif m is None:
                message = f"The language '{lang}' has no code; name its columns like label::{lang} (xx)."
                self.problems.append(Problem(None, message, row=1, sheet="survey"))  # row 1: the column names
                continue
            else:
                code = m[1]
            if code not in [c for _, c in self.languages]:
                self.languages.append((lang, code))
            if translation.get("default") == "true()":
                default = code
            for text in translation.findall("xf:text", _NS):
                text_id = text.get("id", "")
                for value in text.findall("xf:value", _NS):
                    if value.get("form"):  # image, audio, video, big-image
                        self.media_texts.add(text_id)
                        continue
                    content = _text_of(value, self.root_name)
                    if content and content != _MISSING_TRANSLATION:
                        self.itext.setdefault(text_id, {}).setdefault(code, content)
        if self.languages:
            self.default_language = default or self.languages[0][1]
            # The default language first, then the others in the form's order.
            self.languages.sort(key=lambda lang: lang[1] != self.default_language)

    def texts(self, element: ET.Element | None) -> dict[str, str] | None:
        """Texts of a question <label>: an itext reference or inline text; None when there is none."""
        if element is None:
            return None
        ref = element.get("ref")
        if ref is None:
            text = _text_of(element, self.root_name)
            return {self.default_language: text} if text else None
        m = _ITEXT_REF.match(ref)
        return dict(self.itext.get(m[1], {})) if m else None

    def is_media_label(self, element: ET.Element | None) -> bool:
        m = _ITEXT_REF.match(element.get("ref", "")) if element is not None else None
        return bool(m and m[1] in self.media_texts)

    def index(self, model: ET.Element) -> ET.Element | None:
        for bind in model.findall("xf:bind", _NS):
            nodeset = bind.get("nodeset", "")
            self.binds[nodeset] = {k: v for k, v in bind.attrib.items()}
        main: ET.Element | None = None
        for instance in model.findall("xf:instance", _NS):
            if instance.get("id") is None and main is None:
                main = instance
            elif instance.get("id"):
                self.instances[instance.get("id", "")] = instance
        body = self.xml.find("h:body", _NS)
        if body is not None:
            for element in body.iter():
                local = element.tag.rsplit("}", 1)[-1]
                if local == "repeat":
                    self.repeats.add(element.get("nodeset", ""))
                elif element.get("ref") and local not in ("label", "hint", "value", "output"):
                    self.controls.setdefault(element.get("ref", ""), element)
        data = None if main is None else next(iter(main), None)
        if data is not None:
            self.root_name = data.tag.rsplit("}", 1)[-1]
        return data

    def choices(self, path: str, control: ET.Element) -> list[dict[str, Any]] | None:
        items: list[tuple[str, dict[str, str] | None]] = []
        itemset = control.find("xf:itemset", _NS)
        if itemset is not None:
            nodeset = itemset.get("nodeset", "")
            m = re.match(r"^instance\('([^']+)'\)/root/item(.*)$", nodeset)
            if m is None or m[2].strip():
                self.problem(path, "choice_filter is not supported; list only the choices this question offers.")
                return None
            instance = self.instances.get(m[1])
            if instance is None or instance.get("src"):
                self.problem(path, "choices from an external file are not supported; put them on the choices sheet.")
                return None
            value = itemset.find("xf:value", _NS)
            value_ref = value.get("ref", "name") if value is not None else "name"
            label = itemset.find("xf:label", _NS)
            text_ids = {i.findtext("xf:itextId", default="", namespaces=_NS).strip() for i in instance.iter()}
            if text_ids & self.media_texts:
                self.problem(path, "media labels (image, audio, video) cannot be sent by SMS.")
                return None
            for item in instance.iterfind("xf:root/xf:item", _NS):
                items.append(
                    (
                        item.findtext(f"xf:{value_ref}", default="", namespaces=_NS).strip(),
                        self._item_label(label, item),
                    )
                )
        else:
            for item in control.findall("xf:item", _NS):
                items.append(
                    (
                        item.findtext("xf:value", default="", namespaces=_NS).strip(),
                        self.texts(item.find("xf:label", _NS)),
                    )
                )
        self.choice_count += len(items)
        if self.choice_count > MAX_CHOICES:
            raise InputError(
                errors.TOO_MANY_QUESTIONS,
                f"The survey's questions have more than {MAX_CHOICES:,} choices in all (a choice list is "
                f"counted once for every question that uses it).",
                422,
            )
        return [{"name": name, "label": label or {}} for name, label in items]

    def _item_label(self, label: ET.Element | None, item: ET.Element) -> dict[str, str] | None:
        if label is None:
            return None
        ref = label.get("ref", "")
        if ref.replace(" ", "") == "jr:itext(itextId)":
            text_id = item.findtext("xf:itextId", default="", namespaces=_NS).strip()
            return dict(self.itext.get(text_id, {}))
        child = item.find(f"xf:{ref}", _NS)
        text = (child.text or "").strip() if child is not None else ""
        return {self.default_language: text} if text else None

    def question(self, path: str, node: ET.Element) -> dict[str, Any] | None:
        xpath = f"/{self.root_name}/{path}"
        bind = self.binds.get(xpath, {})
        control = self.controls.get(xpath)
        if bind.get(_JR + "preload"):
            self.problem(path, "metadata (start, end, today, deviceid, ...) is collected by phone apps, not by SMS.")
            return None
        if "calculate" in bind:
            self.problem(path, "calculate is not supported in SMS surveys.")
            return None
        if control is None:
            self.problem(path, "this row asks nothing (hidden and calculated fields are not supported).")
            return None
        local = control.tag.rsplit("}", 1)[-1]
        bind_type = bind.get("type", "string")
        readonly = bind.get("readonly") == "true()"
        if local in _REFUSED_CONTROLS:
            self.problem(path, _REFUSED_CONTROLS[local] + ".")
            return None
        if local == "select1":
            qtype = "select_one"
        elif local == "select":
            qtype = "select_multiple"
        elif local == "input" and bind_type in _REFUSED_BIND_TYPES:
            self.problem(path, _REFUSED_BIND_TYPES[bind_type] + ".")
            return None
        elif local == "input" and bind_type in _BIND_TYPES:
            qtype = "note" if readonly and bind_type == "string" else _BIND_TYPES[bind_type]
        else:
            self.problem(path, f"the question type ({local} of {bind_type}) is not supported in SMS surveys.")
            return None
        ok = True
        if readonly and qtype != "note":
            self.problem(path, "read_only is not supported in SMS surveys.")
            ok = False
        if (node.text or "").strip():
            self.problem(path, "default values are not supported in SMS surveys.")
            ok = False
        label_element = control.find("xf:label", _NS)
        if self.is_media_label(label_element):
            self.problem(path, "media labels (image, audio, video) cannot be sent by SMS.")
            ok = False
        question: dict[str, Any] = {"name": path, "type": qtype, "label": self.texts(label_element) or {}}
        if qtype in ("select_one", "select_multiple"):
            choices = self.choices(path, control)
            if choices is None:
                ok = False
            else:
                question["choices"] = choices
        required = bind.get("required", "false()")
        if required not in ("true()", "false()"):
            self.problem(path, "required must be yes or no; a required condition is not supported.")
            ok = False
        elif required == "true()":
            question["required"] = True
        for key, attr in (("constraint", "constraint"), ("relevant", "relevant")):
            if bind.get(attr):
                question[key] = _from_xpath(bind[attr], self.root_name)
        message = bind.get(_JR + "constraintMsg")
        if message:
            m = _ITEXT_REF.match(message)
            question["constraint_message"] = (
                dict(self.itext.get(m[1], {})) if m else {self.default_language: message.strip()}
            )
        if bind.get(_SAVETO):
            question["save_to"] = bind[_SAVETO]
        return question if ok else None

    def walk(self, data: ET.Element) -> Iterator[tuple[str, ET.Element]]:
        """Top-level nodes of the primary instance in form order; groups and repeats are refused, not
        entered, so each gets one problem on its own row."""
        seen: set[str] = set()
        for node in data:
            path = node.tag.rsplit("}", 1)[-1]
            if path in seen or path == "meta":
                continue  # a repeat's jr:template twin; or the meta block pyxform adds (instanceID, entity)
            seen.add(path)
            if len(node):
                is_repeat = f"/{self.root_name}/{path}" in self.repeats or node.get(_JR + "template") is not None
                what = "repeats" if is_repeat else "groups"
                self.problem(path, f"{what} are not supported in SMS surveys; put the questions at the top level.")
                continue
            yield path, node


def xform_to_survey_dict(
    xform: str, *, rows: Mapping[str, int] | None = None, settings: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Read an XForm (as pyxform writes it) into a survey dict, not yet validated or canonical.

    `rows` maps question paths below the root ("q", or "group/q") to survey sheet rows, for the problems;
    `settings` is the XLSForm settings row (for sms_keyword, which pyxform leaves out of the XForm).
    Raises SurveyError for anything outside the supported subset.
    """
    sheets = _Sheets(dict(rows or {}), dict(settings or {}))
    reader = _Reader(ET.fromstring(xform), sheets)
    model = reader.model()
    data = reader.index(model)  # first: it finds the root name that references are relative to
    reader.read_languages(model)
    if data is None:
        raise SurveyError([Problem(None, "The XForm has no primary instance.")])
    questions = [q for path, node in reader.walk(data) if (q := reader.question(path, node)) is not None]
    if reader.problems:
        raise SurveyError(reader.problems)
    keyword = sheets.settings.get("sms_keyword") or None
    title = reader.xml.findtext("h:head/h:title", default="", namespaces=_NS).strip()
    survey: dict[str, Any] = {"format": FORMAT, "name": title or data.get("id") or reader.root_name}
    if settings is None or sheets.settings.get("form_id") or sheets.settings.get("id_string"):
        # Without a form_id setting pyxform makes one up from the file name; that is not the author's.
        if data.get("id"):
            survey["form_id"] = data.get("id")
    if data.get("version"):
        survey["version"] = data.get("version")
    survey["default_language"] = reader.default_language
    survey["languages"] = [code for _, code in reader.languages]
    survey["settings"] = {"keyword": keyword}
    survey["questions"] = questions
    return survey


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


def _pyxform_problem(message: str) -> Problem:
    m = re.match(r"^\s*\[row : (\d+)\]\s*", message)
    row = int(m[1]) if m else None
    text = message[m.end() :] if m else message
    sheet = re.search(r"On the '(\w+)' sheet", text)
    return Problem(None, text.strip(), row=row, sheet=sheet[1] if sheet else ("survey" if row else None))


def import_xlsform(source: str | os.PathLike[str] | bytes, *, file_type: str | None = None) -> dict[str, Any]:
    """Convert an XLSForm (.xlsx or .csv; a path or the file's bytes) into a canonical survey dict.

    `file_type` ('xlsx' or 'csv') overrides detection from the file name or content. Raises SurveyError
    whose problems carry the survey sheet row of each refused or invalid question, and InputError for a
    file over the limits (413 FILE_TOO_LARGE, 422 TOO_MANY_ROWS or TOO_MANY_QUESTIONS), found before pyxform
    reads it.
    """
    data, kind = _load(source, file_type)
    sheets = _read_sheets(data, kind)  # first: refuses what is over the limits before pyxform reads it
    try:
        # only the XForm is kept: pyxform's own structures are freed before the XForm is parsed
        xform = convert(xlsform=io.BytesIO(data), file_type=f".{kind}", warnings=[]).xform
    except PyXFormError as err:
        raise SurveyError([_pyxform_problem(str(err))]) from None
    del data
    survey = xform_to_survey_dict(xform, rows=sheets.rows, settings=sheets.settings)
    del xform
    try:
        return to_dict(parse_survey(survey))
    except SurveyError as err:
        located = [
            Problem(p.question, p.message, row=sheets.row_of(p.question), sheet="survey")
            if p.question and sheets.row_of(p.question) is not None
            else p
            for p in err.problems
        ]
        raise SurveyError(located) from None
