"""Project endpoints: the project's API keys (list, issue, revoke; the admin scope), its settings (read,
change: a change that weakens a legal rule needs the admin scope) and its audit log (the admin scope)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from django.http import HttpRequest
from ninja import Field, Router, Schema, Status
from pydantic import StrictBool, StrictInt

from casemsg.api.core import ADMIN, READ, WRITE, In, has_scope, page, paged, project_for, utc
from casemsg.projects import models, queries, services

router = Router(tags=["projects"])


class KeyOut(Schema):
    id: int
    prefix: str = Field(description="The key's first characters, to recognise it; the key itself is never shown again.")
    name: str
    created_on: datetime
    revoked: bool
    revoked_on: datetime | None
    last_used_on: datetime | None = Field(
        description="When the API last accepted the key (to the minute); null: never."
    )
    scopes: list[str] = Field(description="What the key may do: among read, send, write and admin.")


class KeyList(Schema):
    count: int
    items: list[KeyOut]


Scope = Literal["read", "send", "write", "admin"]


class KeyIn(In):
    name: str = Field("", max_length=100, description="What the key is for, e.g. 'CommCare forwarder'.")
    scopes: list[Scope] | None = Field(
        None,
        max_length=4,
        description="read (every GET), send (messages, opt-in requests, surveys started, broadcasts, alerts), "
        "write (create, change, delete), admin (keys, the audit log, settings that weaken a legal rule). "
        f"Default: {', '.join(models.DEFAULT_SCOPES)}.",
    )


class NewKeyOut(KeyOut):
    key: str = Field(description="The new key. Shown once: store it now.")


@router.get("/projects/{project}/keys", auth=ADMIN, response=KeyList)
def list_keys(request: HttpRequest, project: str, limit: int = 100, offset: int = 0) -> dict[str, object]:
    """The project's API keys, revoked ones included (never the keys themselves)."""
    qs = services.list_keys(project_for(request, project))
    return {"count": qs.count(), "items": list(page(qs, limit, offset))}


@router.post("/projects/{project}/keys", auth=ADMIN, response={201: NewKeyOut})
def issue_key(request: HttpRequest, project: str, payload: KeyIn) -> Status[object]:
    """Issue another API key for the project, with the scopes given (default read, send, write). The response
    holds the key once. Recorded in the audit log."""
    row, key = services.issue_key(project_for(request, project), payload.name, payload.scopes)
    row.key = key  # type: ignore[attr-defined]  # in memory only, for this one response
    return Status(201, row)


@router.delete("/projects/{project}/keys/{key_id}", auth=ADMIN, response={204: None})
def revoke_key(request: HttpRequest, project: str, key_id: int) -> Status[None]:
    """Revoke a key: requests with it are refused (401) from now on. The calling key may revoke itself.
    Recorded in the audit log."""
    services.revoke_key(project_for(request, project), key_id)
    return Status(204, None)


# --- settings ------------------------------------------------------------------------------------
class QuietHours(Schema):
    start: str = Field(description="HH:MM on a 24-hour clock, read on each recipient's own clock.", examples=["21:00"])
    end: str = Field(description="HH:MM; an end before the start crosses midnight.", examples=["08:00"])


class SettingsOut(Schema):
    default_time_zone: str = Field(description="IANA zone for contacts without a valid time_zone of their own.")
    default_country: str = Field(
        description="ISO 3166 alpha-2 code: a local number (0711 222 333) is stored as this country's "
        "(254711222333); set from the time zone when the project is created; empty: none."
    )
    default_language: str = Field(description="The last language of the translation fallback chain.")
    sms_languages: list[str] = Field(description="The language codes a contact's language_code may use.")
    quiet_hours: QuietHours | None = Field(
        description="Scheduled SMS and opt-in questions due inside wait for the end (delay QUIET_HOURS); null: none."
    )
    consent_regions: list[str] = Field(description="ISO 3166 regions whose numbers need recorded opt-in consent.")
    block_shared_numbers: bool = Field(description="A number shared with another contact gets no SMS at all.")
    auto_normalize_phone_numbers: bool = Field(description="Store a fixable number fixed instead of reporting it.")
    opt_in_interval_hours: int = Field(description="At most one opt-in request per contact within this many hours.")
    opt_in_expiry_hours: int = Field(description="An unanswered opt-in request expires after this many hours.")
    auto_opt_in: bool = Field(description="Registering a consent-needing number sends the opt-in request at once.")
    opt_out_keywords: list[str] = Field(description="The project's own opt-out words, besides STOP and the others.")
    opt_in_keywords: list[str] = Field(description="The project's own opt-in words, besides START and the others.")
    survey_skip_word: str = Field(
        description="The reply that skips a survey question (it takes the value offered); a survey's own wins."
    )


class QuietHoursIn(In):
    start: str = Field(max_length=5, description="HH:MM, e.g. 21:00.")
    end: str = Field(max_length=5, description="HH:MM, e.g. 08:00 (before the start: the window crosses midnight).")


Language = Annotated[str, Field(max_length=16)]
Region = Annotated[str, Field(max_length=3)]
Word = Annotated[str, Field(max_length=32)]


class SettingsIn(In):
    """Any subset of the settings; a field left out is unchanged. Only quiet_hours may be null (none): null
    for another field is a 422."""

    default_time_zone: str | None = Field(None, max_length=64, description="An IANA zone name, e.g. Africa/Nairobi.")
    default_country: str | None = Field(None, max_length=2, description='An ISO 3166 code, e.g. KE; "" for none.')
    default_language: str | None = Field(None, max_length=16, description="One of sms_languages (as changed).")
    sms_languages: list[Language] | None = Field(None, max_length=50, description="Language codes such as sw, pt-BR.")
    quiet_hours: QuietHoursIn | None = Field(None, description='{"start": "21:00", "end": "08:00"}, or null for none.')
    consent_regions: list[Region] | None = Field(
        None, max_length=300, description="ISO 3166 region codes, e.g. US, PR."
    )
    block_shared_numbers: StrictBool | None = Field(None)
    auto_normalize_phone_numbers: StrictBool | None = Field(None)
    opt_in_interval_hours: StrictInt | None = Field(None, description="0 to 8760 hours.")
    opt_in_expiry_hours: StrictInt | None = Field(None, description="1 to 8760 hours.")
    auto_opt_in: StrictBool | None = Field(None)
    opt_out_keywords: list[Word] | None = Field(
        None, max_length=50, description="Single words, e.g. SITISHA; removing one needs the admin scope."
    )
    opt_in_keywords: list[Word] | None = Field(
        None, max_length=50, description="Single words, e.g. ANZA; adding one needs the admin scope."
    )
    survey_skip_word: str | None = Field(None, max_length=32, description="One word, e.g. #SKIP or RUKA.")


_WEAKENING = {
    403: {
        "description": "The key lacks the write scope (INSUFFICIENT_SCOPE), or the change weakens a legal rule and "
        "the key lacks the admin scope (WEAKENS_LEGAL_RULE), or the key belongs to another project (FORBIDDEN)."
    }
}


@router.get("/projects/{project}/settings", auth=READ, response=SettingsOut)
def get_settings(request: HttpRequest, project: str) -> dict[str, Any]:
    """The project's settings: time zone, languages, quiet hours, consent regions and switches."""
    return services.get_settings(project_for(request, project))


@router.patch("/projects/{project}/settings", auth=WRITE, response=SettingsOut, openapi_extra={"responses": _WEAKENING})
def update_settings(request: HttpRequest, project: str, payload: SettingsIn) -> dict[str, Any]:
    """Change any subset of the settings, all or nothing; answers with all of them. A wrong value is a 422
    naming its field (VALIDATION_ERROR, or INVALID_TIME_ZONE). A change that weakens a legal rule — removing
    a consent region, switching quiet hours off or narrowing them, removing an opt-out word, adding an
    opt-in word, switching block_shared_numbers off — needs a key with the admin scope too (403
    WEAKENS_LEGAL_RULE). Every change is written to the audit log (GET …/audit)."""
    p = project_for(request, project)
    changes = payload.model_dump(exclude_unset=True)
    updated = services.update_settings(p, changes, may_weaken=has_scope(request, models.ADMIN))
    return services.get_settings(updated)


# --- the audit log -----------------------------------------------------------------------------------
class AuditOut(Schema):
    id: int
    at: datetime = Field(description="When, in UTC.")
    source: str = Field(description="How the change came in: api, page, cli (or system).")
    who: str = Field(description='Who made it: "user alice", "api key cm_AbCdEfGh… (its name)", "command line (…)".')
    setting: str = Field(description="A setting's name as in …/settings, or api_key (a key issued or revoked).")
    before: Any = Field(description="The value before, as GET …/settings shows it (null: none, a new key).")
    after: Any = Field(description="The value after.")
    weakens: bool = Field(description="The change weakened a legal rule (it needed the admin scope or an owner).")


class AuditList(Schema):
    count: int
    items: list[AuditOut]


@router.get("/projects/{project}/audit", auth=ADMIN, response=AuditList)
def audit_log(
    request: HttpRequest,
    project: str,
    setting: str = "",
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> dict[str, Any]:
    """Every change of the project's settings and API keys, newest first: who, when, which setting, the value
    before and after. `setting` keeps one setting's entries (api_key: the keys')."""
    p = project_for(request, project)
    qs = queries.audit_log(p, setting[:64], utc(since, "since"), utc(until, "until"))
    return paged(qs, limit, offset)
