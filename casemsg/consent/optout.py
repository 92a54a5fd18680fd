"""Opt-out survives every case change: a number that said STOP gets nothing more until it says START.
Every change is written to the consent ledger.

Its reach follows who owns the channel the word came through (docs/security.md, "Authority"): through an
installation gateway (or a provider's report on one) the opt-out is installation-wide and blocks every
project; through a project's own gateway or its phone simulator it is that project's opt-out only, which
adds to the installation one and never lifts it. `scope` is that project, or None for the installation."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from casemsg.cases.models import Case
from casemsg.consent.ledger import entry
from casemsg.consent.models import ConsentRecord
from casemsg.consent.signals import ledger_written
from casemsg.contacts import optouts
from casemsg.gateways.models import Gateway
from casemsg.messaging.models import Message
from casemsg.projects.models import Project
from casemsg.workers.models import MobileWorker


def is_opted_out(number: str, scope: Project | None = None) -> bool:
    """Opted out for this project (the installation's opt-out, or the project's own); with no project, the
    installation's."""
    return optouts.is_opted_out(number, scope.pk if scope is not None else None)


def opt_out(
    number: str,
    *,
    project: Project | None = None,
    case: Case | None = None,
    worker: MobileWorker | None = None,
    source: str = "keyword",
    gateway_name: str = "",
    text_shown: str = "",
    answer: str = "",
    scope: Project | None = None,
) -> bool:
    """Record the opt-out (installation-wide, or only `scope`'s); returns True when the number was not
    opted out (there) before."""
    now = timezone.now()
    with transaction.atomic():
        created = optouts.add(
            number, scope.pk if scope is not None else None, on=now, gateway_name=gateway_name, source=source
        )
        _write(number, "opt_out", source, now, project, case, worker, text_shown, answer)
    return created


def opt_in(
    number: str,
    *,
    project: Project | None = None,
    case: Case | None = None,
    worker: MobileWorker | None = None,
    source: str = "keyword",
    text_shown: str = "",
    answer: str = "",
    scope: Project | None = None,
) -> bool:
    """Lift the opt-out; returns True when the number was opted out (there) before.

    With `scope` (a START through a project's own channel) only that project's opt-out is lifted: the
    installation-wide one stays. Without (a START through an installation gateway, the person speaking to
    the installation) the installation's and every project's opt-out of the number are lifted."""
    now = timezone.now()
    with transaction.atomic():
        lifted = optouts.lift(number, scope.pk if scope is not None else None)
        _write(number, "opt_in", source, now, project, case, worker, text_shown, answer)
    return lifted


def _write(
    number: str,
    kind: str,
    source: str,
    now: datetime,
    project: Project | None,
    case: Case | None,
    worker: MobileWorker | None,
    text_shown: str,
    answer: str,
) -> None:
    """The ledger row of an opt-out or opt-in, announced (event webhooks)."""
    record = entry(
        number,
        kind,
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


def on_opt_out_reported(sender: object, *, messages: list[Message], **_kw: object) -> None:
    """A gateway said these numbers opted out (connected in ConsentConfig.ready): recorded like a STOP
    through that gateway — installation-wide for an installation gateway, the project's own for a
    project's gateway."""
    owners = dict(Gateway.objects.filter(pk__in={m.gateway_id for m in messages}).values_list("pk", "project_id"))
    for m in messages:
        scope = m.project if m.gateway_id is not None and owners.get(m.gateway_id) is not None else None
        opt_out(
            m.to,
            project=m.project,
            source="gateway",
            gateway_name=m.gateway_name,
            answer=m.error_detail,
            scope=scope,
        )
