"""Surveys: create from a `casemsg-survey/1` definition or an XLSForm, change (each change is a new
version), delete, and start for a case. The only write path for surveys and their versions; sessions are
written by `engine`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from casemsg.cases.models import Case
from casemsg.consent import words
from casemsg.core import errors, uploads
from casemsg.core.errors import InputError
from casemsg.gateways.models import Gateway
from casemsg.projects.models import Project
from casemsg.surveys import engine
from casemsg.surveys.definition import Problem, SurveyError, check_size, parse_survey, to_dict
from casemsg.surveys.models import Survey, SurveySession, SurveyVersion
from casemsg.surveys.xlsform import Imported, read_xlsform

MAX_XLSFORM_BYTES = 5 * 1024 * 1024  # a survey sent by SMS has at most a few dozen rows (413 FILE_TOO_LARGE)
MAX_ATTACHMENTS = 20  # CSV files of choices attached with a form
MAX_ATTACHMENT_BYTES = 5 * 1024 * 1024  # all of them together (413 FILE_TOO_LARGE)


class InvalidSurvey(InputError):
    """INVALID_SURVEY with every problem found, so a page can list them one by one (each names its
    question, and in an XLSForm its sheet row)."""

    def __init__(self, message: str, problems: list[Problem]) -> None:
        super().__init__(errors.INVALID_SURVEY, message, 422)
        self.problems = problems


def _invalid(err: SurveyError) -> InvalidSurvey:
    problems = err.problems
    listed = "; ".join(str(p) for p in problems)
    what = "a problem" if len(problems) == 1 else f"{len(problems)} problems"
    return InvalidSurvey(f"The survey has {what}: {listed}", problems)


def validate(data: Any, project: Project) -> dict[str, Any]:
    """A definition as stored (canonical), or InputError INVALID_SURVEY listing every problem with its
    question; a keyword that is an opt-out, opt-in or help word is RESERVED_KEYWORD."""
    if not isinstance(data, dict):
        raise InputError(errors.INVALID_SURVEY, "A survey must be a JSON object (the casemsg-survey/1 format).", 422)
    check_size(data)  # 422 TOO_MANY_QUESTIONS before the checks that cost time per question
    try:
        canonical = to_dict(parse_survey(data))
    except SurveyError as err:
        raise _invalid(err) from None
    keyword = (canonical["settings"].get("keyword") or "").upper()
    if keyword:
        reserved = words.opt_out_words(project) | words.opt_in_words(project) | set(words.HELP_WORDS)
        if keyword in reserved or keyword == engine.STOP_WORD:
            raise InputError(errors.RESERVED_KEYWORD, f"'{keyword}' is reserved for opt-out, opt-in and help.", 422)
    return canonical


def _checked_attachments(attachments: Mapping[str, bytes] | None) -> dict[str, bytes]:
    files = dict(attachments or {})
    if len(files) > MAX_ATTACHMENTS:
        raise InputError(errors.INVALID_SURVEY, f"At most {MAX_ATTACHMENTS} files may be attached to a form.", 422)
    uploads.check_size(sum(len(v) for v in files.values()), MAX_ATTACHMENT_BYTES, "The attached files")
    for name in files:
        if not name.lower().endswith(".csv"):
            raise InputError(
                errors.INVALID_SURVEY, f"'{name}' cannot be attached: a form's choices are attached as .csv files.", 422
            )
    return files


def preview_xlsform(content: bytes, filename: str, attachments: Mapping[str, bytes] | None = None) -> Imported:
    """An uploaded XLSForm (.xlsx or .csv) read, not saved: its definition and the rows refused because a
    phone's hardware answers them (what the import page shows before saving). Problems name their rows."""
    suffix = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if suffix not in ("xlsx", "csv"):
        raise InputError(errors.INVALID_SURVEY, f"An XLSForm is an .xlsx or .csv file, not '{filename}'.", 422)
    uploads.check_size(len(content), MAX_XLSFORM_BYTES, "The XLSForm")
    files = _checked_attachments(attachments)
    try:
        # limits on what it expands to, its rows and its questions are checked while it is read (xlsform.py)
        return read_xlsform(content, file_type=suffix, attachments=files)
    except SurveyError as err:
        raise _invalid(err) from None
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 — a damaged file must answer 422, whatever the reader raised
        raise InputError(errors.INVALID_SURVEY, f"The file could not be read as an XLSForm: {exc}", 422) from None


def read_xlsform_file(
    content: bytes, filename: str, attachments: Mapping[str, bytes] | None = None, accept_refused: bool = False
) -> dict[str, Any]:
    """An uploaded XLSForm as a survey definition; its refused rows (a phone's hardware answers them) are
    problems unless `accept_refused`, which keeps them as empty hidden fields."""
    imported = preview_xlsform(content, filename, attachments)
    if imported.refused and not accept_refused:
        raise _invalid(SurveyError(imported.refused))
    return imported.definition


def get_survey(project: Project, survey_id: int) -> Survey:
    s = Survey.objects.filter(project=project, pk=survey_id, builtin="").select_related("current_version").first()
    if s is None:
        raise InputError(errors.SURVEY_NOT_FOUND, f"No survey {survey_id} in this project.", 404)
    return s


def find_survey(project: Project, ref: str) -> Survey | None:
    """The survey a keyword names (by id), if it still exists."""
    ref = (ref or "").strip()
    if not ref.isdigit():
        return None
    return Survey.objects.filter(project=project, pk=int(ref), builtin="").select_related("current_version").first()


def list_surveys(project: Project) -> Any:
    return Survey.objects.filter(project=project, builtin="").select_related("current_version").order_by("name", "pk")


def keyword_surveys(project: Project) -> dict[str, Survey]:
    """The project's survey keywords (settings.keyword), upper-case."""
    rows = Survey.objects.filter(project=project, builtin="").exclude(keyword="").select_related("current_version")
    return {s.keyword: s for s in rows}


def _add_version(survey: Survey, canonical: dict[str, Any], now: dt.datetime) -> None:
    last = survey.versions.aggregate(n=Max("number"))["n"] or 0
    version = SurveyVersion.objects.create(survey=survey, number=last + 1, definition=canonical, created_on=now)
    survey.current_version = version
    survey.name = canonical["name"][:255]
    survey.keyword = (canonical["settings"].get("keyword") or "").upper()
    survey.form_id = (canonical.get("form_id") or "")[:255]
    survey.modified_on = now
    survey.save()


def _saved(survey: Survey, canonical: dict[str, Any], now: dt.datetime) -> Survey:
    try:
        with transaction.atomic():
            if survey.pk is None:
                survey.save()
            _add_version(survey, canonical, now)
    except IntegrityError as exc:
        raise InputError(
            errors.KEYWORD_EXISTS, f"Another survey of this project already has the keyword '{survey.keyword}'.", 409
        ) from exc
    return survey


def create_survey(project: Project, data: Any) -> Survey:
    canonical = validate(data, project)
    now = timezone.now()
    return _saved(Survey(project=project, name=canonical["name"], created_on=now, modified_on=now), canonical, now)


def update_survey(project: Project, survey_id: int, data: Any) -> Survey:
    """A new version; running sessions keep the version they started with."""
    survey = get_survey(project, survey_id)
    canonical = validate(data, project)
    return _saved(survey, canonical, timezone.now())


def import_survey(
    project: Project,
    content: bytes,
    filename: str,
    survey_id: int | None = None,
    *,
    attachments: Mapping[str, bytes] | None = None,
    accept_refused: bool = False,
) -> tuple[Survey, bool]:
    """An XLSForm as a new survey, or as a new version of `survey_id`, else of the survey with the same
    form_id. `attachments`: CSV files of choices (select_one_from_file); `accept_refused`: save the form
    without the questions a phone's hardware answers (else they are problems). Returns the survey and
    whether it was created."""
    canonical = validate(read_xlsform_file(content, filename, attachments, accept_refused), project)
    survey: Survey | None
    if survey_id is not None:
        survey = get_survey(project, survey_id)
    else:
        form_id = canonical.get("form_id") or ""
        survey = Survey.objects.filter(project=project, form_id=form_id).order_by("pk").first() if form_id else None
    now = timezone.now()
    if survey is not None:
        return _saved(survey, canonical, now), False
    created = Survey(project=project, name=canonical["name"], created_on=now, modified_on=now)
    return _saved(created, canonical, now), True


def delete_survey(project: Project, survey_id: int) -> None:
    """Delete a survey with its versions and sessions (open sessions end: replies go to keywords again)."""
    get_survey(project, survey_id).delete()


def start_survey(
    project: Project, survey_id: int, case_id: str, gateway: Gateway | None = None, now: dt.datetime | None = None
) -> SurveySession:
    survey = get_survey(project, survey_id)
    case = Case.objects.filter(project=project, case_id=case_id).first()
    if case is None:
        raise InputError(errors.CASE_NOT_FOUND, f"No case '{case_id}' in this project.", 404)
    return engine.start(project, survey, case, now, gateway=gateway)
