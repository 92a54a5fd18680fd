"""`casemsg broadcasts list|show|pause|resume|cancel|run`, through Django's call_command."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from casemsg.cases.services import CaseChange, bulk_upsert
from casemsg.core import errors
from casemsg.messaging import pipeline
from casemsg.scheduling import services, tick
from casemsg.scheduling.models import Broadcast, ScheduleInstance
from tests.conftest import sandbox_gateway


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("broadcasts", *args, stdout=out)
    return out.getvalue()


def mothers(project, *names: str, number: str = "254711000001"):
    return bulk_upsert(
        project,
        [
            CaseChange(case_type="mother", name=n, properties={"contact_phone_number": number if n != "Bad" else "12"})
            for n in names
        ],
    )


@pytest.fixture
def broadcast(project) -> Broadcast:
    mothers(project, "Asha", "Bad")
    start = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()
    return services.create_broadcast(
        project,
        {
            "name": "Clinic reminder",
            "content": {"text": "Hello {case.name}"},
            "recipients": {"case_type": "mother"},
            "schedule": {"type": "weekly", "weekdays": ["mon", "thu"], "time": "09:00", "start_date": start},
        },
    )


def test_list_pause_resume(project, broadcast):
    out = run("list", "--project", project.slug)
    assert f"{broadcast.pk}  active" in out and "Clinic reminder" in out
    assert "weekly on Mon, Thu at 09:00" in out and "2 recipients (2 running), 0 sent, 0 failed" in out

    out = run("pause", str(broadcast.pk), "--project", project.slug)
    assert f"Broadcast {broadcast.pk} paused." in out and "nothing due" in out
    broadcast.refresh_from_db()
    assert broadcast.status == Broadcast.PAUSED
    assert run("list", "--project", project.slug, "--status", "active").strip() == "No broadcasts."

    data = json.loads(run("resume", str(broadcast.pk), "--project", project.slug, "--json"))
    assert data["status"] == "active" and data["next_due_utc"] and data["recipient_count"] == 2
    shown = run("show", str(broadcast.pk), "--project", project.slug)
    assert "recipients: open mother cases — read again at each send" in shown and "next reading" in shown

    listed = json.loads(run("list", "--project", project.slug, "--json"))
    assert listed["count"] == 1 and listed["items"][0]["id"] == broadcast.pk


def test_show_lists_failures_with_their_reasons(project):
    sandbox_gateway()
    mothers(project, "Asha", "Bad")
    b = services.create_broadcast(
        project,
        {
            "name": "Now",
            "content": {"text": "Hi {case.name}"},
            "recipients": {"case_type": "mother"},
            "schedule": {"type": "now"},
        },
    )
    tick.tick()
    pipeline.deliver_due()
    out = run("show", str(b.pk), "--project", project.slug)
    assert f"{b.pk}  done" in out and "1 sent, 1 failed" in out
    assert f"1  {errors.INVALID_PHONE_NUMBER}: Invalid phone number" in out
    assert "'Hi Asha'" in out


def test_cancel_then_run_is_refused_and_run_starts_new_recipients(project, broadcast):
    mothers(project, "Chausiku")
    out = run("run", str(broadcast.pk), "--project", project.slug)
    assert "started for 1 new recipient." in out
    assert ScheduleInstance.objects.filter(broadcast=broadcast, active=True).count() == 3
    assert "started for 0 new recipients." in run("run", str(broadcast.pk), "--project", project.slug)

    assert "cancelled" in run("cancel", str(broadcast.pk), "--project", project.slug)
    with pytest.raises(CommandError, match=errors.SCHEDULE_ENDED):
        run("run", str(broadcast.pk), "--project", project.slug)
    with pytest.raises(CommandError, match=errors.BROADCAST_NOT_FOUND):
        run("show", "999999", "--project", project.slug)
    with pytest.raises(CommandError, match="No project"):
        run("list", "--project", "nope")
