"""CSV import of cases from the browser: upload → preview → confirm.

The upload is checked by `cases.importer.import_csv(dry_run=True)` — the CLI's own reader and rules —
and the page shows the first rows with each row's problems (a row that would be skipped, a phone number
that needs fixing) and what would be created and updated, before anything is written. Confirming runs
the same import for real in one transaction: it is all written or, should anything fail, none of it.
The file waits between the two steps under CASEMSG_DATA_DIR/imports/ (mode 0600: only casemsg's user reads
it), named by a random token that only the uploader's session knows, and is removed once imported (or after
a day)."""

from __future__ import annotations

import csv
import secrets
import time
from pathlib import Path

from django.conf import settings
from django.contrib import messages as flash
from django.db import transaction
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from casemsg.cases import importer
from casemsg.core import errors, files, phone
from casemsg.projects.models import Project
from casemsg.web.forms_cases import ImportForm
from casemsg.web.views.common import project_or_404, staff_required, with_query

PREVIEW_ROWS = 20
PREVIEW_PROBLEMS = 1_000  # problems of later rows listed on the preview; the rest are counted
MAX_BYTES = 10 * 1024 * 1024  # larger files: `casemsg cases import` (streams, reports progress)
KEEP_SECONDS = 24 * 3600
_SESSION_KEY = "casemsg_import"


def _dir() -> Path:
    """Where uploads wait for their confirmation: personal data, so the directory and its files are the
    owner's only (0700, 0600)."""
    d = Path(settings.DATA_DIR) / "imports"
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    return d


def _sweep() -> None:
    """Uploads that were never confirmed go after a day."""
    cutoff = time.time() - KEEP_SECONDS
    for f in _dir().glob("*.csv"):
        if f.stat().st_mtime < cutoff:
            f.unlink(missing_ok=True)


def _preview_rows(path: Path, limit: int) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header and the first `limit` data rows with the line each starts on (what the importer
    reports problems by)."""
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as fh:
        reader = csv.reader(fh)
        header: list[str] = []
        rows: list[tuple[int, list[str]]] = []
        try:
            last = 0
            for record in reader:
                start, last = last + 1, reader.line_num
                if not any(c.strip() for c in record):
                    continue
                if not header:
                    header = [c.strip() for c in record]
                    continue
                rows.append((start, record))
                if len(rows) >= limit:
                    break
        except csv.Error:
            pass  # the importer reports the unreadable row by line
    return header, rows


@staff_required
def case_import(request: HttpRequest, slug: str) -> HttpResponse:
    project = project_or_404(slug)
    if request.method == "POST" and request.POST.get("step") == "confirm":
        return _confirm(request, project)
    form = ImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        case_type = form.cleaned_data["case_type"].strip()
        if upload.size > MAX_BYTES:
            form.add_error(
                "file",
                f"{errors.FILE_TOO_LARGE}: the file is larger than {MAX_BYTES // (1024 * 1024)} MB; "
                f"use `casemsg cases import`.",
            )
        else:
            _sweep()
            token = secrets.token_urlsafe(16)
            path = _dir() / f"{token}.csv"
            with files.open_private(path) as out:
                for chunk in upload.chunks():
                    out.write(chunk)
            try:
                # stops at the first limit passed (TOO_MANY_ROWS): the preview keeps every row's problems
                result = importer.import_csv(path, project, case_type, dry_run=True, max_rows=importer.MAX_UPLOAD_ROWS)
            except importer.ImportFileError as e:
                path.unlink(missing_ok=True)
                # the messages name the stored copy: name the person's file instead
                text = str(e).replace(str(path), upload.name).replace(path.name, upload.name)
                if isinstance(e, importer.TooManyRows):
                    text = f"{e.code}: {text} Use `casemsg cases import` for a larger file."
                form.add_error("file", text)
            else:
                request.session[_SESSION_KEY] = {
                    "token": token,
                    "project": project.slug,
                    "case_type": case_type,
                    "name": upload.name,
                }
                return _preview(request, project, path, upload.name, case_type, token, result)
    return render(request, "web/case_import.html", {"project": project, "form": form})


def _preview(
    request: HttpRequest,
    project: Project,
    path: Path,
    name: str,
    case_type: str,
    token: str,
    result: importer.ImportResult,
) -> HttpResponse:
    header, rows = _preview_rows(path, PREVIEW_ROWS)
    notes: dict[int, list[tuple[str, str]]] = {}
    for e in result.errors:
        notes.setdefault(e.line, []).append(("error", e.message))
    for w in result.warnings:
        notes.setdefault(w.line, []).append(("warning", w.message))
    for f in result.fixes:
        notes.setdefault(f.line, []).append(("fixed", f.message))
    shown = {line for line, _ in rows}
    more = sorted((line, kind, msg) for line, items in notes.items() if line not in shown for kind, msg in items)
    return render(
        request,
        "web/case_import_preview.html",
        {
            "project": project,
            "name": name,
            "case_type": case_type,
            "token": token,
            "result": result,
            "header": header,
            "rows": [(line, cells, notes.get(line, [])) for line, cells in rows],
            # the problems of rows past the preview, the first PREVIEW_PROBLEMS of them and how many more
            "more": more[:PREVIEW_PROBLEMS],
            "more_hidden": max(0, len(more) - PREVIEW_PROBLEMS),
            "preview_rows": PREVIEW_ROWS,
        },
    )


def _confirm(request: HttpRequest, project: Project) -> HttpResponse:
    pending = request.session.get(_SESSION_KEY) or {}
    token = request.POST.get("token", "")
    again = reverse("web:cases_import", args=[project.slug])
    if not token or pending.get("token") != token or pending.get("project") != project.slug:
        flash.error(request, "That upload is no longer waiting to be imported; upload the file again.")
        return redirect(again)
    path = _dir() / f"{token}.csv"
    if not path.exists():
        flash.error(request, "That upload is no longer waiting to be imported; upload the file again.")
        return redirect(again)
    try:
        # One transaction: every row the preview accepted is written, or (should anything fail) none.
        with transaction.atomic():
            result = importer.import_csv(path, project, pending["case_type"], max_rows=importer.MAX_UPLOAD_ROWS)
    except importer.ImportFileError as e:
        flash.error(request, f"Nothing imported: {e}")
        return redirect(again)
    finally:
        path.unlink(missing_ok=True)
        request.session.pop(_SESSION_KEY, None)
    flash.success(
        request,
        f"Imported {pending.get('name', 'the file')}: {result.created} created, {result.updated} updated, "
        f"{result.skipped} skipped, {len(result.warnings)} with a contact problem"
        + (
            f", {len(result.fixes)} local number{'s' if len(result.fixes) != 1 else ''} stored with the project's "
            f"default country ({phone.country_name(project.default_country)})."
            if result.fixes
            else "."
        ),
    )
    return redirect(with_query(reverse("web:cases", args=[project.slug]), type=pending["case_type"]))


# The templates the import pages offer, shipped with casemsg (the repository's examples/ links to them).
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@staff_required
def case_template(request: HttpRequest, slug: str) -> FileResponse:
    """examples/cases.csv as a download: a CSV the case import accepts (the seeds' contact properties and a
    few of an ANC program's own; two local numbers the project's default country fixes)."""
    project_or_404(slug)
    return FileResponse(
        (EXAMPLES / "cases.csv").open("rb"),
        as_attachment=True,
        filename="cases.csv",
        content_type="text/csv; charset=utf-8",
    )
