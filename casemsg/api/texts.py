"""The texts casemsg sends, per project and language (casemsg.consent.texts), and the project's translations
as one file for translators (casemsg.translations.services).

Changing a text needs write; a change that stops a text telling how to opt out needs admin too (403
WEAKENS_LEGAL_RULE); a text the law requires is never emptied (422 TEXT_REQUIRED). Every change is in the
audit log (setting `texts.KEY`)."""

from __future__ import annotations

from typing import Any, Literal

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from ninja import Field, File, Router, Schema, UploadedFile

from casemsg.api.core import READ, WRITE, In, has_scope, project_for
from casemsg.consent import texts
from casemsg.projects import models
from casemsg.translations import services as translations

router = Router(tags=["texts"])
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class EffectiveOut(Schema):
    text: str = Field(description="What a contact of this language is sent (as written; '' for nothing).")
    language: str = Field(description="The language it is in: the chain contact → project default → English.")
    own: bool = Field(description="True when it is the project's own translation, false for casemsg's default.")


class TextOut(Schema):
    key: str
    title: str
    group: str
    description: str
    default: str = Field(description="casemsg's English text ('' for a text that is off until written).")
    placeholders: list[str] = Field(description="The {name}s the text may use.")
    legal: bool = Field(description="The law requires it: it may be reworded, never emptied.")
    names_opt_out: bool = Field(description="It must keep naming an opt-out word; removing it needs admin.")
    optional: bool = Field(description="Off (nothing is sent) until the project writes it.")
    translations: dict[str, str] = Field(description="The project's own translations, {language: text}.")
    effective: dict[str, EffectiveOut] = Field(description="For each of the project's languages, what is sent.")


class TextList(Schema):
    count: int
    languages: list[str] = Field(description="The languages the texts are written in: the project's, and English.")
    items: list[TextOut]


class TextsIn(In):
    texts: dict[str, dict[str, str | None]] = Field(
        description="{key: {language: text}}; a text of null removes the project's own (the fallback applies), "
        '"" sends nothing in that language (refused for a text the law requires).',
        examples=[{"opt_out_confirmation": {"sw": "Umejiondoa. Tuma START kujiunga tena."}}],
    )


class TranslationsIn(In):
    translations: dict[str, str | None] = Field(
        description="{language: text}; null removes the project's own translation.",
        examples=[{"sw": "Msaada: piga 0800 000 000. Tuma STOP kujiondoa."}],
    )


_RULES = {
    403: {
        "description": "The key lacks the write scope (INSUFFICIENT_SCOPE), or the change stops a text telling how "
        "to opt out and the key lacks the admin scope (WEAKENS_LEGAL_RULE), or the key belongs to another "
        "project (FORBIDDEN)."
    }
}


def _listing(project: Any) -> dict[str, Any]:
    items = texts.listing(project)
    return {"count": len(items), "languages": texts.languages(project), "items": items}


@router.get("/projects/{project}/texts", auth=READ, response=TextList)
def list_texts(request: HttpRequest, project: str) -> dict[str, Any]:
    """Every text casemsg sends (STOP and START confirmations, HELP, the opt-in question, verification, survey
    re-prompts, keyword replies, …): its default, the project's own translations and what a contact of each
    language is sent (contact language → project default language → English)."""
    return _listing(project_for(request, project))


@router.put("/projects/{project}/texts", auth=WRITE, response=TextList, openapi_extra={"responses": _RULES})
def update_texts(request: HttpRequest, project: str, payload: TextsIn) -> dict[str, Any]:
    """Change any of the project's translations, all or nothing (a wrong one is a 422 naming texts.KEY.LANG)."""
    p = project_for(request, project)
    texts.update(p, payload.texts, may_weaken=has_scope(request, models.ADMIN))
    return _listing(p)


@router.get("/projects/{project}/texts/{key}", auth=READ, response=TextOut)
def get_text(request: HttpRequest, project: str, key: str) -> dict[str, Any]:
    """One text (404 TEXT_NOT_FOUND for a key casemsg does not have)."""
    return texts.shown(project_for(request, project), key)


@router.put("/projects/{project}/texts/{key}", auth=WRITE, response=TextOut, openapi_extra={"responses": _RULES})
def update_text(request: HttpRequest, project: str, key: str, payload: TranslationsIn) -> dict[str, Any]:
    """Change one text's translations."""
    p = project_for(request, project)
    texts.update_one(p, key, payload.translations, may_weaken=has_scope(request, models.ADMIN))
    return texts.shown(p, key)


# --- the translations file ---------------------------------------------------------------------------------
@router.get("/projects/{project}/translations", auth=READ)
def export_translations(
    request: HttpRequest, project: str, format: Literal["csv", "xlsx"] = "csv"
) -> HttpResponse | StreamingHttpResponse:
    """Every translation of the project in one file (CSV or .xlsx): the texts casemsg sends, keywords' replies,
    broadcasts' and alerts' contents, surveys' labels. Columns: type, id, name, field, source, then one per
    language."""
    p = project_for(request, project)
    if format == "xlsx":
        resp: HttpResponse | StreamingHttpResponse = HttpResponse(
            translations.export_xlsx(p),
            content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )
    else:
        resp = StreamingHttpResponse(translations.export_csv(p), content_type="text/csv; charset=utf-8")
    resp["Content-Disposition"] = f'attachment; filename="translations-{p.slug}.{format}"'
    return resp


class ChangeOut(Schema):
    row: int
    type: str
    id: str
    name: str
    field: str
    language: str
    before: str | None
    after: str | None = Field(description="null: the translation is removed.")


class ProblemOut(Schema):
    row: int
    message: str


class ImportOut(Schema):
    applied: bool = Field(description="False for a preview, or when a problem kept the file from being applied.")
    changes: list[ChangeOut]
    problems: list[ProblemOut]
    more_problems: int = Field(description="Problems beyond those listed.")


def _result(r: translations.Result) -> dict[str, Any]:
    return {
        "applied": r.applied,
        "changes": [c.__dict__ for c in r.changes],
        "problems": [{"row": n, "message": m} for n, m in r.problems],
        "more_problems": r.more_problems,
    }


@router.post("/projects/{project}/translations", auth=WRITE, response=ImportOut, openapi_extra={"responses": _RULES})
def import_translations(
    request: HttpRequest, project: str, file: File[UploadedFile], preview: bool = False
) -> dict[str, Any]:
    """A translations file (multipart field `file`, CSV or .xlsx, as the export writes it) applied, all or
    nothing: any problem is a 422 INVALID_TRANSLATIONS_FILE naming the rows. With `preview=true` nothing is
    changed and the answer lists every change and every problem."""
    p = project_for(request, project)
    translations.check_upload_size(file.size)
    upload = translations.read(p, file.read(), file.name or "")
    may_weaken = has_scope(request, models.ADMIN)
    result = (
        translations.preview(p, upload, may_weaken=may_weaken)
        if preview
        else translations.apply(p, upload, may_weaken=may_weaken)
    )
    return _result(result)
