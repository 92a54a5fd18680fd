"""The Texts page (Settings → Texts): every text casemsg sends, one box per project language; and the
Translations page: every translation of the project as one file for translators (download, upload,
preview, apply).

The forms hand their changes to casemsg.consent.texts and casemsg.translations.services — the API's rules
and sentences. Editors change texts; a change that stops a text telling how to opt out needs an owner (as
the API needs the admin scope). Every change is in the settings' audit log (`texts.KEY`)."""

from __future__ import annotations

import secrets
import time
from pathlib import Path

from django.conf import settings
from django.contrib import messages as flash
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from casemsg.consent import texts
from casemsg.core import files as private_files
from casemsg.core.errors import InputError
from casemsg.projects.models import Project
from casemsg.translations import services as translations
from casemsg.web.forms_texts import TextsForm, TranslationsUploadForm
from casemsg.web.views.common import project_or_404, staff_required
from casemsg.web.views.keywords import require_role, role_allows


@staff_required
def texts_page(request: HttpRequest, slug: str) -> HttpResponse:
    project = project_or_404(slug)
    languages = texts.languages(project)
    if request.method == "POST":
        require_role(request, "editor")
        form = TextsForm(request.POST, listing=texts.listing(project), languages=languages)
        if form.is_valid():
            changes = form.changes()
            try:
                texts.update(project, changes, may_weaken=role_allows(request, "owner"))
            except InputError as exc:
                form.show_refusal(exc)
            else:
                flash.success(request, f"Texts saved ({len(changes)} changed)." if changes else "Nothing changed.")
                return redirect(reverse("web:texts", args=[project.slug]))
    else:
        form = TextsForm(listing=texts.listing(project), languages=languages)
    ctx = {"project": project, "form": form, "languages": languages, "can_edit": role_allows(request, "editor")}
    return render(request, "web/texts.html", ctx)


# --- the translations file ---------------------------------------------------------------------------------
KEEP_SECONDS = 24 * 3600
_SESSION_KEY = "casemsg_translations"


def _dir() -> Path:
    """Where an upload waits between its preview and its application (the owner's only: 0700, 0600)."""
    d = Path(settings.DATA_DIR) / "imports"
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    return d


def _waiting(token: str) -> Path:
    return _dir() / f"translations-{token}.bin"


def _sweep() -> None:
    cutoff = time.time() - KEEP_SECONDS
    for f in _dir().glob("translations-*.bin"):
        if f.stat().st_mtime < cutoff:
            f.unlink(missing_ok=True)


@staff_required
def translations_page(request: HttpRequest, slug: str) -> HttpResponse:
    """Download the file; upload one → its preview (changes and row-numbered problems) → apply."""
    project = project_or_404(slug)
    form = TranslationsUploadForm()
    ctx: dict[str, object] = {"project": project, "can_edit": role_allows(request, "editor")}
    if request.method == "POST":
        require_role(request, "editor")
        may_weaken = role_allows(request, "owner")
        if request.POST.get("apply"):
            return _apply(request, project, may_weaken)
        form = TranslationsUploadForm(request.POST, request.FILES)
        if form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                translations.check_upload_size(upload.size)
                data = upload.read()
                result = translations.preview(
                    project, translations.read(project, data, upload.name or ""), may_weaken=may_weaken
                )
            except InputError as exc:
                form.add_error("file", exc.message)
            else:
                _sweep()
                token = secrets.token_urlsafe(16)
                private_files.create_private(_waiting(token), data)
                request.session[_SESSION_KEY] = {"token": token, "project": project.pk, "name": upload.name or ""}
                ctx.update(result=result, filename=upload.name or "", token=token)
    ctx["form"] = form
    return render(request, "web/translations.html", ctx)


def _apply(request: HttpRequest, project: Project, may_weaken: bool) -> HttpResponse:
    waiting = request.session.get(_SESSION_KEY) or {}
    token = str(waiting.get("token", ""))
    path = _waiting(token) if token and token == request.POST.get("apply") else None
    if path is None or waiting.get("project") != project.pk or not path.exists():
        flash.error(request, "The uploaded file is no longer waiting: upload it again.")
        return redirect(reverse("web:translations", args=[project.slug]))
    try:
        upload = translations.read(project, path.read_bytes(), str(waiting.get("name", "")))
        result = translations.apply(project, upload, may_weaken=may_weaken)
    except InputError as exc:
        flash.error(request, f"Nothing was changed: {exc.message}")
    else:
        flash.success(request, f"Translations applied: {len(result.changes)} changed.")
    path.unlink(missing_ok=True)
    request.session.pop(_SESSION_KEY, None)
    return redirect(reverse("web:translations", args=[project.slug]))


def _download(project: Project, fmt: str) -> HttpResponse | StreamingHttpResponse:
    if fmt == "xlsx":
        resp: HttpResponse | StreamingHttpResponse = HttpResponse(
            translations.export_xlsx(project),
            content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )
    else:
        resp = StreamingHttpResponse(translations.export_csv(project), content_type="text/csv; charset=utf-8")
    resp["Content-Disposition"] = f'attachment; filename="translations-{project.slug}.{fmt}"'
    return resp


@staff_required
def translations_csv(request: HttpRequest, slug: str) -> HttpResponse | StreamingHttpResponse:
    return _download(project_or_404(slug), "csv")


@staff_required
def translations_xlsx(request: HttpRequest, slug: str) -> HttpResponse | StreamingHttpResponse:
    return _download(project_or_404(slug), "xlsx")
