"""CSV import of cases: `casemsg cases import FILE.csv --project P --case-type T`.

The header names the columns. `case_id`, `name`, `external_id`, `owner_id` and `parent_id` are the case's
own fields; every other column is a case property (an empty cell leaves it as it is). A row whose
case_id exists in the project updates that case; any other row creates one.

Rows go through `cases.services.bulk_upsert` (the only write path, so the phone registry stays in sync)
in batches of 1,000, one transaction each. A structurally bad row (wrong number of values, an over-long
value, a case_id repeated in the file, a value under a column with an unusable name, ...) is reported by
line and skipped; the good rows are imported. A batch that fails as a whole is retried row by row, so
one bad row costs only itself. A bad *contact* property (an invalid phone number) is not a bad row: as
everywhere else the case is saved and its contact status explains the problem; the import mentions it
as a warning.

The work is bounded, whatever the file (docs/security.md): at most MAX_ROWS data rows (MAX_UPLOAD_ROWS
from the import page; the command's `--max-rows` changes it), MAX_COLUMNS columns, and MAX_ROW_BYTES per
row (a physical line or a quoted value spanning lines); over a limit the file is refused with TOO_MANY_ROWS
as soon as it is passed, and nothing is written: a real import counts the rows first, in one streaming pass.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from django.db import DatabaseError, transaction

from casemsg.cases import services
from casemsg.cases.models import Case
from casemsg.core import actor, errors, phone
from casemsg.core.errors import InputError
from casemsg.projects.models import Project

FIELD_COLUMNS = ("case_id", "name", "external_id", "owner_id", "parent_id")
BATCH_SIZE = services.MAX_BULK
# Contact properties whose spelling matters: a column that differs only in letter case is almost
# certainly meant to be one of them, and would otherwise be silently stored under the wrong name.
_KNOWN_COLUMNS = (
    *FIELD_COLUMNS,
    "contact_phone_number",
    "contact_phone_number_is_verified",
    "commcare_email_address",
    "time_zone",
    "language_code",
    "contact_backend_id",
)
# csv's default cell limit (131,072 characters) is kept: a longer cell is reported as a bad row.
_CELL_LIMIT = csv.field_size_limit()
# Limits (TOO_MANY_ROWS): rows by default (the command's --max-rows), from the import page (the web
# process keeps every row's problems for the preview), columns, and bytes of one row.
MAX_ROWS = 1_000_000
MAX_UPLOAD_ROWS = 100_000
MAX_COLUMNS = 1_000
MAX_ROW_BYTES = 1 << 20


class ImportFileError(Exception):
    """The file as a whole cannot be imported (missing, unreadable, no usable header)."""

    code = errors.INVALID_VALUE


class TooManyRows(ImportFileError):
    """The file is over a limit: too many rows or columns, or a row over MAX_ROW_BYTES."""

    code = errors.TOO_MANY_ROWS


class _RowTooLong(Exception):
    def __init__(self, line: int):
        super().__init__(line)
        self.line = line


@dataclass
class RowNote:
    """A skipped row (an error), an imported row with a contact problem (a warning), or an imported row whose
    local number was stored with the project's default country (a fix)."""

    line: int
    message: str

    def as_dict(self) -> dict[str, object]:
        return {"line": self.line, "message": self.message}


@dataclass
class ImportResult:
    file: str
    project: str
    case_type: str
    rows: int = 0  # data rows read (blank lines and the header not counted)
    created: int = 0
    updated: int = 0
    errors: list[RowNote] = field(default_factory=list)  # skipped rows
    warnings: list[RowNote] = field(default_factory=list)  # imported rows whose contact has a problem
    # imported rows whose local number was read with the project's default country ("0711 222 333 → …")
    fixes: list[RowNote] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # remarks about the header

    @property
    def skipped(self) -> int:
        return len(self.errors)

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "project": self.project,
            "case_type": self.case_type,
            "rows": self.rows,
            "imported": self.created,
            "updated": self.updated,
            "skipped": self.skipped,
            "errors": [e.as_dict() for e in sorted(self.errors, key=lambda n: n.line)],
            "warnings": [w.as_dict() for w in sorted(self.warnings, key=lambda n: n.line)],
            "fixed": [f.as_dict() for f in sorted(self.fixes, key=lambda n: n.line)],
            "notes": self.notes,
        }


@dataclass
class _Row:
    line: int
    change: services.CaseChange


class _Lines:
    """A binary file's lines decoded one at a time, so that text which is not in the file's encoding
    spoils only its own line (reported by number) instead of stopping the import mid-file."""

    def __init__(self, fh: BinaryIO, encoding: str):
        self.fh = fh
        self.encoding = encoding
        self.bytes_read = 0
        self.record_bytes = 0  # of the CSV record being read (start_record sets it back to 0)
        self.undecodable: set[int] = set()

    def start_record(self) -> None:
        """The reader starts a CSV record: only its own lines' bytes and decoding problems count now."""
        self.record_bytes = 0
        self.undecodable.clear()

    def __iter__(self) -> Iterator[str]:
        number = 0
        while raw := self.fh.readline(MAX_ROW_BYTES + 1):  # never more than a row's limit in memory
            number += 1
            self.bytes_read += len(raw)
            self.record_bytes += len(raw)
            if self.record_bytes > MAX_ROW_BYTES:
                raise _RowTooLong(number)
            try:
                yield raw.decode(self.encoding)
            except UnicodeDecodeError:
                self.undecodable.add(number)
                yield raw.decode(self.encoding, errors="replace")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return line if line.endswith(".") else line + "."


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


class _Importer:
    def __init__(
        self,
        project: Project,
        case_type: str,
        result: ImportResult,
        on_note: Callable[[str, RowNote], None] | None,
        dry_run: bool = False,
    ):
        self.dry_run = dry_run
        self.project = project
        self.case_type = case_type
        self.result = result
        self.on_note = on_note
        self.pending: list[_Row] = []
        self.seen: dict[str, int] = {}  # case_id -> the line it was first read on

    # --- reporting ---------------------------------------------------------------------------------

    def error(self, line: int, message: str) -> None:
        note = RowNote(line, message)
        self.result.errors.append(note)
        if self.on_note:
            self.on_note("error", note)

    def fixed(self, line: int, message: str) -> None:
        note = RowNote(line, message)
        self.result.fixes.append(note)
        if self.on_note:
            self.on_note("fixed", note)

    def warning(self, line: int, message: str) -> None:
        note = RowNote(line, message)
        self.result.warnings.append(note)
        if self.on_note:
            self.on_note("warning", note)

    # --- writing -----------------------------------------------------------------------------------

    def flush(self) -> None:
        rows, self.pending = self.pending, []
        if not rows:
            return
        try:
            self._write(rows)
        except Exception:  # whatever failed the batch, each row gets its own verdict below
            # Something in the batch (a value the checks above let through, a case created meanwhile by
            # someone else, ...) made the whole transaction fail: find the culprits one row at a time.
            for row in rows:
                try:
                    self._write([row])
                except InputError as exc:
                    self.error(row.line, exc.message)
                except DatabaseError as exc:
                    self.error(row.line, f"The database refused this row: {_first_line(exc)}")
                except Exception as exc:  # one row's failure must not abort the import
                    self.error(row.line, f"The row could not be saved: {type(exc).__name__}: {_first_line(exc)}")

    def _write(self, rows: list[_Row]) -> None:
        """One transaction: the case-type check and the upsert see the same cases."""
        mismatched: list[tuple[_Row, str]] = []
        with transaction.atomic():
            ids = [r.change.case_id for r in rows if r.change.case_id]
            types = (
                dict(Case.objects.filter(project=self.project, case_id__in=ids).values_list("case_id", "case_type"))
                if ids
                else {}
            )
            good: list[_Row] = []
            for r in rows:
                existing_type = types.get(r.change.case_id) if r.change.case_id else None
                if existing_type is not None and existing_type != self.case_type:
                    mismatched.append((r, existing_type))
                else:
                    good.append(r)
            if good and not self.dry_run:
                # the consent ledger names an import as its source (and who ran it, when known)
                with actor.acting_as("import", actor.current().who or "command line"):
                    services.bulk_upsert(self.project, [r.change for r in good])
        # Reported only once the transaction has committed: a failed batch is retried row by row and
        # would otherwise report these twice.
        for r, existing_type in mismatched:
            self.error(
                r.line,
                f"Case '{r.change.case_id}' already exists with case type '{existing_type}', "
                f"not '{self.case_type}'; import it with --case-type {existing_type}.",
            )
        for r in good:
            if r.change.case_id in types:
                self.result.updated += 1
            else:
                self.result.created += 1
            self._contact_warnings(r)

    def _contact_warnings(self, row: _Row) -> None:
        value = row.change.properties.get("contact_phone_number")
        if value is None or phone.normalized_number(value) is not None:
            return
        local = phone.local_fix(value, self.project.default_country)
        if local is not None:  # cases.services stored it as the default country's number: say so
            self.fixed(row.line, local.describe())
            return
        chk = phone.check(value, auto_fix=self.project.auto_normalize_phone_numbers)
        if chk.ok:  # the project's auto-normalize setting stored the corrected number
            return
        fix = f" {chk.fix}" if chk.fix else ""
        self.warning(
            row.line,
            f"The case was imported, but it cannot be texted until its contact_phone_number is fixed "
            f"({chk.error}): {chk.message}{fix}",
        )

    # --- reading -----------------------------------------------------------------------------------

    def add(self, line: int, change: services.CaseChange) -> bool:
        """Queue a good row; returns True when that completed (and wrote) a batch."""
        self.pending.append(_Row(line, change))
        if len(self.pending) >= BATCH_SIZE:
            self.flush()
            return True
        return False


def _read_header(reader: Iterator[list[str]], lines: _Lines, name: str) -> list[str]:
    while True:
        lines.start_record()
        try:
            record = next(reader)
        except StopIteration:
            raise ImportFileError(
                f"{name} is empty: the first line must be a header naming the columns "
                f"(case_id, name, ... and the property names)."
            ) from None
        except csv.Error as exc:
            raise ImportFileError(f"The header of {name} cannot be read as CSV ({exc}).") from exc
        if lines.undecodable:
            raise ImportFileError(
                f"The header of {name} is not {lines.encoding} text; save the file as "
                f"'CSV UTF-8' or pass the right --encoding."
            )
        if any(cell.strip() for cell in record):
            return [cell.strip() for cell in record]


def _check_header(header: list[str], name: str, result: ImportResult) -> dict[int, str]:
    """Problems of the header's columns: {column index: why a value there cannot be stored}.

    Duplicate names make every row ambiguous, so they stop the import; a column without a usable name
    only spoils the rows that put a value under it."""
    if len(header) > MAX_COLUMNS:
        raise TooManyRows(f"The header of {name} has {len(header):,} columns; the limit is {MAX_COLUMNS:,}.")
    counts: dict[str, int] = {}
    for col in header:
        if col:
            counts[col] = counts.get(col, 0) + 1
    dupes = [c for c, n in counts.items() if n > 1]
    if dupes:
        raise ImportFileError(
            f"The header of {name} names {', '.join(repr(d) for d in dupes)} more than once; "
            f"each column must have its own name."
        )
    unusable: dict[int, str] = {}
    for i, col in enumerate(header):
        if not col:
            unusable[i] = f"column {i + 1} has no name in the header, so its value cannot be stored"
            continue
        if col in FIELD_COLUMNS:
            continue
        try:
            services.validate(services.CaseChange(properties={col: ""}), creating=False)
        except InputError as exc:
            unusable[i] = f"column {i + 1} cannot be stored as a property ({exc.message})"
            continue
        if col in ("case_type", "closed"):
            what = "the case type comes from --case-type" if col == "case_type" else "cases stay open or closed"
            result.notes.append(f"Column '{col}' is stored as a property named '{col}'; {what}.")
        for known in _KNOWN_COLUMNS:
            if col != known and col.lower() == known:
                result.notes.append(
                    f"Column '{col}' is stored as a property named '{col}'; property names are "
                    f"case-sensitive, so it is not read as '{known}'."
                )
    return unusable


def _row_too_long(name: str, line: int) -> TooManyRows:
    return TooManyRows(
        f"The row on line {line:,} of {name} is longer than {MAX_ROW_BYTES // (1 << 20)} MB "
        f"(a double quote that is never closed makes the rest of the file one value)."
    )


def _too_many_rows(name: str, limit: int) -> TooManyRows:
    return TooManyRows(f"{name} has more than {limit:,} rows; the limit is {limit:,}. Split it into smaller files.")


def _count_rows(path: Path, encoding: str, limit: int) -> None:
    """One streaming pass before a real import: TooManyRows for a file over a limit, so nothing is written.
    Counts as the import does (data rows that are not blank, and rows that cannot be read as CSV)."""
    with path.open("rb") as fh:
        lines = _Lines(fh, encoding)
        reader = csv.reader(iter(lines))
        rows = -1  # the header is the first row that is not blank
        while True:
            lines.start_record()
            try:
                record = next(reader)
            except StopIteration:
                return
            except csv.Error:
                rows += 1
            except _RowTooLong as exc:
                raise _row_too_long(path.name, exc.line) from None
            else:
                if any(cell.strip() for cell in record):
                    rows += 1
            if rows > limit:
                raise _too_many_rows(path.name, limit)


def import_csv(
    path: str | os.PathLike[str],
    project: Project,
    case_type: str,
    *,
    encoding: str = "utf-8-sig",
    on_progress: Callable[[int, int, int], None] | None = None,
    on_note: Callable[[str, RowNote], None] | None = None,
    dry_run: bool = False,
    max_rows: int = MAX_ROWS,
) -> ImportResult:
    """Import the cases of one CSV file into `project`; see the module docstring for the rules.

    `on_progress(bytes_read, total_bytes, rows_read)` is called after every batch; `on_note(kind,
    note)` as soon as a row is skipped ("error") or imported with a contact problem ("warning").
    Raises ImportFileError when the file as a whole cannot be imported, TooManyRows (a subclass) when it is
    over `max_rows` data rows, MAX_COLUMNS columns or MAX_ROW_BYTES in a row. `dry_run` reads and checks
    every row and counts what would be created and updated, writing nothing (the import page's preview);
    it stops at the first limit passed. A real import counts the rows first, so it writes nothing then.
    """
    p = Path(path)
    result = ImportResult(file=str(path), project=project.slug, case_type=case_type)
    if not case_type.strip():
        raise ImportFileError("The case type must not be blank.")
    try:
        services.validate(services.CaseChange(case_type=case_type), creating=True)
    except InputError as exc:
        raise ImportFileError(f"The case type is not usable: {exc.message}") from exc
    try:
        fh = p.open("rb")
        total = os.fstat(fh.fileno()).st_size
    except FileNotFoundError:
        raise ImportFileError(f"{path}: no such file.") from None
    except IsADirectoryError:
        raise ImportFileError(f"{path} is a directory, not a CSV file.") from None
    except OSError as exc:
        raise ImportFileError(f"{path} cannot be read: {exc.strerror or exc}.") from None
    try:
        "".encode(encoding)
    except LookupError:
        fh.close()
        raise ImportFileError(f"Unknown encoding '{encoding}'.") from None

    with fh:
        if not dry_run:
            _count_rows(p, encoding, max_rows)
        lines = _Lines(fh, encoding)
        reader = csv.reader(iter(lines))
        try:
            header = _read_header(reader, lines, p.name)
        except OSError as exc:
            raise ImportFileError(f"{path} cannot be read: {exc.strerror or exc}.") from None
        except _RowTooLong as exc:
            raise _row_too_long(p.name, exc.line) from None
        unusable = _check_header(header, p.name, result)
        width = len(header)
        field_index = {col: i for i, col in enumerate(header) if col in FIELD_COLUMNS}
        property_index = [i for i, col in enumerate(header) if col not in FIELD_COLUMNS and i not in unusable]
        text_name = "UTF-8" if encoding.lower().replace("_", "-") in ("utf-8-sig", "utf-8", "utf8") else encoding
        imp = _Importer(project, case_type, result, on_note, dry_run)
        last_line = reader.line_num
        while True:
            start = last_line + 1
            lines.start_record()
            try:
                record = next(reader)
            except StopIteration:
                break
            except _RowTooLong as exc:
                raise _row_too_long(p.name, exc.line) from None
            except csv.Error as exc:
                last_line = reader.line_num
                result.rows += 1
                if result.rows > max_rows:
                    raise _too_many_rows(p.name, max_rows) from None
                reason = str(exc)
                if "field larger than field limit" in reason:
                    reason = f"a value is longer than {_CELL_LIMIT:,} characters"
                imp.error(start, f"The row cannot be read as CSV: {reason}.")
                continue
            except OSError as exc:
                raise ImportFileError(f"{path} cannot be read: {exc.strerror or exc}.") from None
            end, last_line = reader.line_num, reader.line_num
            cells = [c.strip() for c in record]
            if not any(cells):
                continue  # blank lines and all-empty rows (spreadsheets export them) are not cases
            result.rows += 1
            if result.rows > max_rows:  # checked while streaming: nothing more is read
                raise _too_many_rows(p.name, max_rows)
            bad_lines = sorted(n for n in lines.undecodable if start <= n <= end)
            if bad_lines:
                imp.error(
                    start,
                    f"Line {bad_lines[0]} is not {text_name} text; save the file as 'CSV UTF-8' "
                    f"or pass the right --encoding.",
                )
                continue
            if len(cells) != width:
                msg = f"The row has {_plural(len(cells), 'value')} but the header has {_plural(width, 'column')}"
                if end > start:
                    msg += f"; it runs from line {start} to line {end}, so a double quote is probably not closed"
                elif len(cells) > width:
                    msg += "; a value that contains a comma must be put in double quotes"
                imp.error(start, msg + ".")
                continue
            spoiled = [why for i, why in unusable.items() if cells[i]]
            if spoiled:
                imp.error(start, f"The row has a value in {spoiled[0]}.")
                continue
            fields: dict[str, str | None] = {col: cells[i] or None for col, i in field_index.items()}
            change = services.CaseChange(
                case_type=case_type,
                properties={header[i]: cells[i] for i in property_index if cells[i]},
                **fields,  # type: ignore[arg-type]  # only the text fields: field_index holds no `closed`
            )
            try:
                services.validate(change, creating=True)
            except InputError as exc:
                imp.error(start, exc.message)
                continue
            if change.case_id:
                first = imp.seen.get(change.case_id)
                if first is not None:
                    imp.error(
                        start,
                        f"The case_id '{change.case_id}' already appeared on line {first} (that row is kept); "
                        f"a case may appear only once in a file.",
                    )
                    continue
                imp.seen[change.case_id] = start
            if imp.add(start, change) and on_progress:
                on_progress(lines.bytes_read, total, result.rows)
        imp.flush()
        if on_progress:
            on_progress(lines.bytes_read, total, result.rows)
    return result
