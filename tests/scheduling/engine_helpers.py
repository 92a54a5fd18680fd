"""Shared pieces of the scheduling-engine tests: cases in chosen zones, broadcasts through the service,
ticks driven by explicit instants (a frozen clock: `now` is always passed, nothing sleeps)."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from casemsg.cases.models import Case
from casemsg.cases.services import CaseChange, bulk_upsert
from casemsg.messaging.models import Message
from casemsg.projects.models import Project
from casemsg.scheduling import services, tick
from casemsg.scheduling.models import Broadcast, ConditionalAlert, ScheduleInstance

_numbers = itertools.count(20000000)
NAIROBI, NEW_YORK, KOLKATA, LORD_HOWE = "Africa/Nairobi", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def cases(project: Project, *props: dict[str, str], case_type: str = "mother", **fields: Any) -> list[Case]:
    """One case per properties dict, each with its own Kenyan number."""
    changes = []
    for i, p in enumerate(props):
        number = f"2547{next(_numbers)}"
        changes.append(
            CaseChange(
                case_type=case_type,
                name=p.get("name", f"Case {i}"),
                owner_id=fields.get("owner_id"),
                parent_id=fields.get("parent_id"),
                properties={"contact_phone_number": number, **{k: v for k, v in p.items() if k != "name"}},
            )
        )
    return bulk_upsert(project, changes)


def broadcast(
    project: Project, now: datetime, schedule: dict, recipients: dict | None = None, **body: Any
) -> Broadcast:
    data = {
        "name": body.pop("name", "Reminder"),
        "content": body.pop("content", {"text": "Hello {case.name}"}),
        "recipients": recipients or {"case_type": "mother"},
        "schedule": schedule,
        **body,
    }
    return services.create_broadcast(project, data, now)


def run_ticks(start: datetime, end: datetime, step: timedelta = timedelta(minutes=30)) -> int:
    """Tick at every `step` from `start` to `end` inclusive, as a worker's ticker would."""
    done = 0
    at = start
    while at <= end:
        done += tick.tick(at)
        at += step
    return done


def messages(owner: Broadcast | ConditionalAlert | None = None) -> list[Message]:
    qs = Message.objects.exclude(send_key="")
    if owner is not None:
        owner.refresh_from_db()
        qs = qs.filter(event_id=owner.event_id)
    return list(qs.select_related("case", "worker").order_by("next_attempt_on", "pk"))


def instances_of(owner: Broadcast | ConditionalAlert, **filters: Any) -> list[ScheduleInstance]:
    key = "broadcast" if isinstance(owner, Broadcast) else "alert"
    return list(ScheduleInstance.objects.filter(**{key: owner}, **filters).order_by("pk"))


def zone_of(m: Message) -> str:
    assert m.case is not None
    return m.case.properties["time_zone"]


def due_times(msgs: Iterable[Message]) -> list[datetime]:
    return [m.next_attempt_on for m in msgs if m.next_attempt_on is not None]
