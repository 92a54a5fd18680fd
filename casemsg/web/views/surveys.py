"""SMS surveys: the list with an upload form (an XLSForm .xlsx/.csv or a `casemsg-survey/1` JSON file), a
survey's page (versions, questions, "start for a case") and the sessions with their answers so far.

Every change goes through `casemsg.surveys.services`, the same calls the API makes: a refused upload lists
the service's problems one by one (each names its question, and in an XLSForm its sheet row), a refused
start shows the catalogue code (NO_CASE_NAME, NO_TWO_WAY_PHONE_NUMBER, …) with its fix."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import messages as flash
from django.core.files.uploadedfile import UploadedFile
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from casemsg.core import errors, uploads
from casemsg.core.errors import InputError
from casemsg.projects.models import Project
from casemsg.surveys import engine, queries, services
from casemsg.surveys.models import Survey, SurveySession
from casemsg.web.views import survey_import
from casemsg.web.views.common import (
    ErrorView,
    error_view,
    paginate,
    project_or_404,
    query_without_page,
    staff_required,
    valid_filters,
    with_query,
)
from casemsg.web.views.picker import picker

SESSIONS_PER_PAGE = 50
UPLOAD_TYPES = (".xlsx", ".csv", ".json")


class UploadForm(forms.Form):
    file = forms.FileField(
        label="Survey file",
        help_text="an XLSForm (.xlsx or .csv), or a casemsg-survey/1 definition (.json). "
        "A form with the form_id of an existing survey becomes its new version.",
        widget=forms.ClearableFileInput(attrs={"accept": ",".join(UPLOAD_TYPES)}),
    )
    # (the attached CSVs of choices: request.FILES.getlist("attachments"), an <input multiple> in the page)


class StartForm(forms.Form):
    case_id = forms.CharField(max_length=64, label="Case id", help_text="the case to send the first question to")


class SessionFilterForm(forms.Form):
    status = forms.ChoiceField(
        required=False, choices=[("", "Any status"), *((s, s) for s in SurveySession.STATUSES)], label="Status"
    )
    case_id = forms.CharField(required=False, max_length=64, label="Case id")
    survey = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label="Survey")

    def __init__(self, *args: Any, surveys: list[Survey], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["survey"]
        assert isinstance(field, forms.TypedChoiceField)
        field.choices = [("", "Any survey"), *((str(s.pk), s.name) for s in surveys)]


# --------------------------------------------------------------------------------------------------
# What the pages show
# --------------------------------------------------------------------------------------------------


@dataclass
class SurveyRow:
    survey: Survey
    version: int
    questions: int
    open: int
    completed: int
    other: int


@dataclass
class QuestionRow:
    name: str
    type: str
    labels: list[tuple[str, str]]
    choices: list[tuple[str, str]]
    required: bool
    relevant: str
    constraint: str
    constraint_message: str
    save_to: str
    computed: str = ""  # what a calculate, hidden or metadata field holds
    required_if: str = ""  # a dynamic `required`
    choice_filter: str = ""


@dataclass
class SessionRow:
    session: SurveySession
    question_text: str
    answers: list[tuple[str, str]]


def _questions(definition: dict[str, Any]) -> list[dict[str, Any]]:
    return [q for q in definition.get("questions") or [] if isinstance(q, dict)]


def _asked(definition: dict[str, Any]) -> int:
    """The questions that wait for a reply (notes are sent, not answered; calculate, hidden and metadata
    fields are computed)."""
    return sum(1 for q in _questions(definition) if q.get("type") not in ("note", "calculate", "hidden", "metadata"))


def _in(texts: Any, language: str) -> str:
    return str(texts.get(language, "")) if isinstance(texts, dict) else ""


def question_rows(definition: dict[str, Any]) -> list[QuestionRow]:
    default = str(definition.get("default_language") or "")
    languages = [str(x) for x in definition.get("languages") or [default]]
    rows = []
    for q in _questions(definition):
        label = q.get("label") or {}
        rows.append(
            QuestionRow(
                name=str(q.get("name", "")),
                type=str(q.get("type", "")),
                labels=[(lang, _in(label, lang)) for lang in languages if _in(label, lang)],
                choices=[(str(c.get("name", "")), _in(c.get("label"), default)) for c in q.get("choices") or []],
                required=bool(q.get("required")),
                relevant=str(q.get("relevant") or ""),
                constraint=str(q.get("constraint") or ""),
                constraint_message=_in(q.get("constraint_message"), default),
                save_to=str(q.get("save_to") or ""),
                computed=_computed(q),
                required_if=q["required"] if isinstance(q.get("required"), str) else "",
                choice_filter=str(q.get("choice_filter") or ""),
            )
        )
    return rows


def _computed(q: dict[str, Any]) -> str:
    if q.get("type") == "calculate":
        return str(q.get("calculation") or "")
    if q.get("type") == "metadata":
        return f"{q.get('metadata')}" + (f" {q['property']}" if q.get("property") else "")
    if q.get("default_expression"):
        return f"default {q['default_expression']}"
    return f"default {q['default']}" if q.get("default") not in (None, "") else ""


def session_rows(sessions: Any) -> list[SessionRow]:
    return [
        SessionRow(s, engine.current_question_text(s), [(str(k), str(v)) for k, v in (s.answers or {}).items()])
        for s in sessions
    ]


def open_sessions_of(project: Project, number: str) -> list[SessionRow]:
    """The number's open sessions in this project (the phone simulator shows them above the conversation)."""
    if not number:
        return []
    return session_rows(queries.sessions(project, status=SurveySession.OPEN, phone_number=number))


def _survey_or_404(project: Project, survey_id: int) -> Survey:
    try:
        return services.get_survey(project, survey_id)
    except InputError as e:
        raise Http404(e.message) from None


def _upload(
    request: HttpRequest, project: Project, file: UploadedFile, attached: list[UploadedFile]
) -> tuple[Survey, bool] | survey_import.Waiting:
    """The uploaded file as a survey through the services, as the API's create and import do; an XLSForm
    with refused rows (a phone's hardware answers them) waits for its confirmation instead."""
    name = file.name or ""
    # the size before reading it; what an XLSForm expands to, its rows and questions: while it is read
    uploads.check_size(file.size, services.MAX_XLSFORM_BYTES, "The file")
    uploads.check_size(sum(f.size or 0 for f in attached), services.MAX_ATTACHMENT_BYTES, "The attached files")
    content = file.read()
    if name.lower().endswith(".json"):
        try:
            data = json.loads(content.decode("utf-8-sig"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise InputError(errors.INVALID_SURVEY, f"The file is not valid JSON: {exc}", 422) from None
        return services.create_survey(project, data), True
    attachments = {(f.name or "").rsplit("/", 1)[-1]: f.read() for f in attached}
    imported = services.preview_xlsform(content, name, attachments)
    if imported.refused:
        return survey_import.wait(request, project, name, content, attachments, imported)
    return services.import_survey(project, content, name, attachments=attachments)


def _refusal(form: forms.Form, e: InputError) -> None:
    """The service's refusal on the form: each problem of an invalid survey on its own line."""
    if isinstance(e, services.InvalidSurvey) and e.problems:
        n = len(e.problems)
        form.add_error(None, f"{e.code}: the survey has {'a problem' if n == 1 else f'{n} problems'}:")
        for p in e.problems:
            form.add_error(None, str(p))
    else:
        form.add_error(None, f"{e.code}: {e.message}")


# --------------------------------------------------------------------------------------------------
# Pages
# --------------------------------------------------------------------------------------------------


@staff_required
def survey_list(request: HttpRequest, slug: str) -> HttpResponse:
    project = project_or_404(slug)
    form = UploadForm()
    if request.method == "POST" and request.POST.get("step") == "confirm":
        return survey_import.confirm(request, project)
    if request.method == "POST":
        form = UploadForm(request.POST, request.FILES)
        if form.is_valid():
            try:
                outcome = _upload(project=project, request=request, file=form.cleaned_data["file"],
                                  attached=request.FILES.getlist("attachments"))  # fmt: skip
            except InputError as e:
                _refusal(form, e)
            else:
                if isinstance(outcome, survey_import.Waiting):
                    listed = question_rows(outcome.imported.definition)
                    return survey_import.preview(request, project, outcome, list(listed))
                survey, created = outcome
                version = survey.current_version.number if survey.current_version else 1
                if created:
                    flash.success(request, f"Survey “{survey.name}” created.")
                else:
                    flash.success(request, f"Survey “{survey.name}” now has version {version}.")
                return redirect(reverse("web:survey", args=[project.slug, survey.pk]))
    counts = queries.session_counts(project)
    rows = []
    for s in services.list_surveys(project):
        by_status = counts.get(s.pk, {})
        definition = s.current_version.definition if s.current_version else {}
        rows.append(
            SurveyRow(
                survey=s,
                version=s.current_version.number if s.current_version else 0,
                questions=_asked(definition),
                open=by_status.get(SurveySession.OPEN, 0),
                completed=by_status.get(SurveySession.COMPLETED, 0),
                other=sum(n for st, n in by_status.items() if st not in (SurveySession.OPEN, SurveySession.COMPLETED)),
            )
        )
    status = 422 if form.errors else 200
    return render(request, "web/surveys.html", {"project": project, "rows": rows, "form": form}, status=status)


@staff_required
def survey_detail(request: HttpRequest, slug: str, survey_id: int) -> HttpResponse:
    project = project_or_404(slug)
    survey = _survey_or_404(project, survey_id)
    form = StartForm(request.POST or None)
    refused: ErrorView | None = None
    if request.method == "POST" and form.is_valid():
        case_id = form.cleaned_data["case_id"].strip()
        try:
            session = services.start_survey(project, survey.pk, case_id)
        except InputError as e:
            refused = error_view(e.code, detail=e.message)
        else:
            flash.success(
                request,
                f"Survey started for case {case_id}: the first question is on its way to {session.phone_number}.",
            )
            return redirect(with_query(reverse("web:survey_sessions", args=[project.slug]), case_id=case_id))
    definition = survey.current_version.definition if survey.current_version else {}
    counts = queries.session_counts(project).get(survey.pk, {})
    ctx = {
        "project": project,
        "survey": survey,
        "definition": definition,
        "settings": definition.get("settings") or {},
        "questions": question_rows(definition),
        "versions": queries.versions(survey),
        "counts": sorted(counts.items()),
        "form": form,
        "case_picker": picker(
            project,
            "case_id",
            str(form.data.get("case_id", "")).strip(),
            str(form.fields["case_id"].label or "Case"),
            "find the case, or type its case id",
        ),
        "refused": refused,
    }
    status = 422 if refused is not None or form.errors else 200
    return render(request, "web/survey.html", ctx, status=status)


@staff_required
def session_list(request: HttpRequest, slug: str) -> HttpResponse:
    project = project_or_404(slug)
    surveys = list(services.list_surveys(project))
    form = SessionFilterForm(request.GET or None, surveys=surveys)
    f = valid_filters(form)
    rows = queries.sessions(
        project, case_id=f.get("case_id") or None, status=f.get("status") or None, survey_id=f.get("survey")
    )
    page = paginate(request, rows, SESSIONS_PER_PAGE)
    ctx = {
        "project": project,
        "form": form,
        "page": page,
        "rows": session_rows(page.object_list),
        "query": query_without_page(request),
    }
    return render(request, "web/survey_sessions.html", ctx)
