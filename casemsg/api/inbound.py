from __future__ import annotations

from django.db import IntegrityError, transaction
from django.http import HttpRequest
from ninja import Field, Router, Schema, Status

from casemsg.api.core import project_for
from casemsg.api.gateways import gateway_for_webhook
from casemsg.consent import words
from casemsg.core.errors import InputError
from casemsg.gateways.base import InboundSms, digits
from casemsg.gateways.models import Gateway
from casemsg.gateways.registry import adapter_for
from casemsg.inbound import router as inbound
from casemsg.inbound.models import Keyword

router = Router(tags=["inbound"])


@router.post("/gateways/{name}/{key}/inbound", auth=None, tags=["webhooks"])
def inbound_webhook(request: HttpRequest, name: str, key: str):
    """Inbound SMS in the provider's own format, at the URL holding the gateway's secret key. Twilio
    requests must also carry a valid X-Twilio-Signature. Stored at once; processed as a job."""
    gw = gateway_for_webhook(name, key)
    adapter = adapter_for(gw)
    if not adapter.verify_request(request):
        raise InputError("FORBIDDEN", "The request signature is not valid.", 403)
    inbound.receive(gw, adapter.parse_inbound(request))
    return adapter.inbound_response()


class SandboxIn(Schema):
    phone_number: str
    text: str
    id: str = ""


@router.post("/projects/{project}/sandbox/incoming", response={202: dict}, tags=["sandbox"])
def sandbox_incoming(request: HttpRequest, project: str, payload: SandboxIn):
    """Reply as a contact: an SMS from `phone_number` arrives through the sandbox gateway."""
    p = project_for(request, project)
    gw = (
        Gateway.objects.filter(type="sandbox", project=p).first()
        or Gateway.objects.filter(type="sandbox", project__isnull=True).order_by("pk").first()
    )
    if gw is None:
        raise InputError(
            "GATEWAY_NOT_FOUND", "No sandbox gateway: add one with `casemsg gateway add sandbox --type sandbox`.", 404
        )
    number = digits(payload.phone_number)
    if not number:
        raise InputError("INVALID_PHONE_NUMBER", "phone_number must contain digits.")
    ids = inbound.receive(gw, [InboundSms(from_number=number, text=payload.text, provider_id=payload.id)], project=p)
    return Status(202, {"ids": ids})


# --- keywords --------------------------------------------------------------------------------------
class KeywordIn(Schema):
    keyword: str
    action: str = "reply"
    description: str = ""
    reply: dict[str, str] = Field(default_factory=dict)
    property_name: str = ""
    property_value: str = "{rest}"
    survey: str = ""


class KeywordOut(KeywordIn):
    id: int


def _keyword_check(payload: KeywordIn, project) -> str:
    word = payload.keyword.strip().upper()
    if not word or len(word.split()) != 1 or len(word) > 40:
        raise InputError("VALIDATION_ERROR", "A keyword is one word of at most 40 characters.")
    # the project's own opt-out/opt-in words are handled before keywords, so a keyword could never fire
    reserved = words.opt_out_words(project) | words.opt_in_words(project) | set(words.HELP_WORDS)
    if word in reserved:
        raise InputError("RESERVED_KEYWORD", f"'{word}' is reserved for opt-out, opt-in and help.")
    if payload.action not in Keyword.ACTIONS:
        raise InputError("VALIDATION_ERROR", f"action must be one of {', '.join(Keyword.ACTIONS)}.")
    if payload.action == Keyword.UPDATE_CASE and not payload.property_name.strip():
        raise InputError("VALIDATION_ERROR", "An update_case keyword needs property_name.")
    if payload.action == Keyword.REPLY and not any(v.strip() for v in payload.reply.values()):
        raise InputError("VALIDATION_ERROR", 'A reply keyword needs reply text, e.g. {"en": "…"}.')
    return word


def _kw_json(k: Keyword) -> dict:
    return {
        "id": k.pk,
        "keyword": k.keyword,
        "action": k.action,
        "description": k.description,
        "reply": k.reply,
        "property_name": k.property_name,
        "property_value": k.property_value,
        "survey": k.survey,
    }


@router.post("/projects/{project}/keywords", response={201: KeywordOut}, tags=["keywords"])
def create_keyword(request: HttpRequest, project: str, payload: KeywordIn):
    """A keyword: the first word of an inbound message → reply, update a property of the sender's
    case (`{rest}` = the words after the keyword), or start a survey."""
    p = project_for(request, project)
    word = _keyword_check(payload, p)
    try:
        with transaction.atomic():
            k = Keyword.objects.create(project=p, **{**payload.dict(), "keyword": word})
    except IntegrityError as exc:
        raise InputError("KEYWORD_EXISTS", f"The keyword '{word}' exists in this project.", 409) from exc
    return Status(201, _kw_json(k))


@router.get("/projects/{project}/keywords", response=list[KeywordOut], tags=["keywords"])
def list_keywords(request: HttpRequest, project: str):
    p = project_for(request, project)
    return [_kw_json(k) for k in Keyword.objects.filter(project=p).order_by("keyword")]


def _kw(p, keyword_id: int) -> Keyword:
    k = Keyword.objects.filter(project=p, pk=keyword_id).first()
    if k is None:
        raise InputError("KEYWORD_NOT_FOUND", f"No keyword {keyword_id} in this project.", 404)
    return k


@router.put("/projects/{project}/keywords/{keyword_id}", response=KeywordOut, tags=["keywords"])
def update_keyword(request: HttpRequest, project: str, keyword_id: int, payload: KeywordIn):
    p = project_for(request, project)
    k = _kw(p, keyword_id)
    word = _keyword_check(payload, p)
    for f, v in {**payload.dict(), "keyword": word}.items():
        setattr(k, f, v)
    try:
        with transaction.atomic():
            k.save()
    except IntegrityError as exc:
        raise InputError("KEYWORD_EXISTS", f"The keyword '{word}' exists in this project.", 409) from exc
    return _kw_json(k)


@router.delete("/projects/{project}/keywords/{keyword_id}", response={204: None}, tags=["keywords"])
def delete_keyword(request: HttpRequest, project: str, keyword_id: int):
    _kw(project_for(request, project), keyword_id).delete()
    return Status(204, None)


# --- consent ---------------------------------------------------------------------------------------
