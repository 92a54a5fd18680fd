"""A project's translations as one file for translators: export (CSV or .xlsx), read an upload back
(bounded), preview what it changes, apply it — all or nothing, every problem named with its row number.

The file: a header row `type, id, name, field, source, <one column per language>` (the project's
languages, English too), then one row per text (`rows`). `name` and `source` are there for the translator
and are not read back; a language column left out of the file changes nothing in that language; an empty
cell removes that translation (the fallback applies again: the project's default language, the untranslated
text, casemsg's English). Only rows whose texts differ from the project's change anything.

Limits (docs/security.md): a file of at most 5 MB; an .xlsx's parts checked before openpyxl opens it
(`core.uploads.check_zip`), its first sheet streamed; at most 20,000 rows and 60 columns, a cell at most
1,600 characters.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Final

from django.db import transaction
from openpyxl import load_workbook

from casemsg.core import errors, spreadsheet, uploads
from casemsg.core.errors import InputError
from casemsg.projects.models import Project
from casemsg.translations import rows as kinds
from casemsg.translations.rows import Change, Row, RowProblem

MAX_BYTES: Final = 5 << 20
MAX_ROWS: Final = 20_000
MAX_COLUMNS: Final = 60
MAX_CELL: Final = 1600
MAX_PROBLEMS: Final = 200  # listed; the rest counted
FIXED: Final = ("type", "id", "name", "field", "source")


def header(project: Project) -> list[str]:
    return [*FIXED, *kinds.languages(project)]


def _cells(project: Project, r: Row) -> list[str]:
    return [r.type, r.id, r.name, r.field, r.source, *(r.texts.get(lang, "") for lang in kinds.languages(project))]


def export_csv(project: Project) -> Iterator[str]:
    """The file as CSV lines (streamed; cells made safe for spreadsheets)."""
    return spreadsheet.csv_lines(header(project), (_cells(project, r) for r in kinds.all_rows(project)))


def export_xlsx(project: Project) -> bytes:
    return spreadsheet.xlsx_bytes(
        header(project), (_cells(project, r) for r in kinds.all_rows(project)), title="translations"
    )


# --- reading an upload ---------------------------------------------------------------------------------
def _invalid(sentence: str) -> InputError:
    return InputError(errors.INVALID_TRANSLATIONS_FILE, sentence)


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # an id a spreadsheet turned into a number
    return spreadsheet.read_cell(value)


def _xlsx_rows(data: bytes) -> Iterator[list[str]]:
    try:
        uploads.check_zip(
            data,
            what="The translations file",
            max_members=200,
            max_member_bytes=lambda name: (10 << 20) if name.startswith("xl/worksheets/") else (2 << 20),
            max_total_bytes=20 << 20,
            max_ratio=100,
        )
    except zipfile.BadZipFile as exc:
        raise _invalid("The file is not an .xlsx workbook (nor a CSV file).") from exc
    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 — whatever openpyxl raised: the file is not a workbook it reads
        raise _invalid(f"The .xlsx workbook could not be read: {exc}") from exc
    try:
        sheet = book.worksheets[0]
        for values in sheet.iter_rows(values_only=True, max_col=MAX_COLUMNS + 1):
            yield [_text(v) for v in values]
    finally:
        book.close()


def _csv_rows(data: bytes) -> Iterator[list[str]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _invalid(f"The CSV file is not UTF-8 text (byte {exc.start + 1} is not).") from exc
    try:
        for values in csv.reader(io.StringIO(text)):
            yield [_text(v) for v in values]
    except csv.Error as exc:
        raise _invalid(f"The CSV file could not be read: {exc}.") from exc


@dataclass
class Upload:
    """A file read back: its language columns and its rows, each (row number, {column: cell})."""

    languages: list[str]
    rows: list[tuple[int, dict[str, str]]]


def check_upload_size(size: int | None) -> None:
    """Refuse (413 FILE_TOO_LARGE) a file over the limit before reading it."""
    uploads.check_size(size, MAX_BYTES, "The translations file")


def read(project: Project, data: bytes, filename: str = "") -> Upload:
    """Read an upload (CSV, or .xlsx by its name or its zip signature), bounded. A file that cannot be read,
    or a header that is not a translations file's, is refused at once (413 FILE_TOO_LARGE, 422
    TOO_MANY_ROWS, 422 INVALID_TRANSLATIONS_FILE); problems of single rows come from `preview`."""
    check_upload_size(len(data))
    is_xlsx = filename.lower().endswith(".xlsx") or data[:4] == b"PK\x03\x04"
    lines = _xlsx_rows(data) if is_xlsx else _csv_rows(data)
    head = [c.strip() for c in next(lines, [])]
    while head and not head[-1]:
        head.pop()
    if not head:
        raise _invalid("The file is empty: its first row names the columns (type, id, name, field, source, …).")
    if len(head) > MAX_COLUMNS:
        raise InputError(errors.TOO_MANY_ROWS, f"The file has {len(head)} columns; at most {MAX_COLUMNS}.")
    missing = [c for c in ("type", "id", "field") if c not in head]
    if missing:
        raise _invalid(f"Row 1: the column {missing[0]} is missing (the columns: {', '.join(header(project))}).")
    known = kinds.languages(project)
    langs = [c for c in head if c not in FIXED]
    for c in langs:
        if c not in known:
            raise _invalid(
                f"Row 1: the column '{c}' is not one of the project's languages ({', '.join(known)}); add the "
                "language in the settings first, or remove the column."
            )
    if len(set(head)) != len(head):
        raise _invalid("Row 1: a column is named twice.")
    out: list[tuple[int, dict[str, str]]] = []
    for number, values in enumerate(lines, start=2):
        if not any(v.strip() for v in values):
            continue
        if len(out) >= MAX_ROWS:
            raise InputError(errors.TOO_MANY_ROWS, f"The file has more than {MAX_ROWS:,} rows; split it.")
        cells = dict(zip(head, values, strict=False))
        for c in langs:
            cells.setdefault(c, "")
        out.append((number, cells))
    return Upload(langs, out)


# --- what it changes, and applying it ---------------------------------------------------------------------
@dataclass(frozen=True)
class Changed:
    """One translation the file changes: `after` None removes it."""

    row: int
    type: str
    id: str
    name: str
    field: str
    language: str
    before: str | None
    after: str | None


@dataclass
class Result:
    changes: list[Changed] = field(default_factory=list)
    problems: list[tuple[int, str]] = field(default_factory=list)  # (row number, sentence), by row
    more_problems: int = 0  # beyond MAX_PROBLEMS
    applied: bool = False

    def add(self, row: int, sentence: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append((row, sentence))
        else:
            self.more_problems += 1

    def summary(self) -> str:
        shown = "; ".join(f"row {n}: {s}" for n, s in self.problems[:10])
        more = len(self.problems) - 10 + self.more_problems
        return f"{shown}{f'; and {more} more' if more > 0 else ''}."


def _compare(project: Project, upload: Upload, result: Result) -> dict[tuple[str, str], list[Change]]:
    """The file's rows against the project's: the changes by object ((type, id); texts are one object per
    key), and every row that names nothing as a problem."""
    current = {(r.type, r.id, r.field): r for r in kinds.all_rows(project)}
    seen: dict[tuple[str, str, str], int] = {}
    by_object: dict[tuple[str, str], list[Change]] = defaultdict(list)
    for number, cells in upload.rows:
        kind, pk, fld = cells.get("type", "").strip(), cells.get("id", "").strip(), cells.get("field", "").strip()
        if kind not in kinds.TYPES:
            result.add(number, f"type {kind!r} is not one of {', '.join(kinds.TYPES)}.")
            continue
        key = (kind, pk, fld)
        if key in seen:
            result.add(number, f"the same {kind} {pk} {fld} as row {seen[key]}.".replace("  ", " "))
            continue
        seen[key] = number
        row = current.get(key)
        if row is None:
            result.add(number, f"the project has no {kind} {pk!r}{f' with a field {fld!r}' if fld else ''}.")
            continue
        texts: dict[str, str | None] = {}
        for lang in upload.languages:
            cell = cells.get(lang, "").strip()
            if len(cell) > MAX_CELL:
                result.add(number, f"the {lang} text has {len(cell)} characters; at most {MAX_CELL}.")
                break
            before = row.texts.get(lang)
            after = cell or None
            if (before or None) != after:
                texts[lang] = after
                result.changes.append(Changed(number, kind, pk, row.name, fld, lang, before, after))
        if texts:
            by_object[(kind, pk)].append((number, fld, texts))
    return by_object


def _write(project: Project, by_object: dict[tuple[str, str], list[Change]], result: Result, may_weaken: bool) -> None:
    """Write each object's changes through its area's services, each in a savepoint: a refusal is a problem
    of the object's rows, and the others are still checked."""
    for (kind, pk), changes in by_object.items():
        first = changes[0][0]
        try:
            with transaction.atomic():
                if kind == "text":
                    kinds.apply_texts(project, {pk: changes[0]}, may_weaken=may_weaken)
                elif kind == "keyword":
                    kinds.apply_keyword(project, kinds.keyword(project, pk, first), changes)
                elif kind in ("broadcast", "alert"):
                    kinds.apply_content(kinds.owner(project, kind, pk, first), changes)
                else:
                    kinds.apply_survey(project, kinds.survey(project, pk, first), changes)
        except RowProblem as exc:
            result.add(exc.row, exc.sentence)
        except InputError as exc:
            rows = [n for n, _f, _t in changes]
            where = "" if len(rows) == 1 else f" (rows {', '.join(map(str, rows))})"
            result.add(first, f"{exc.code}: {exc.message}{where}")
    result.problems.sort()


class _Rollback(Exception):
    pass


def preview(project: Project, upload: Upload, *, may_weaken: bool) -> Result:
    """What the file would change, and every problem: each change is made and checked as it would be, then
    all of it is rolled back."""
    result = Result()
    try:
        with transaction.atomic():
            by_object = _compare(project, upload, result)
            _write(project, by_object, result, may_weaken)
            raise _Rollback
    except _Rollback:
        pass
    project.refresh_from_db(fields=["texts"])
    return result


def apply(project: Project, upload: Upload, *, may_weaken: bool) -> Result:
    """Apply the file, all or nothing: with any problem nothing is changed and the answer is 422
    INVALID_TRANSLATIONS_FILE listing them by row (the first ten in its sentence)."""
    result = Result()
    try:
        with transaction.atomic():
            by_object = _compare(project, upload, result)
            _write(project, by_object, result, may_weaken)
            if result.problems:
                raise _Rollback
    except _Rollback:
        project.refresh_from_db(fields=["texts"])
        raise InputError(errors.INVALID_TRANSLATIONS_FILE, result.summary()) from None
    project.refresh_from_db(fields=["texts"])
    result.applied = True
    return result
