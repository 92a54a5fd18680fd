from __future__ import annotations

from django.http import HttpRequest
from ninja import Field, Router, Schema, Status

from casemsg.api.core import READ, SEND, WRITE, In, paged, project_for
from casemsg.core import errors
from casemsg.inbound import sandbox
from casemsg.inbound import services as keyword_services
from casemsg.inbound.actions.registry import ACTIONS
from casemsg.inbound.models import Keyword
from casemsg.inbound.services import KeywordFields

router = Router(tags=["inbound"])


class SandboxIn(In):
    field_codes = {"phone_number": errors.INVALID_PHONE_NUMBER}
    phone_number: str
    text: str
    id: str = ""


@router.post("/projects/{project}/sandbox/incoming", auth=SEND, response={202: dict}, tags=["sandbox"])
def sandbox_incoming(request: HttpRequest, project: str, payload: SandboxIn):
    """Reply as one of the project's own contacts: an SMS from `phone_number` arrives through the sandbox
    gateway. Only numbers that the project's contacts hold and that the sandbox serves are accepted (403
    NOT_A_PROJECT_NUMBER otherwise); a production installation switches the sandbox off (404)."""
    ids = sandbox.simulate(project_for(request, project), payload.phone_number, payload.text, payload.id)
    return Status(202, {"ids": ids})


# --- keywords --------------------------------------------------------------------------------------
def _params_help() -> str:
    parts = []
    for a in ACTIONS.values():
        declared = "; ".join(p.describe() for p in a.params) or "none"
        parts.append(f"{a.name}: {declared}")
    return "The action's parameters, {name: text}. " + " | ".join(parts)


_LEGACY = ("property_name", "property_value", "survey")


class KeywordIn(In):
    keyword: str = Field(max_length=40)
    action: str = Field("reply", description="; ".join(f"{a.name}: {a.description}" for a in ACTIONS.values()))
    description: str = Field("", max_length=255)
    reply: dict[str, str] = Field(
        default_factory=dict, description="{language: text}, a template: {case.name}, {rest} (the words after it)"
    )
    params: dict[str, str | int] | None = Field(None, description=_params_help())
    # Before `params`, each parameter was a field of its own; still taken where the action declares it
    # (`params` wins), and ignored otherwise, as they always were.
    property_name: str | None = Field(None, max_length=255, description="The same as params.property_name.")
    property_value: str | None = Field(None, max_length=255, description="The same as params.property_value.")
    survey: str | None = Field(None, max_length=64, description="The same as params.survey.")


class KeywordOut(Schema):
    """A keyword as stored (read from the row). property_name, property_value and survey repeat `params`
    for clients written before it."""

    id: int
    keyword: str
    action: str
    description: str
    reply: dict[str, str]
    params: dict[str, str]
    property_name: str
    property_value: str
    survey: str

    @staticmethod
    def resolve_params(obj: Keyword) -> dict[str, str]:
        return dict(obj.params or {})

    @staticmethod
    def resolve_property_name(obj: Keyword) -> str:
        return str((obj.params or {}).get("property_name", ""))

    @staticmethod
    def resolve_property_value(obj: Keyword) -> str:
        return str((obj.params or {}).get("property_value") or "{rest}")

    @staticmethod
    def resolve_survey(obj: Keyword) -> str:
        return str((obj.params or {}).get("survey", ""))


def _fields(payload: KeywordIn) -> KeywordFields:
    action = ACTIONS.get(payload.action)
    declared = {p.name for p in action.params} if action is not None else set()
    legacy = {name: getattr(payload, name) for name in _LEGACY if name in declared}
    params: dict[str, object] = {k: v for k, v in legacy.items() if v is not None}
    params.update(payload.params or {})
    return KeywordFields(
        keyword=payload.keyword,
        action=payload.action,
        description=payload.description,
        reply=payload.reply,
        params=params,
    )


@router.post("/projects/{project}/keywords", auth=WRITE, response={201: KeywordOut}, tags=["keywords"])
def create_keyword(request: HttpRequest, project: str, payload: KeywordIn) -> Status[Keyword]:
    """A keyword: the first word of an inbound message → reply, update a property of the sender's
    case (`{rest}` = the words after the keyword), or start a survey. The action's parameters go in
    `params` (the older top-level property_name, property_value and survey are still taken)."""
    k = keyword_services.create_keyword(project_for(request, project), _fields(payload))
    return Status(201, k)


class KeywordList(Schema):
    count: int
    items: list[KeywordOut]


@router.get("/projects/{project}/keywords", auth=READ, response=KeywordList, tags=["keywords"])
def list_keywords(request: HttpRequest, project: str, limit: int = 100, offset: int = 0) -> dict[str, object]:
    rows = keyword_services.list_keywords(project_for(request, project))
    listed = paged(rows, limit, offset)
    return listed


@router.put("/projects/{project}/keywords/{keyword_id}", auth=WRITE, response=KeywordOut, tags=["keywords"])
def update_keyword(request: HttpRequest, project: str, keyword_id: int, payload: KeywordIn) -> Keyword:
    return keyword_services.update_keyword(project_for(request, project), keyword_id, _fields(payload))


@router.delete("/projects/{project}/keywords/{keyword_id}", auth=WRITE, response={204: None}, tags=["keywords"])
def delete_keyword(request: HttpRequest, project: str, keyword_id: int) -> Status[None]:
    keyword_services.delete_keyword(project_for(request, project), keyword_id)
    return Status(204, None)


# --- consent ---------------------------------------------------------------------------------------
