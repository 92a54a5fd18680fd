"""Sending one message on request (API, CLI, the pages, a gateway's test message): validate, record the
event, hand to the pipeline."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from casemsg.cases.models import Case
from casemsg.core import errors
from casemsg.core.errors import InputError
from casemsg.gateways.models import Gateway
from casemsg.messaging import pipeline, render
from casemsg.messaging.models import IdempotencyKey, Message, MessagingEvent
from casemsg.projects.models import Project
from casemsg.workers.models import MobileWorker

log = logging.getLogger(__name__)


@dataclass
class SendRequest:
    channel: str = "sms"
    case_id: str | None = None
    mobile_worker_id: int | None = None
    text: str | None = None
    translations: dict[str, str] | None = None
    subject: str = ""
    html: str = ""
    default_language: str = ""
    # channel whatsapp: {"template", "language", "variables", "fallback_sms"} (validate_whatsapp)
    whatsapp: dict[str, Any] | None = None


def validate_whatsapp(spec: dict[str, Any] | None) -> None:
    """A WhatsApp content's template part: a template name, its language, its variables (texts that may
    use {case.…}) and whether SMS may replace it. The template itself is checked at send time (synced,
    approved)."""
    if spec is None:
        return
    allowed = {"template", "language", "variables", "fallback_sms"}
    if not isinstance(spec, dict) or set(spec) - allowed:
        raise InputError(errors.VALIDATION_ERROR, f"whatsapp takes only {', '.join(sorted(allowed))}.")
    variables = spec.get("variables") or []
    values = list(variables.values()) if isinstance(variables, dict) else variables
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise InputError(errors.VALIDATION_ERROR, "whatsapp.variables is a list (or an object) of texts.")
    for v in values:
        if problem := render.check_template(v):
            raise InputError(errors.CANNOT_RENDER_MESSAGE, f"A WhatsApp template variable is malformed: {problem}.")
    if spec.get("template") is not None and not isinstance(spec.get("template"), str):
        raise InputError(errors.VALIDATION_ERROR, "whatsapp.template is a template's name.")


def validate_content(text: str | None, translations: dict[str, str] | None) -> None:
    if text is None and not translations:
        raise InputError(errors.MESSAGE_BLANK, "Give `text` or `translations`.")
    templates = ([text] if text is not None else []) + list((translations or {}).values())
    for t in templates:
        if not isinstance(t, str):
            raise InputError(errors.VALIDATION_ERROR, "Texts and translations must be strings.")
        problem = render.check_template(t)
        if problem:
            raise InputError(errors.CANNOT_RENDER_MESSAGE, f"The message template is malformed: {problem}.")
    if not any(t.strip() for t in templates):
        raise InputError(errors.MESSAGE_BLANK, "The message text is empty.")


IDEMPOTENCY_WINDOW = timedelta(hours=24)
IDEMPOTENCY_KEY_MAX = 255


def send_once(project: Project, req: SendRequest, key: str | None, source: str = "api") -> Message:
    """`send`, unless a request with the same `Idempotency-Key` came within 24 hours: then the message it
    made is answered again and nothing is sent twice. The same key with another body is refused (409)."""
    if key is None:
        return send(project, req, source)
    if not key.strip() or len(key) > IDEMPOTENCY_KEY_MAX or "\x00" in key:
        raise InputError(errors.INVALID_VALUE, f"Idempotency-Key must be 1–{IDEMPOTENCY_KEY_MAX} characters.")
    digest = hashlib.sha256(json.dumps(asdict(req), sort_keys=True).encode()).hexdigest()
    now = timezone.now()
    # a key older than the window is free again
    IdempotencyKey.objects.filter(project=project, key=key, created_on__lt=now - IDEMPOTENCY_WINDOW).delete()
    try:
        with transaction.atomic():
            row = IdempotencyKey.objects.create(project=project, key=key, request_hash=digest, created_on=now)
            msg = send(project, req, source)
            row.message = msg
            row.save(update_fields=["message"])
            return msg
    except IntegrityError:
        pass  # the key was used before (or a concurrent request holds it): answer with its message
    earlier = IdempotencyKey.objects.select_related("message").filter(project=project, key=key).first()
    if earlier is None or earlier.message is None:
        raise InputError(
            errors.IDEMPOTENCY_KEY_IN_USE, "A request with this Idempotency-Key is still being handled.", 409
        )
    if earlier.request_hash != digest:
        raise InputError(
            errors.IDEMPOTENCY_KEY_IN_USE,
            "This Idempotency-Key was used with another request body within the last 24 hours.",
            409,
        )
    return earlier.message


def send(project: Project, req: SendRequest, source: str = "api", person: tuple[str, str] | None = None) -> Message:
    """Queue one message through the pipeline, with its messaging event. `person` (username, name): a person sent
    it from the pages (a send form, a conversation's reply): the event's source is `person`, its source_id the
    username and its description the name, so the reports count it under that person."""
    if req.channel not in ("sms", "email", "whatsapp"):
        raise InputError(errors.VALIDATION_ERROR, "channel must be 'sms', 'email' or 'whatsapp'.")
    validate_content(req.text, req.translations)
    validate_whatsapp(req.whatsapp)
    if req.subject and (problem := render.check_template(req.subject)):
        raise InputError(errors.CANNOT_RENDER_MESSAGE, f"The subject template is malformed: {problem}.")
    case = worker = None
    if (req.case_id is None) == (req.mobile_worker_id is None):
        raise InputError(errors.VALIDATION_ERROR, "recipient needs exactly one of case_id or mobile_worker_id.")
    if req.case_id is not None:
        case = Case.objects.filter(project=project, case_id=req.case_id).first()
        if case is None:
            raise InputError(errors.CASE_NOT_FOUND, f"No case '{req.case_id}' in this project.", 404)
    else:
        worker = MobileWorker.objects.filter(project=project, pk=req.mobile_worker_id or 0).first()
        if worker is None:
            detail = f"No mobile worker {req.mobile_worker_id} in this project."
            raise InputError(errors.MOBILE_WORKER_NOT_FOUND, detail, 404)
    with transaction.atomic():
        if person is not None:
            username, name = person
            event = MessagingEvent.objects.create(
                project=project, source="person", source_id=username[:64], description=(name or username)[:255]
            )
        else:
            event = MessagingEvent.objects.create(
                project=project, source=source, description=f"{req.channel} by {source}"
            )
        (msg,) = pipeline.queue(
            project,
            [
                pipeline.MessageSpec(
                    channel=req.channel,
                    case=case,
                    worker=worker,
                    text=req.text,
                    translations=req.translations,
                    subject=req.subject,
                    html=req.html,
                    default_language=req.default_language,
                    whatsapp=req.whatsapp if req.channel == "whatsapp" else None,
                )
            ],
            event,
        )
        if msg.status == Message.FAILED:
            event.status, event.error = "error", msg.error
            event.save(update_fields=["status", "error"])
    return msg


def resend(project: Project, message_id: int) -> Message:
    """Queue a failed outbound message again: a new message with the same content to the same contact,
    through the one pipeline (its contact checks run afresh, so a fixed number now passes). The failed
    one stays in the log as it was."""
    old = Message.objects.filter(project=project, pk=message_id).select_related("case", "worker").first()
    if old is None:
        raise InputError(errors.MESSAGE_NOT_FOUND, f"No message {message_id} in this project.", 404)
    if old.direction != Message.OUT or old.status != Message.FAILED:
        raise InputError(errors.VALIDATION_ERROR, "Only a failed outbound message can be resent.")
    if old.case is None and old.worker is None:
        raise InputError(errors.VALIDATION_ERROR, "The message's contact no longer exists; it cannot be resent.")
    content = old.content or {}
    with transaction.atomic():
        event = MessagingEvent.objects.create(
            project=project, source="api", description=f"{old.channel} resend of message {old.pk}"
        )
        (msg,) = pipeline.queue(
            project,
            [
                pipeline.MessageSpec(
                    channel=old.channel,
                    case=old.case,
                    worker=old.worker,
                    text=content.get("text"),
                    translations=content.get("translations"),
                    subject=content.get("subject") or "",
                    html=old.html,
                    default_language=old.default_language,
                )
            ],
            event,
        )
        if msg.status == Message.FAILED:
            event.status, event.error = "error", msg.error
            event.save(update_fields=["status", "error"])
    return msg


def send_test(project: Project, gateway: Gateway, number: str, text: str) -> Message:
    """Queue `text` (as typed: braces are not placeholders) to `number` through this gateway, with the
    checks every message gets (opt-out, consent, country, length), then deliver at once like the worker
    would; returns the message as it ended (or still queued, when something delays it)."""
    with transaction.atomic():
        event = MessagingEvent.objects.create(
            project=project, source="system", description=f"test message through gateway {gateway.name}"
        )
        spec = pipeline.MessageSpec(to=number, text=render.literal(text), gateway=gateway)
        (msg,) = pipeline.queue(project, [spec], event)
    if msg.status == Message.QUEUED:
        try:
            pipeline.deliver_due(max_batches=1)
        except Exception:  # noqa: BLE001 — the message is stored and the worker retries; the page must not fail
            log.exception("gateway test: delivering failed; the worker will retry")
        msg.refresh_from_db()
    return msg


def withdraw_queued(event_id: int, error: str, detail: str) -> int:
    """Fail, in one statement, the outbound messages of an event still queued (not yet handed to a
    gateway), with the reason: a cancelled broadcast's. Returns how many."""
    return Message.objects.filter(event_id=event_id, direction=Message.OUT, status=Message.QUEUED).update(
        status=Message.FAILED, error=error, error_detail=detail, next_attempt_on=None, claim=""
    )
