"""Case sources (docs/sources.md): the list, a new source (pick the type, then its settings), a source's page
(settings, the field mapping with the fields a test read found, sync now and full re-sync, the receiver
URL, delete), its runs with a progress bar while one runs, a run's log, and importing a CommCare case
export (upload → preview → import).

Everything goes through `casemsg.sources.services` (and `exportfile`, `tasks`): the API's and the CLI's
checks. Secrets are never sent back to the browser: a secret box is empty and keeps the stored value unless
something is typed. Owners change a source (it holds credentials) and see its receiver URL (it holds the
source's secret key); editors may sync it and import a file; viewers see it.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages as flash
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone

from casemsg.core import files
from casemsg.core.errors import InputError
from casemsg.projects.models import Project
from casemsg.sources import exportfile, mapping, queries, services, tasks
from casemsg.sources.base import Field, SourceType
from casemsg.sources.models import Source, SourceRun
from casemsg.sources.registry import SOURCE_TYPES
from casemsg.web.views.common import paginate, project_or_404, staff_required
from casemsg.web.views.keywords import require_role, role_allows

CFG = "cfg_"
MAPPING_ROWS = 5  # empty rows offered under the mapping's rules
_FIELDS_KEY = "casemsg_source_fields_{}"
_IMPORT_KEY = "casemsg_source_import"
MAX_UPLOAD = exportfile.MAX_FILE_BYTES
KEEP_SECONDS = 24 * 3600


def _type_info(t: type[SourceType]) -> dict[str, Any]:
    return {"type_name": t.type_name, "title": t.title, "description": t.description, "pulls": t.pulls}


def _own(project: Project, source_id: int) -> Source:
    try:
        return services.find_source(project, source_id)
    except InputError as exc:
        raise Http404(exc.message) from exc


# --- the settings form ---------------------------------------------------------------------------------
def _form_field(key: str, f: Field, has_secret: bool) -> forms.Field:
    label = f.label or key.replace("_", " ").capitalize()
    help_text = f.help
    if f.secret:
        help_text += " (Stored; left empty it stays as it is.)" if has_secret else ""
        return forms.CharField(
            label=label, required=False, max_length=2000, help_text=help_text, widget=forms.PasswordInput()
        )
    if f.type == "bool":
        return forms.BooleanField(label=label, required=False, help_text=help_text)
    if f.type == "number":
        return forms.FloatField(label=label, required=False, min_value=0, max_value=1e9, help_text=help_text)
    if f.choices:
        return forms.ChoiceField(
            label=label, required=False, choices=[("", "default"), *[(c, c) for c in f.choices]], help_text=help_text
        )
    if f.type == "list":
        return forms.CharField(label=label, required=False, max_length=4000, help_text=help_text + " One a line.")
    return forms.CharField(label=label, required=False, max_length=2000, help_text=help_text)


class SourceForm(forms.Form):
    name = forms.CharField(max_length=64, help_text="Letters, digits, '.', '_' or '-'; unique in the project.")
    case_type = forms.CharField(
        max_length=64, required=False, help_text="The case type its cases get (empty: the record's own)."
    )
    interval_minutes = forms.IntegerField(
        min_value=0,
        max_value=services.MAX_INTERVAL,
        initial=15,
        label="Sync every (minutes)",
        help_text="0: only when asked.",
    )
    keep_unmapped = forms.BooleanField(
        required=False, initial=True, label="Keep the fields the mapping does not name (as properties of the same name)"
    )
    active = forms.BooleanField(required=False, initial=True, label="Active (synced, and its receiver open)")

    def __init__(self, *args: Any, kind: type[SourceType], source: Source | None = None, **kw: Any) -> None:
        stored: dict[str, Any] = dict(source.config or {}) if source is not None else {}
        if source is not None and "initial" not in kw:
            initial: dict[str, Any] = {
                "name": source.name,
                "case_type": source.case_type,
                "interval_minutes": source.interval_minutes,
                "keep_unmapped": source.keep_unmapped,
                "active": source.active,
            }
            for key, f in kind.fields().items():
                value = stored.get(key)
                if f.secret or value is None:
                    continue
                initial[CFG + key] = "\n".join(value) if isinstance(value, list) else value
            kw["initial"] = initial
        super().__init__(*args, **kw)
        self.kind, self.stored = kind, stored
        for key, f in kind.fields().items():
            self.fields[CFG + key] = _form_field(key, f, bool(stored.get(key)))
        self.config_keys = list(kind.fields())

    def config_fields(self) -> list[forms.BoundField]:
        return [self[CFG + k] for k in self.config_keys]

    def config(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, f in self.kind.fields().items():
            value = self.cleaned_data.get(CFG + key)
            if f.type == "list" and isinstance(value, str):
                value = [v.strip() for v in value.splitlines() if v.strip()]
            if f.type == "number" and value is not None and float(value).is_integer():
                value = int(value)
            if value in (None, "", []) or (f.type == "bool" and value is False):
                continue
            out[key] = value
        return out


def _refused(form: forms.Form, exc: InputError) -> None:
    form.add_error(None, f"{exc.code}: {exc.message}")


# --- the mapping editor ------------------------------------------------------------------------------
def _rows(rules: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The mapping as the editor's rows (one transform each; more need the API)."""
    out = []
    for r in rules:
        raw = r.get("transform") or {}
        first = raw[0] if isinstance(raw, list) and raw else raw
        t: dict[str, Any] = first if isinstance(first, dict) else {}
        kind = str(t.get("type", ""))
        option = ""
        if kind == "phone":
            option = t.get("country", "")
        elif kind == "date":
            option = t.get("format", "")
        elif kind == "map":
            option = ", ".join(f"{k}={v}" for k, v in (t.get("values") or {}).items())
        out.append({"source": r.get("from", ""), "target": r.get("to", ""), "transform": kind, "option": option})
    return out + [{"source": "", "target": "", "transform": "", "option": ""}] * MAPPING_ROWS


def _posted_mapping(request: HttpRequest) -> list[dict[str, Any]]:
    rules = []
    for source, target, kind, option in zip(
        request.POST.getlist("map_from"),
        request.POST.getlist("map_to"),
        request.POST.getlist("map_transform"),
        request.POST.getlist("map_option"),
        strict=False,
    ):
        source, target, option = source.strip(), target.strip(), option.strip()
        if not source and not target:
            continue
        rule: dict[str, Any] = {"from": source, "to": target}
        if kind == "phone":
            rule["transform"] = {"type": "phone", **({"country": option} if option else {})}
        elif kind == "date":
            rule["transform"] = {"type": "date", **({"format": option} if option else {})}
        elif kind == "map":
            pairs = [p.split("=", 1) for p in option.split(",") if "=" in p]
            rule["transform"] = {"type": "map", "values": {k.strip(): v.strip() for k, v in pairs}}
        elif kind in mapping.TRANSFORMS and kind != "text":
            rule["transform"] = {"type": kind}
        rules.append(rule)
    return rules


# --- pages -----------------------------------------------------------------------------------------
@staff_required
def source_list(request: HttpRequest, slug: str) -> HttpResponse:
    project = project_or_404(slug)
    rows = list(queries.sources(project))
    latest = queries.latest_runs([s.pk for s in rows])
    for s in rows:
        s.latest = latest.get(s.pk)  # type: ignore[attr-defined]
        s.type_title = SOURCE_TYPES[s.type].title if s.type in SOURCE_TYPES else s.type  # type: ignore[attr-defined]
        s.syncing = services.is_syncing(s)  # type: ignore[attr-defined]
    ctx = {"project": project, "sources": rows, "can_edit": role_allows(request, "owner")}
    return render(request, "web/sources.html", ctx)


@staff_required
def source_new(request: HttpRequest, slug: str) -> HttpResponse:
    project = project_or_404(slug)
    kind = SOURCE_TYPES.get(request.POST.get("type") or request.GET.get("type", ""))
    if kind is None:
        ctx = {"project": project, "types": [_type_info(t) for t in SOURCE_TYPES.values()]}
        return render(request, "web/sources_types.html", ctx)
    form = SourceForm(request.POST or None, kind=kind)
    if request.method == "POST":
        require_role(request, "owner")
        if form.is_valid():
            try:
                source = services.add_source(
                    project,
                    form.cleaned_data["name"],
                    kind.type_name,
                    form.config(),
                    keep_unmapped=form.cleaned_data["keep_unmapped"],
                    case_type=form.cleaned_data["case_type"],
                    interval_minutes=form.cleaned_data["interval_minutes"],
                    active=form.cleaned_data["active"],
                )
            except InputError as exc:
                _refused(form, exc)
            else:
                flash.success(request, f"Source {source.name} added. Test it to see its fields, then map them.")
                return redirect(reverse("web:source", args=[project.slug, source.pk]))
    ctx = {"project": project, "kind": _type_info(kind), "form": form, "source": None, "can_edit": True}
    return render(request, "web/sources_new.html", ctx)


@staff_required
def source_detail(request: HttpRequest, slug: str, source_id: int) -> HttpResponse:
    project = project_or_404(slug)
    source = _own(project, source_id)
    kind = SOURCE_TYPES.get(source.type)
    if kind is None:
        raise Http404("Unknown source type.")
    form = SourceForm(kind=kind, source=source)
    test = None
    rules = source.mapping
    action = request.POST.get("action", "") if request.method == "POST" else ""
    if action in ("sync", "full"):
        require_role(request, "editor")
        try:
            run = tasks.sync_now(source, full=action == "full", by="page")
        except InputError as exc:
            flash.error(request, exc.message)
        else:
            what = "A full re-sync" if action == "full" else "A sync"
            flash.success(request, f"{what} {'ran' if run else 'starts within a second'}: follow it below.")
        return redirect(reverse("web:source_runs", args=[project.slug, source.pk]))
    if action == "delete":
        require_role(request, "owner")
        services.delete_source(source)
        flash.success(request, f"Source {source.name} deleted; the cases it wrote stay.")
        return redirect(reverse("web:sources", args=[project.slug]))
    if action == "test":
        require_role(request, "editor")
        test = services.test_source(source)
        if test.ok:
            request.session[_FIELDS_KEY.format(source.pk)] = {"fields": test.fields[:500], "labels": test.labels}
    if action == "save":
        require_role(request, "owner")
        form = SourceForm(request.POST, kind=kind, source=source)
        rules = _posted_mapping(request)
        if form.is_valid():
            try:
                services.update_source(
                    source,
                    name=form.cleaned_data["name"],
                    config=form.config(),
                    mapping_rules=rules,
                    keep_unmapped=form.cleaned_data["keep_unmapped"],
                    case_type=form.cleaned_data["case_type"],
                    interval_minutes=form.cleaned_data["interval_minutes"],
                    active=form.cleaned_data["active"],
                )
            except InputError as exc:
                source.refresh_from_db()
                _refused(form, exc)
            else:
                flash.success(request, f"Source {source.name} saved.")
                return redirect(reverse("web:source", args=[project.slug, source.pk]))
    seen = request.session.get(_FIELDS_KEY.format(source.pk)) or {}
    owner = role_allows(request, "owner")
    path = services.receiver_path(source)
    ctx = {
        "project": project,
        "source": source,
        "kind": _type_info(kind),
        "form": form,
        "rows": _rows(rules),
        "transforms": mapping.TRANSFORMS,
        "fields": [(f, seen.get("labels", {}).get(f, "")) for f in seen.get("fields", [])],
        "targets": mapping.targets_offered([]),
        "test": test,
        "test_fields": [(f, test.labels.get(f, "")) for f in test.fields] if test is not None else [],
        "receiver_url": request.build_absolute_uri(path) if path and owner else "",
        "latest": queries.latest_runs([source.pk]).get(source.pk),
        "syncing": services.is_syncing(source),
        "can_edit": owner,
        "can_sync": role_allows(request, "editor"),
    }
    return render(request, "web/sources_detail.html", ctx)


@staff_required
def source_runs(request: HttpRequest, slug: str, source_id: int) -> HttpResponse:
    project = project_or_404(slug)
    source = _own(project, source_id)
    runs = paginate(request, queries.runs(source), 25)
    due = source.active and source.next_sync_on is not None and source.next_sync_on <= timezone.now()
    # (a sync asked for starts within a second, when the worker's ticker claims it: the page follows it)
    running = any(r.status == SourceRun.RUNNING for r in runs) or services.is_syncing(source) or due
    ctx = {"project": project, "source": source, "runs": runs, "running": running, "now": timezone.now()}
    if request.headers.get("HX-Request") == "true":
        return render(request, "web/sources_runs_table.html", ctx)
    return render(request, "web/sources_runs.html", ctx)


@staff_required
def source_run(request: HttpRequest, slug: str, source_id: int, run_id: int) -> HttpResponse:
    project = project_or_404(slug)
    source = _own(project, source_id)
    try:
        run = queries.run(source, run_id)
    except InputError as exc:
        raise Http404(exc.message) from exc
    return render(request, "web/sources_run.html", {"project": project, "source": source, "run": run})


# --- importing a CommCare case export -------------------------------------------------------------------
def _dir() -> Path:
    d = Path(settings.DATA_DIR) / "source-imports"
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    cutoff = time.time() - KEEP_SECONDS
    for f in d.glob("*.upload"):
        if f.stat().st_mtime < cutoff:
            f.unlink(missing_ok=True)
    return d


class ExportForm(forms.Form):
    file = forms.FileField(help_text="CommCare HQ → Data → Export Case Data, as Excel (.xlsx) or CSV, as it is.")


@staff_required
def source_import(request: HttpRequest, slug: str, source_id: int) -> HttpResponse:
    project = project_or_404(slug)
    source = _own(project, source_id)
    form = ExportForm()
    preview = None
    pending = request.session.get(_IMPORT_KEY) or {}
    if request.method == "POST":
        require_role(request, "editor")
        if request.POST.get("confirm") and pending.get("source") == source.pk:
            path = _dir() / f"{pending.get('token', '')}.upload"
            if not pending.get("token") or not path.exists():
                flash.error(request, "The uploaded file is gone (imported already, or a day old); upload it again.")
                return redirect(reverse("web:source_import", args=[project.slug, source.pk]))
            try:
                run = exportfile.import_file(source, pending.get("name", "export"), path.read_bytes(), trigger="page")
            except InputError as exc:
                flash.error(request, f"{exc.code}: {exc.message}")
                return redirect(reverse("web:source_import", args=[project.slug, source.pk]))
            finally:
                path.unlink(missing_ok=True)
                request.session.pop(_IMPORT_KEY, None)
            flash.success(request, f"Imported: {run.created} created, {run.updated} updated, {run.skipped} skipped.")
            return redirect(reverse("web:source_run", args=[project.slug, source.pk, run.pk]))
        form = ExportForm(request.POST, request.FILES)
        if form.is_valid():
            upload = form.cleaned_data["file"]
            if upload.size > MAX_UPLOAD:
                form.add_error("file", f"The file is larger than {MAX_UPLOAD // (1024 * 1024)} MB.")
            else:
                data = upload.read()
                try:
                    preview = exportfile.preview(source, upload.name, data)
                except InputError as exc:
                    form.add_error("file", f"{exc.code}: {exc.message}")
                else:
                    token = secrets.token_urlsafe(18)
                    with files.open_private(_dir() / f"{token}.upload") as fh:
                        fh.write(data)
                    request.session[_IMPORT_KEY] = {"source": source.pk, "token": token, "name": upload.name[:200]}
    ctx = {"project": project, "source": source, "form": form, "preview": preview}
    return render(request, "web/sources_import.html", ctx)
