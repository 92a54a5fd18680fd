"""core.claims: a claim marks exactly the rows it says, never more (PostgreSQL must not re-run the pick),
and two claims never share a row."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from casemsg.core import claims
from casemsg.messaging import pipeline
from casemsg.messaging.models import Message
from casemsg.projects.services import create_project

pytestmark = pytest.mark.django_db


def test_a_claim_marks_exactly_its_limit_and_claims_are_disjoint():
    project, _key = create_project("claims", "Claims")
    pipeline.queue(project, [pipeline.MessageSpec(to=f"2547110{i:05}", text="x") for i in range(300)], None)
    Message.objects.update(status=Message.QUEUED, next_attempt_on=timezone.now() - timedelta(minutes=1))
    due = Message.objects.filter(status=Message.QUEUED, next_attempt_on__lte=timezone.now())
    first = claims.claim_ids(due, order_by=["next_attempt_on", "pk"], limit=120, status=Message.SENDING, claim="a")
    second = claims.claim(due, order_by=["next_attempt_on", "pk"], limit=120, status=Message.SENDING, claim="b")
    assert len(first) == 120 and second == 120
    assert Message.objects.filter(claim="a").count() == 120
    assert Message.objects.filter(claim="b").count() == 120
    assert set(first) == set(Message.objects.filter(claim="a").values_list("pk", flat=True))
    assert claims.claim(due, order_by=["pk"], limit=0, claim="c") == 0
    assert claims.claim(due, order_by=["pk"], limit=500, status=Message.SENDING, claim="d") == 60
