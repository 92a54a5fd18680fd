from __future__ import annotations

from django.http import HttpRequest
from ninja import Field, Router, Schema, Status

from casemsg.api.core import READ, SEND, WRITE, In, paged, project_for
from casemsg.core import errors
from casemsg.inbound import sandbox
from casemsg.inbound import services as keyword_services
from casemsg.inbound.keywords import ACTIONS, KeywordFields
from casemsg.inbound.models import Keyword

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
class KeywordIn(In):
    keyword: str = Field(max_length=40)
    action: str = Field("reply", description="; ".join(f"{a.name}: {a.description}" for a in ACTIONS.values()))
    description: str = Field("", max_length=255)
    reply: dict[str, str] = Field(
        default_factory=dict, description="{language: text}, a template: {case.name}, {rest} (the words after it)"
    )
    property_name: str = Field("", max_length=255)
    property_value: str = Field("{rest}", max_length=255)
    survey: str = Field("", max_length=64)


class KeywordOut(Schema):
    """A keyword as stored (read from the row)."""

    id: int
    keyword: str
    action: str
    description: str
    reply: dict[str, str]
    property_name: str
    property_value: str
    survey: str


def _fields(payload: KeywordIn) -> KeywordFields:
    return KeywordFields(**payload.dict())


@router.post("/projects/{project}/keywords", auth=WRITE, response={201: KeywordOut}, tags=["keywords"])
def create_keyword(request: HttpRequest, project: str, payload: KeywordIn) -> Status[Keyword]:
    """A keyword: the first word of an inbound message → reply, update a property of the sender's
    case (`{rest}` = the words after the keyword), or start a survey."""
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
