"""Opt-out is global per number and survives every case change: a number that said STOP gets nothing
more from any project until it says START. Every change is written to the consent ledger."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from casemsg.consent.ledger import entry
from casemsg.consent.models import ConsentRecord
from casemsg.consent.signals import ledger_written
from casemsg.contacts.models import OptOut
from casemsg.messaging.models import Message


def is_opted_out(number: str) -> bool:
    return OptOut.objects.filter(phone_number=number).exists()


def opt_out(
    number: str,
    *,
    project=None,
    case=None,
    worker=None,
    source: str = "keyword",
    gateway_name: str = "",
    text_shown: str = "",
    answer: str = "",
) -> bool:
    """Record the opt-out; returns True when the number was not opted out before."""
    now = timezone.now()
    with transaction.atomic():
        _row, created = OptOut.objects.get_or_create(
            phone_number=number, defaults={"opted_out_on": now, "gateway_name": gateway_name, "source": source}
        )
        record = entry(
            number,
            "opt_out",
            source,
            created_on=now,
            project=project,
            case=case,
            worker=worker,
            text_shown=text_shown,
            answer=answer,
        )
        record.save()
        ledger_written.send(ConsentRecord, records=[record])
    return created


def opt_in(
    number: str,
    *,
    project=None,
    case=None,
    worker=None,
    source: str = "keyword",
    text_shown: str = "",
    answer: str = "",
) -> bool:
    """Lift the opt-out; returns True when the number was opted out before."""
    now = timezone.now()
    with transaction.atomic():
        deleted, _ = OptOut.objects.filter(phone_number=number).delete()
        record = entry(
            number,
            "opt_in",
            source,
            created_on=now,
            project=project,
            case=case,
            worker=worker,
            text_shown=text_shown,
            answer=answer,
        )
        record.save()
        ledger_written.send(ConsentRecord, records=[record])
    return bool(deleted)


def on_opt_out_reported(sender: object, *, messages: list[Message], **_kw: object) -> None:
    """A gateway said these numbers opted out (connected in ConsentConfig.ready): recorded like a STOP."""
    for m in messages:
        opt_out(m.to, project=m.project, source="gateway", gateway_name=m.gateway_name, answer=m.error_detail)
