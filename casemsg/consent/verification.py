"""Verifying a mobile worker's number by SMS handshake: a code is sent, the worker replies with it,
and the number becomes verified — and two-way, unless another contact registered it first."""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from casemsg.consent import texts
from casemsg.consent.models import ConsentRequest
from casemsg.contacts.status import resolve_language
from casemsg.core import actor, errors, phone
from casemsg.core.errors import InputError
from casemsg.messaging import pipeline, render
from casemsg.messaging.models import Message, MessagingEvent
from casemsg.projects.models import Project
from casemsg.workers import services as worker_services
from casemsg.workers.models import MobileWorker

EXPIRY = timedelta(hours=24)


def request_verification(project: Project, worker: MobileWorker, number: str) -> ConsentRequest:
    chk = phone.check(number)
    if chk.number is None or chk.number not in {p["number"] for p in worker.phone_numbers or []}:
        raise InputError(errors.INVALID_PHONE_NUMBER, f"'{number}' is not one of this mobile worker's numbers.")
    if not worker.active:
        raise InputError(errors.CONTACT_IS_INACTIVE, "This mobile worker is inactive.")
    now = timezone.now()
    code = f"{secrets.randbelow(10**6):06d}"
    # in the worker's language (its project's languages' fallback chain): the project's verification_code
    language = resolve_language(worker.language_code, project)[0]
    text, lang = texts.pick(project, "verification_code", language, code=code)
    with transaction.atomic():
        ConsentRequest.objects.filter(
            kind=ConsentRequest.VERIFICATION,
            worker=worker,
            status__in=[ConsentRequest.QUEUED, ConsentRequest.PENDING],
        ).update(status=ConsentRequest.EXPIRED, answered_on=now)
        req = ConsentRequest.objects.create(
            kind=ConsentRequest.VERIFICATION,
            project=project,
            worker=worker,
            phone_number=chk.number,
            text_shown=text,
            code=code,
            source="api",
            created_on=now,
            expires_on=now + EXPIRY,
        )
        event = MessagingEvent.objects.create(project=project, source="system", description="number verification")
        # The code goes to exactly this number (a worker may have several), so it is addressed by number.
        pipeline.queue(
            project,
            [
                pipeline.MessageSpec(
                    to=chk.number,
                    text=render.literal(text),
                    kind=Message.OPT_IN_REQUEST,
                    translations={lang: render.literal(text)},
                    default_language=lang,
                )
            ],
            event,
        )
    return req


def answer_verification(req: ConsentRequest, text: str) -> bool | None:
    """True: verified; False: a wrong code; None: not an attempt at a code."""
    digits = "".join(ch for ch in text if ch.isdigit())
    if not digits:
        return None
    if digits != req.code:
        return False
    now = timezone.now()
    with transaction.atomic():
        req.status, req.answer, req.answered_on = ConsentRequest.ANSWERED, text, now
        req.save(update_fields=["status", "answer", "answered_on"])
        worker = MobileWorker.objects.select_for_update().get(pk=req.worker_id or 0)
        numbers = [
            {**p, "verified": True} if p["number"] == req.phone_number else p for p in worker.phone_numbers or []
        ]
        # the person replied with the code: for a consent-region number, that is their consent
        with actor.acting_as("verification", ""):
            worker_services.update_worker(req.project, worker, worker_services.WorkerChange(phone_numbers=numbers))
    return True
