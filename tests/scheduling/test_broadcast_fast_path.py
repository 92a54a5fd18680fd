"""The tick's set-wise path (one INSERT … SELECT of messages and one UPDATE of instances per group of
broadcast instances sharing zone, anchor and event), and a "now" broadcast queued when it is created,
store exactly what the instance-by-instance path stores: the same messages (content, default language,
event, case, send key, due time) and the same instances afterwards."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from casemsg.messaging.models import Message
from casemsg.scheduling import tick
from casemsg.scheduling.models import Broadcast
from tests.scheduling.engine_helpers import (
    KOLKATA,
    LORD_HOWE,
    NAIROBI,
    NEW_YORK,
    broadcast,
    cases,
    instances_of,
    run_ticks,
    utc,
)

NOW = utc(2027, 3, 10, 12, 0)
CONTENT = {"text": "Hello {case.name}", "translations": {"en": "Hi {case.name}"}}
SCHEDULES = [
    {"type": "now"},
    {"type": "daily", "time": "09:00", "count": 3},
    {"type": "daily", "times": ["02:30", "21:00"], "count": 4, "time_zone": NEW_YORK},
]


def _snapshot(b: Broadcast) -> dict[str, Any]:
    b.refresh_from_db()
    insts = {i.pk: i for i in instances_of(b)}
    msgs = Message.objects.filter(event_id=b.event_id).order_by("case_id", "next_attempt_on")
    out_msgs = []
    for m in msgs:
        _si, inst_pk, iteration = m.send_key.split(":")
        inst = insts[int(inst_pk)]
        assert inst.case_id == m.case_id
        out_msgs.append(
            (
                m.case_id,
                int(iteration),
                m.channel,
                m.content,
                m.default_language,
                m.subject,
                m.status,
                m.next_attempt_on,
                m.project_id,
                m.to,
                m.kind,
            )
        )
    out_insts = []
    for i in insts.values():
        last = dict(i.last_event)
        if "send_key" in last:  # (a "now" broadcast queued when created records no key: it is si:<id>:<n>)
            assert last.pop("send_key") == f"si:{i.pk}:{last['iteration']}"
        out_insts.append(
            (i.case_id, i.iteration, i.next_due_utc, i.next_local, i.active, i.end_reason, i.ended_on, i.claim, last)
        )
    return {"messages": out_msgs, "instances": sorted(out_insts, key=str), "status": b.status}


def _run(project: Any, schedule: dict, **body: Any) -> dict[str, Any]:
    b = broadcast(project, NOW, schedule, content=CONTENT, default_language="en", **body)
    run_ticks(NOW, NOW + timedelta(days=4), step=timedelta(hours=5))
    return _snapshot(b)


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_the_set_wise_tick_queues_what_the_instance_by_instance_tick_queues(project, monkeypatch, schedule):
    cases(
        project, {"time_zone": NAIROBI}, {"time_zone": NEW_YORK}, {"time_zone": KOLKATA}, {"time_zone": LORD_HOWE}, {}
    )
    cases(project, {"time_zone": NAIROBI}, {"time_zone": "Not/AZone"})
    calls: list[int] = []
    real, real_started = tick._advance_group, tick.queue_started
    monkeypatch.setattr(tick, "_advance_group", lambda *a: calls.append(1) or real(*a))
    # a "now" broadcast queues set-wise when it is created
    monkeypatch.setattr(tick, "queue_started", lambda *a: calls.append(1) or real_started(*a))
    fast = _run(project, schedule, name="fast")
    assert calls, "the set-wise path was taken"
    assert fast["messages"]
    monkeypatch.setattr(tick, "_set_wise", lambda plan: False)
    calls.clear()
    slow = _run(project, schedule, name="slow")
    assert not calls
    assert fast == slow


def test_a_second_tick_over_the_same_occurrence_queues_nothing_more(project):
    cases(project, {"time_zone": NAIROBI}, {"time_zone": NEW_YORK})
    b = broadcast(project, NOW, {"type": "now"}, content=CONTENT)
    assert tick.tick(NOW) == 0  # queued when it was created
    assert Message.objects.filter(event_id=b.event_id).count() == 2
    # replay the occurrence, as a crashed-then-retried tick would
    for i in instances_of(b):
        type(i).objects.filter(pk=i.pk).update(active=True, next_due_utc=NOW, iteration=0, end_reason="", claim="")
    assert tick.tick(NOW) == 2
    b.refresh_from_db()
    assert Message.objects.filter(event_id=b.event_id).count() == 2
