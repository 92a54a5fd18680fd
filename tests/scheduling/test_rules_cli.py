"""`casemsg alerts list|show|pause|resume|run`."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from casemsg.cases.services import CaseChange, bulk_upsert
from casemsg.scheduling import services
from casemsg.scheduling.models import ConditionalAlert, ScheduleInstance


def _alerts(*args: str) -> str:
    out = StringIO()
    call_command("alerts", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def alert(project) -> ConditionalAlert:
    bulk_upsert(
        project,
        [CaseChange(case_type="mother", properties={"risk": "high" if i % 2 else "low"}) for i in range(30)],
    )
    return services.create_alert(
        project,
        {
            "name": "High risk follow-up",
            "case_type": "mother",
            "criteria": [{"property": "risk", "operator": "equal", "value": "high"}],
            "content": {"channel": "sms", "text": "Please come to the clinic"},
            "schedule": {"type": "offsets", "unit": "days", "offsets": [0, 7]},
            "recipients": ["case"],
        },
    )


def test_run_evaluates_every_case_and_list_and_show_say_so(project, alert) -> None:
    assert "running 0% (0/30)" in _alerts("list", "--project", project.slug)
    out = _alerts("run", "--project", project.slug, str(alert.pk), "--chunk", "7")
    assert "Evaluated 30 cases of type mother: started 15 schedules, ended 0" in out
    assert "up to date" in out
    assert ScheduleInstance.objects.filter(alert=alert, active=True).count() == 15
    listing = _alerts("list", "--project", project.slug)
    assert "High risk follow-up" in listing and "up to date" in listing and "15" in listing
    shown = _alerts("show", "--project", project.slug, str(alert.pk))
    assert "open mother cases where risk is high" in shown
    assert "15 running, 0 ended" in shown
    assert "after 0, 7 days" in shown


def test_pause_and_resume(project, alert) -> None:
    assert "paused" in _alerts("pause", "--project", project.slug, str(alert.pk))
    alert.refresh_from_db()
    assert alert.status == ConditionalAlert.PAUSED
    with pytest.raises(CommandError, match="resume it first"):
        _alerts("run", "--project", project.slug, str(alert.pk))
    assert "active again" in _alerts("resume", "--project", project.slug, str(alert.pk))
    alert.refresh_from_db()
    assert alert.status == ConditionalAlert.ACTIVE and alert.run_status == ConditionalAlert.RUNNING


def test_unknown_project_alert_and_chunk(project, alert) -> None:
    with pytest.raises(CommandError, match="No project 'nope'"):
        _alerts("list", "--project", "nope")
    with pytest.raises(CommandError, match="has no alert 9999"):
        _alerts("show", "--project", project.slug, "9999")
    with pytest.raises(CommandError, match="--chunk"):
        _alerts("run", "--project", project.slug, str(alert.pk), "--chunk", "0")
