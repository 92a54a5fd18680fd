"""The report pages (Django's test client): the history's totals equal the messages in the log, its CSV adds up
to them, a broadcast's delivery report and its CSV, the consent report and its CSV; every CSV cell is safe in a
spreadsheet (a person or a broadcast named like a formula); another project's broadcast is not found."""

from __future__ import annotations

import csv
import io
import re

import pytest
from django.contrib.auth import get_user_model

from casemsg.consent.models import ConsentRecord
from casemsg.core.spreadsheet import FORMULA_START
from casemsg.messaging import reports
from casemsg.messaging.models import Message
from casemsg.projects.services import add_member
from casemsg.scheduling.models import Broadcast
from tests.messaging.test_reports import seed
from tests.web.clients import logged_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def viewer(project):
    user = get_user_model().objects.create_user("vic", password="pw-vic-1", first_name="=cmd|' /C calc'!A0")
    add_member(project, user, "editor")
    return logged_in(user)


def rows_of(r) -> list[list[str]]:
    assert r.status_code == 200 and r["Content-Type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(b"".join(r.streaming_content).decode())))


def assert_safe(table: list[list[str]]) -> None:
    for row in table:
        for cell in row:
            assert not cell.startswith(FORMULA_START), cell


def total(html: str, name: str) -> int:
    m = re.search(rf'data-total="{name}">(\d+)<', html)
    assert m, name
    return int(m.group(1))


def test_the_history_equals_the_log(api, project, sandbox, viewer):
    seed(api, project)
    viewer.post(f"/projects/{project.slug}/conversations/amina/", {"text": "sent by a person named like a formula"})
    reports.roll_up(project, max_days=None)
    r = viewer.get(f"/projects/{project.slug}/reports/")
    html = r.content.decode()
    assert r.status_code == 200 and 'id="chart-history-days"' in html and 'id="report-data"' in html
    n = Message.objects.filter(project=project).count()
    assert total(html, "messages") == n
    assert total(html, "failed") == Message.objects.filter(project=project, status="failed").count()
    assert total(html, "received") == Message.objects.filter(project=project, direction="in").count()
    assert "Tip of the day" in html and "Olga N" in html

    table = rows_of(viewer.get(f"/projects/{project.slug}/reports/history.csv"))
    assert table[0] == reports.HISTORY_COLUMNS
    assert sum(int(row[-1]) for row in table[1:]) == n
    assert_safe(table)
    assert any(row[3].startswith("'=cmd") for row in table)  # the person's name, made safe

    b = Broadcast.objects.get(name="Tip of the day")
    r = viewer.get(f"/projects/{project.slug}/reports/broadcasts/{b.pk}/")
    html = r.content.decode()
    assert r.status_code == 200 and total(html, "messages") == 3 and total(html, "failed") == 1
    assert "NO_CONSENT" in html
    table = rows_of(viewer.get(f"/projects/{project.slug}/reports/broadcasts/{b.pk}/delivery.csv"))
    assert table[0] == [*reports.DELIVERY_COLUMNS, "failed NO_CONSENT"] and table[-1][:6] == [
        "total",
        "3",
        "0",
        "2",
    ] + [
        table[-1][4],
        "1",
    ]
    assert viewer.get(f"/projects/{project.slug}/reports/broadcasts/{b.pk + 1000}/").status_code == 404
    assert viewer.get(f"/projects/{project.slug}/reports/alerts/1/").status_code == 404

    # a range: a day without messages
    r = viewer.get(f"/projects/{project.slug}/reports/?since=2020-01-01&until=2020-01-02&channel=sms")
    assert r.status_code == 200 and total(r.content.decode(), "messages") == 0
    r = viewer.get(f"/projects/{project.slug}/reports/?since=not-a-date")
    assert r.status_code == 200


def test_the_consent_report(api, project, sandbox, viewer):
    seed(api, project)  # an opt-in question asked of Maria
    ConsentRecord.objects.create(
        project=project, phone_number="254711000001", kind="opt_out", source="keyword", created_on=project.created_on
    )
    r = viewer.get(f"/projects/{project.slug}/reports/consent/")
    html = r.content.decode()
    assert r.status_code == 200 and 'id="chart-consent"' in html
    table = rows_of(viewer.get(f"/projects/{project.slug}/reports/consent.csv"))
    assert table[0] == ["day", "kind", "source", "entries"]
    ledger = ConsentRecord.objects.filter(project=project).count()
    assert sum(int(row[3]) for row in table[1:]) == ledger
    assert_safe(table)
