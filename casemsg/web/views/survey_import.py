"""An XLSForm with refused rows, from the browser: upload → the refused rows → confirm.

A form whose questions can all be asked or computed by SMS is saved at once (views/surveys.py). A form
with questions a phone's hardware answers (GPS, photos, barcodes) is not: the page lists those rows, each
with its sheet row and reason, with what the survey would hold, before anything is saved; confirming saves
it without them (`services.import_survey(accept_refused=True)`, as the API's `accept_refused`). The file
and its attached CSVs wait between the two steps under CASEMSG_DATA_DIR/imports/ (mode 0600, as the case
import's), named by a random token only the uploader's session knows, and are removed once imported (or
after a day)."""

from __future__ import annotations

import io
import secrets
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.contrib import messages as flash
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from casemsg.core import files
from casemsg.core.errors import InputError
from casemsg.projects.models import Project
from casemsg.surveys import services
from casemsg.surveys.xlsform import Imported
from casemsg.web.views.common import project_or_404, staff_required

KEEP_SECONDS = 24 * 3600
_SESSION_KEY = "casemsg_survey_import"
_SUFFIX = ".survey.zip"


@dataclass
class Waiting:
    """An upload waiting for its confirmation: the form read, and where its files wait."""

    token: str
    name: str
    imported: Imported


def _dir() -> Path:
    d = Path(settings.DATA_DIR) / "imports"
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    return d


def _sweep() -> None:
    cutoff = time.time() - KEEP_SECONDS
    for f in _dir().glob(f"*{_SUFFIX}"):
        if f.stat().st_mtime < cutoff:
            f.unlink(missing_ok=True)


def wait(request: HttpRequest, project: Project, name: str, content: bytes, attachments: dict[str, bytes],
         imported: Imported) -> Waiting:  # fmt: skip
    """Keep the upload (the form and its CSVs, in one private zip) until it is confirmed."""
    _sweep()
    token = secrets.token_urlsafe(16)
    with files.open_private(_dir() / f"{token}{_SUFFIX}") as out, zipfile.ZipFile(out, "w") as archive:
        archive.writestr("form/" + name, content)
        for attached, data in attachments.items():
            archive.writestr("attachments/" + attached, data)
    request.session[_SESSION_KEY] = {"token": token, "project": project.slug, "name": name}
    return Waiting(token, name, imported)


def preview(request: HttpRequest, project: Project, waiting: Waiting, questions: list[object]) -> HttpResponse:
    """The refused rows, and what the survey would hold without them (`questions`: the survey page's rows)."""
    definition = waiting.imported.definition
    listed = definition.get("questions") or []
    ctx = {
        "project": project,
        "name": waiting.name,
        "token": waiting.token,
        "definition": definition,
        "refused": waiting.imported.refused,
        "asked": sum(1 for q in listed if q.get("type") not in ("note", "calculate", "hidden", "metadata")),
        "computed": sum(1 for q in listed if q.get("type") in ("calculate", "hidden", "metadata")),
        "questions": questions,
    }
    return render(request, "web/survey_import_preview.html", ctx)


def confirm(request: HttpRequest, project: Project) -> HttpResponse:
    pending = request.session.get(_SESSION_KEY) or {}
    token = request.POST.get("token", "")
    again = reverse("web:surveys", args=[project.slug])
    path = _dir() / f"{token}{_SUFFIX}"
    if not token or pending.get("token") != token or pending.get("project") != project.slug or not path.exists():
        flash.error(request, "That upload is no longer waiting to be imported; upload the file again.")
        return redirect(again)
    try:
        with zipfile.ZipFile(io.BytesIO(path.read_bytes())) as archive:
            stored = {n: archive.read(n) for n in archive.namelist()}
        name = next(n for n in stored if n.startswith("form/"))
        attachments = {n.removeprefix("attachments/"): v for n, v in stored.items() if n.startswith("attachments/")}
        survey, created = services.import_survey(
            project, stored[name], name.removeprefix("form/"), attachments=attachments, accept_refused=True
        )
    except InputError as e:
        flash.error(request, f"Nothing imported: {e.code}: {e.message}")
        return redirect(again)
    finally:
        path.unlink(missing_ok=True)
        request.session.pop(_SESSION_KEY, None)
    version = survey.current_version.number if survey.current_version else 1
    if created:
        flash.success(request, f"Survey “{survey.name}” created, without its refused questions.")
    else:
        flash.success(request, f"Survey “{survey.name}” now has version {version}, without its refused questions.")
    return redirect(reverse("web:survey", args=[project.slug, survey.pk]))


# The template the surveys page offers, shipped with casemsg (the repository's examples/ links to it).
EXAMPLE_FORM = Path(__file__).resolve().parents[1] / "examples" / "form.xlsx"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@staff_required
def form_template(request: HttpRequest, slug: str) -> FileResponse:
    """examples/form.xlsx as a download: an ANC follow-up XLSForm in English and Kiswahili that the import
    accepts as it is (an update form: its save_to answers go to the case the survey was sent to)."""
    project_or_404(slug)
    return FileResponse(EXAMPLE_FORM.open("rb"), as_attachment=True, filename="form.xlsx", content_type=XLSX)
