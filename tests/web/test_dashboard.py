"""The project dashboard: its figures per day on the project's clock, by status, direction and failure
reason, the queue, consent and opt-outs — from a fixed number of queries, passed to Chart.js escaped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from casemsg.cases import services as cases
from casemsg.consent.models import ConsentRecord
from casemsg.contacts.models import OptOut
from casemsg.messaging.models import Message
from casemsg.projects.services import add_member, update_settings
from casemsg.web.views.projects import DAYS, dashboard

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
KE = "254712345678"


def msg(project, when: datetime, status: str, direction: str = Message.OUT, error: str = "") -> Message:
    return Message(project=project, direction=direction, status=status, error=error, to=KE, created_on=when)


@pytest.fixture
def figures(project, other_project):
    update_settings(project, {"default_time_zone": "America/Los_Angeles"})  # UTC-8 in December
    rows = [
        # 03:00 UTC on Dec 2 is still Dec 1 in Los Angeles
        msg(project, datetime(2026, 12, 2, 3, 0, tzinfo=UTC), Message.DELIVERED),
        msg(project, datetime(2026, 12, 2, 9, 0, tzinfo=UTC), Message.DELIVERED),
        msg(project, datetime(2026, 12, 2, 9, 0, tzinfo=UTC), Message.FAILED, error="NO_CONSENT"),
        msg(project, datetime(2026, 11, 20, 9, 0, tzinfo=UTC), Message.FAILED, error="NO_CONSENT"),
        msg(project, datetime(2026, 11, 20, 9, 0, tzinfo=UTC), Message.FAILED, error="</script><b>x"),
        msg(project, datetime(2026, 12, 2, 10, 0, tzinfo=UTC), Message.RECEIVED, direction=Message.IN),
        msg(project, NOW - timedelta(hours=5), Message.QUEUED),
        msg(project, NOW - timedelta(minutes=5), Message.QUEUED),
        # older than the window: counted in the queue only
        msg(project, NOW - timedelta(days=40), Message.QUEUED),
        msg(project, NOW - timedelta(days=40), Message.FAILED, error="NO_CONSENT"),
        # another project's rows count nowhere
        msg(other_project, NOW, Message.FAILED, error="INVALID_PHONE_NUMBER"),
    ]
    Message.objects.bulk_create(rows)
    cases.create_case(
        project, cases.CaseChange(case_id="c1", case_type="mother", name="A", properties={"contact_phone_number": KE})
    )
    OptOut.objects.create(phone_number=KE, opted_out_on=NOW)
    OptOut.objects.create(phone_number="254700000009", opted_out_on=NOW)  # nobody in this project
    for kind in ("consent", "consent", "opt_out"):
        ConsentRecord.objects.create(phone_number=KE, project=project, kind=kind, source="api", created_on=NOW)
    ConsentRecord.objects.create(phone_number=KE, project=other_project, kind="consent", source="api", created_on=NOW)
    return project


def test_figures_per_local_day_status_direction_and_reason(figures):
    d = dashboard(figures, now=NOW)
    days = d["chart"]["days"]
    assert len(days) == DAYS and days[-1] == "2026-12-02" and days[0] == "2026-11-03"  # today in Los Angeles: Dec 2
    series = {s["label"]: s["data"] for s in d["chart"]["series"]}
    assert series["delivered"][days.index("2026-12-01")] == 1 and series["delivered"][days.index("2026-12-02")] == 1
    assert series["failed"][days.index("2026-11-20")] == 2 and sum(series["failed"]) == 3
    assert "sending" not in series  # no empty lines in the chart
    assert dict(d["by_status"])["failed"] == 3 and dict(d["by_status"])["queued"] == 2
    assert (d["inbound"], d["outbound"]) == (1, 7)
    assert [(e.code, n) for e, n in d["failures"]] == [("NO_CONSENT", 2), ("</script><b>x", 1)]
    assert d["queue"] == 3 and d["oldest_age"] == timedelta(days=40)
    assert d["consent"]["consent"] == 2 and d["consent"]["opt_out"] == 1
    assert d["opted_out"] == 1


def test_dashboard_page_in_a_fixed_number_of_queries_with_escaped_chart_data(figures, django_assert_max_num_queries):
    user = get_user_model().objects.create_user("ann", password="pw-ann-1")
    add_member(figures, user, "viewer")
    c = Client()
    c.force_login(user)
    c.get(f"/projects/{figures.slug}/")  # warm: sessions, content types
    with django_assert_max_num_queries(16):
        r = c.get(f"/projects/{figures.slug}/")
    html = r.content.decode()
    assert r.status_code == 200
    assert '<script id="dashboard-data" type="application/json">' in html
    assert "</script><b>x" not in html and "\\u003C/script\\u003E\\u003Cb\\u003Ex" in html
    assert 'src="/static/web/chart.umd.min.js"' in html and 'src="/static/web/dashboard.js"' in html
    assert "queued now; the oldest for " in html
