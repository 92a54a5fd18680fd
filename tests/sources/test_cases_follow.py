"""What a sync writes goes through cases.services like an import: consent follows the number (a synced
`contact_phone_number_is_verified: 1` is a ledger row naming the source; a number the source changes
loses it), and the alert hooks run (a new `edd` moves an alert's coming send)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from casemsg.cases.models import Case
from casemsg.consent.models import ConsentRecord
from casemsg.scheduling import services as scheduling
from casemsg.scheduling.models import ScheduleInstance
from tests.sources.helpers import run_sync

pytestmark = pytest.mark.django_db
US, US_NEW = "12066171234", "12066171299"


def test_a_synced_verified_flag_is_consent_naming_the_source_and_a_new_number_resets_it(
    project, fake_source, make_source
):
    fake = fake_source("commcare")
    (cid,) = fake.add(1, properties=lambda i: {"contact_phone_number": US, "contact_phone_number_is_verified": "1"})
    source = make_source(fake)
    run_sync(source)
    case = Case.objects.get(project=project, case_id=cid)
    assert case.properties["contact_phone_number_is_verified"] == "1"
    (row,) = ConsentRecord.objects.filter(project=project, kind="consent")
    assert (row.phone_number, row.source) == (US, "import")
    assert row.recorded_by == f"case source {source.name} (commcare, #{source.pk})"

    # CommCare changes the number; its case still says verified (the 1 was given for the old number)
    fake.update(cid, contact_phone_number=US_NEW)
    run_sync(source)
    case.refresh_from_db()
    assert case.properties["contact_phone_number"] == US_NEW
    assert "contact_phone_number_is_verified" not in case.properties
    assert ConsentRecord.objects.filter(project=project, kind="consent").count() == 1
    # a later change of something else does not bring the old 1 back
    fake.update(cid, edd="2030-01-01")
    run_sync(source)
    case.refresh_from_db()
    assert "contact_phone_number_is_verified" not in case.properties

    # the source records consent for the new number: cleared, then set again
    fake.update(cid, contact_phone_number_is_verified="0")
    run_sync(source)
    fake.update(cid, contact_phone_number_is_verified="1")
    run_sync(source)
    case.refresh_from_db()
    assert case.properties["contact_phone_number_is_verified"] == "1"
    rows = list(ConsentRecord.objects.filter(project=project, kind="consent").order_by("pk"))
    assert [r.phone_number for r in rows] == [US, US_NEW] and rows[1].source == "import"


def test_a_new_edd_moves_the_alerts_coming_send(project, fake_source, make_source):
    today = timezone.now().date()
    first, later = today + timedelta(days=30), today + timedelta(days=45)
    fake = fake_source("commcare")
    fake.add(1, properties=lambda i: {"risk_level": "low"})  # the project's first mother
    source = make_source(fake)
    run_sync(source)
    scheduling.create_alert(
        project,
        {
            "name": "Before the due date",
            "case_type": "mother",
            "criteria": [{"property": "risk_level", "operator": "equal", "value": "high"}],
            "content": {"text": "Visit {case.name}"},
            "schedule": {
                "type": "daily",
                "time": "09:00",
                "count": 1,
                "start": {"from": "property", "property": "edd", "days": -7},
            },
            "recipients": ["case"],
        },
    )
    (cid,) = fake.add(
        1,
        properties=lambda i: {
            "contact_phone_number": "254711000111",
            "risk_level": "high",
            "edd": first.isoformat(),
            "time_zone": "Africa/Nairobi",
        },
    )
    run_sync(source)
    case = Case.objects.get(project=project, case_id=cid)
    (inst,) = ScheduleInstance.objects.filter(source_case_id=case.pk, active=True)
    assert inst.next_due_utc is not None
    assert inst.next_due_utc.date() == first - timedelta(days=7)
    fake.update(cid, edd=later.isoformat())
    run_sync(source)
    inst.refresh_from_db()
    assert inst.next_due_utc is not None and inst.next_due_utc.date() == later - timedelta(days=7)
