"""Importing a CommCare HQ case export as it is: "Export Case Data" as Excel (.xlsx) or CSV.

CommCare's export has a row per case and a column per case property, beside its own columns: `caseid`,
`name`, `case_type`, `owner_id`, `closed`, `date_modified`, `opened_date`, `owner_name`, `number`, …
(`---` is how it writes "no value"). Nothing needs editing: `caseid` is the case id, `name`,
`case_type`, `owner_id`, `external_id`, `parent_case_id` and `closed` are the case's own fields, CommCare's
other bookkeeping columns are left out, and every other column is a case property, which the source's
mapping — chosen once, for syncs and files alike — turns into the case's properties. `preview` shows what
the file would do (each column's role, the counts, the first cases as they would be written) without
writing anything; `import_file` then writes it in batches of 1,000, each in its own transaction, as a
`file` run of the source with its log.

Bounded like every upload (docs/security.md): the .xlsx's parts are checked before openpyxl opens it
(`casemsg.core.uploads.check_zip`: 413 FILE_TOO_LARGE), its first sheet is streamed one row at a time,
and a file of more than MAX_ROWS rows or MAX_COLUMNS columns is refused (422 TOO_MANY_ROWS) before
anything is written.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from openpyxl import load_workbook

from casemsg.core import actor, errors, uploads
from casemsg.core.errors import InputError
from casemsg.sources import apply, runs
from casemsg.sources.base import Record, parse_time
from casemsg.sources.models import Source, SourceRun

MAX_ROWS = 100_000
MAX_COLUMNS = 1_000
MAX_FILE_BYTES = 50 * 1024 * 1024
BATCH = 1000
NO_VALUE = "---"
ID_COLUMNS = ("caseid", "case_id", "id")
ROLE = {
    "name": "name",
    "case_name": "name",
    "case_type": "case type",
    "owner_id": "owner",
    "external_id": "external id",
    "parent_case_id": "parent",
    "indices.parent": "parent",
    "closed": "closed",
    "date_modified": "modified",
    "last_modified_date": "modified",
    "server_last_modified_date": "modified",
}
# CommCare's own bookkeeping: not case properties.
IGNORED = frozenset(
    {
        "number",
        "owner_name",
        "opened_by_user_id",
        "opened_by_username",
        "opened_date",
        "opened_on",
        "closed_date",
        "closed_on",
        "closed_by_user_id",
        "closed_by_username",
        "last_modified_by_user_id",
        "last_modified_by_user_username",
        "modified_on",
        "server_modified_on",
        "state",
        "domain",
        "xform_ids",
    }
)
_TRUE = {"true", "1", "yes", "y"}


def _too_many(message: str) -> InputError:
    return InputError(errors.TOO_MANY_ROWS, message, 422)


def _is_xlsx(filename: str, data: bytes) -> bool:
    return filename.lower().endswith(".xlsx") or data[:4] == b"PK\x03\x04"


def _sheet_limit(name: str) -> int:
    return 40 * 1024 * 1024 if name.startswith("xl/worksheets/") or name == "xl/sharedStrings.xml" else 4 * 1024 * 1024


def _rows(filename: str, data: bytes) -> Iterator[list[Any]]:
    """The file's rows (the header first), one at a time."""
    uploads.check_size(len(data), MAX_FILE_BYTES, "The case export")
    if _is_xlsx(filename, data):
        try:
            uploads.check_zip(
                data,
                what="The case export",
                max_members=500,
                max_member_bytes=_sheet_limit,
                max_total_bytes=60 * 1024 * 1024,
                max_ratio=200,
            )
            book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        except InputError:
            raise
        except (zipfile.BadZipFile, zipfile.LargeZipFile, KeyError, ValueError, OSError, EOFError) as exc:
            raise InputError(
                errors.INVALID_CASE_EXPORT, f"The file could not be read as an .xlsx workbook: {exc}"
            ) from None
        try:
            sheet = book.worksheets[0]
            sheet.reset_dimensions()
            for values in sheet.iter_rows(values_only=True):
                yield list(values)
        finally:
            book.close()
        return
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(errors.INVALID_CASE_EXPORT, "The CSV file is not UTF-8 (CommCare exports are).") from None
    try:
        yield from csv.reader(io.StringIO(text, newline=""))
    except csv.Error as exc:
        raise InputError(errors.INVALID_CASE_EXPORT, f"The CSV file could not be read: {exc}") from None


def _cell(value: Any) -> Any:
    if isinstance(value, str):
        value = value.strip()
        return None if value in ("", NO_VALUE) else value
    return value


@dataclass
class Columns:
    header: list[str]
    id_index: int
    roles: dict[str, str] = field(default_factory=dict)  # column → "case id", "name", …, "property", "ignored"


def _columns(header: list[Any]) -> Columns:
    names = [str(h).strip() if h is not None else "" for h in header]
    while names and not names[-1]:
        names.pop()
    if len(names) > MAX_COLUMNS:
        raise _too_many(f"The file has {len(names):,} columns; at most {MAX_COLUMNS:,} are imported.")
    lowered = [n.lower() for n in names]
    id_index = next((lowered.index(c) for c in ID_COLUMNS if c in lowered), -1)
    if id_index < 0:
        raise InputError(
            errors.INVALID_CASE_EXPORT,
            "The file has no caseid column: export it from CommCare HQ with Export Case Data, as it is.",
        )
    roles: dict[str, str] = {}
    for i, (name, low) in enumerate(zip(names, lowered, strict=True)):
        if not name:
            continue
        if i == id_index:
            roles[name] = "case id"
        elif low in ROLE:
            roles[name] = ROLE[low]
        elif low in IGNORED or low.startswith("info."):
            roles[name] = "ignored"
        else:
            roles[name] = "property"
    return Columns(names, id_index, roles)


def _record(cols: Columns, values: list[Any], line: int) -> Record | None:
    cells = {cols.header[i]: _cell(v) for i, v in enumerate(values[: len(cols.header)]) if cols.header[i]}
    if all(v is None for v in cells.values()):
        return None
    raw_id = cells.get(cols.header[cols.id_index])
    rec = Record(id=str(raw_id) if raw_id is not None else "")
    if not rec.id:
        rec.id, rec.problem = f"line {line}", (errors.INVALID_CASE_ID, f"Line {line} has no caseid.")
        return rec
    for name, value in cells.items():
        role = cols.roles.get(name)
        if role == "name":
            rec.name = None if value is None else str(value)
        elif role == "case type":
            rec.case_type = "" if value is None else str(value)
        elif role == "owner":
            rec.owner_id = None if value is None else str(value)
        elif role == "external id":
            rec.external_id = None if value is None else str(value)
        elif role == "parent":
            rec.parent_id = None if value is None else str(value)
        elif role == "closed":
            rec.closed = None if value is None else (value is True or str(value).strip().lower() in _TRUE)
        elif role == "modified":
            rec.modified = parse_time(value) if isinstance(value, str) else None
        elif role == "property" and value is not None:
            rec.fields[name] = value
    return rec


def _batches(filename: str, data: bytes) -> tuple[Columns, Iterator[list[Record]]]:
    rows = _rows(filename, data)
    header = next(rows, None)
    if header is None:
        raise InputError(errors.INVALID_CASE_EXPORT, "The file is empty.")
    cols = _columns(header)

    def batches() -> Iterator[list[Record]]:
        batch: list[Record] = []
        count = 0
        for line, values in enumerate(rows, start=2):
            rec = _record(cols, list(values), line)
            if rec is None:
                continue
            count += 1
            if count > MAX_ROWS:
                raise _too_many(f"The file has more than {MAX_ROWS:,} cases; import it in parts.")
            batch.append(rec)
            if len(batch) >= BATCH:
                yield batch
                batch = []
        if batch:
            yield batch

    return cols, batches()


@dataclass
class Preview:
    columns: dict[str, str]
    rows: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    sample: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)


def preview(source: Source, filename: str, data: bytes, sample: int = 10) -> Preview:
    """What importing the file would do; writes nothing (the whole file is read and counted)."""
    cols, batches = _batches(filename, data)
    plan = apply.plan_for(source)
    out = Preview(columns=cols.roles, counts=dict.fromkeys(apply.OUTCOMES, 0))
    for batch in batches:
        outcome = apply.apply_records(source, batch, write=False, plan=plan)
        out.rows += len(batch)
        for k, v in outcome.as_counts().items():
            out.counts[k] += v
        out.skipped += outcome.log[: max(0, 50 - len(out.skipped))]
        for rec in batch:
            if len(out.sample) >= sample:
                break
            change = outcome.changes.get(rec.id)
            out.sample.append(
                {
                    "record": rec.id,
                    "outcome": outcome.outcomes.get(rec.id, ""),
                    "name": change.name if change else None,
                    "case_type": change.case_type if change else None,
                    "properties": dict(change.properties) if change else {},
                }
            )
    return out


def import_file(source: Source, filename: str, data: bytes, *, trigger: str = "file") -> SourceRun:
    """Import the file (counted first: a file over the limits writes nothing); its run, finished."""
    _columns_, counting = _batches(filename, data)
    total = sum(len(b) for b in counting)  # reads it all once: limits refuse before anything is written
    _columns_, batches = _batches(filename, data)
    plan = apply.plan_for(source)
    run = runs.start(source, SourceRun.FILE, trigger)
    run.total = total
    run.source = source
    runs.note(run, [{"record": "", "code": "", "reason": f"File {filename[:200]}: {total:,} cases."}])
    run.save()
    with actor.acting_as("import", runs.who(source)):
        for number, batch in enumerate(batches, start=1):
            with transaction.atomic():
                outcome = apply.apply_records(source, batch, page=number, plan=plan)
                runs.add_page(run, outcome, records=len(batch), cursor=None)
    with transaction.atomic():
        runs.finish(run, SourceRun.SUCCEEDED)
    return run
