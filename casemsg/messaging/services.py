"""Sending one message on request (API, CLI): validate, record the event, hand to the pipeline."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from casemsg.cases.models import Case
from casemsg.core.errors import InputError
from casemsg.messaging import pipeline, render
from casemsg.messaging.models import Message, MessagingEvent
from casemsg.projects.models import Project
from casemsg.workers.models import MobileWorker


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


def validate_content(text: str | None, translations: dict[str, str] | None) -> None:
    if text is None and not translations:
        raise InputError("MESSAGE_BLANK", "Give `text` or `translations`.")
    templates = ([text] if text is not None else []) + list((translations or {}).values())
    for t in templates:
        if not isinstance(t, str):
            raise InputError("VALIDATION_ERROR", "Texts and translations must be strings.")
        problem = render.check_template(t)
        if problem:
            raise InputError("CANNOT_RENDER_MESSAGE", f"The message template is malformed: {problem}.")
    if not any(t.strip() for t in templates):
        raise InputError("MESSAGE_BLANK", "The message text is empty.")


def send(project: Project, req: SendRequest, source: str = "api") -> Message:
    if req.channel not in ("sms", "email"):
        raise InputError("VALIDATION_ERROR", "channel must be 'sms' or 'email'.")
    validate_content(req.text, req.translations)
    if req.subject and (problem := render.check_template(req.subject)):
        raise InputError("CANNOT_RENDER_MESSAGE", f"The subject template is malformed: {problem}.")
    case = worker = None
    if (req.case_id is None) == (req.mobile_worker_id is None):
        raise InputError("VALIDATION_ERROR", "recipient needs exactly one of case_id or mobile_worker_id.")
    if req.case_id is not None:
        case = Case.objects.filter(project=project, case_id=req.case_id).first()
        if case is None:
            raise InputError("CASE_NOT_FOUND", f"No case '{req.case_id}' in this project.", 404)
    else:
        worker = MobileWorker.objects.filter(project=project, pk=req.mobile_worker_id).first()
        if worker is None:
            detail = f"No mobile worker {req.mobile_worker_id} in this project."
            raise InputError("MOBILE_WORKER_NOT_FOUND", detail, 404)
    with transaction.atomic():
        event = MessagingEvent.objects.create(project=project, source=source, description=f"{req.channel} by {source}")
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
                )
            ],
            event,
        )
        if msg.status == Message.FAILED:
            event.status, event.error = "error", msg.error
            event.save(update_fields=["status", "error"])
    return msg
