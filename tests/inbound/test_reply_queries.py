"""The reply path's queries per batch (issue 24): what a worker does for a batch of inbound keyword
messages — claim them, route them, queue their replies, claim the replies and send them — costs the same
fixed number of queries whether the batch holds 10 messages or 50 (no query per message), and at most
REPLY_PATH_QUERIES of them. docs/scale-out.md lists them."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from casemsg.inbound import router
from casemsg.messaging import pipeline
from casemsg.messaging.models import Message
from tests.inbound.test_batched import keyword, receive

pytestmark = pytest.mark.django_db

# The ceiling: one batch of inbound messages, routed and answered (see docs/scale-out.md, "The reply
# path's queries"). Raising it needs a reason in that table.
REPLY_PATH_QUERIES = 60


def reply_path(count: int, offset: int, gw) -> list[str]:
    """The job body of `process_inbound` for one batch: route it, then send the replies it queued."""
    receive(gw, [(f"25471100{i:04d}", "clinic") for i in range(offset, offset + count)])
    with CaptureQueriesContext(connection) as ctx:
        assert router.process_due(max_batches=1, sweep=False) == count
        assert pipeline.deliver_due(replies_only=True, max_batches=1) == count
    return [q["sql"] for q in ctx.captured_queries]


def test_a_batch_and_its_replies_cost_a_fixed_number_of_queries(api, alpha_sandbox):
    keyword(api, "CLINIC", "Open 8-17, {case.name}.")
    for i in range(60):
        api.case({"contact_phone_number": f"25471100{i:04d}", "contact_phone_number_is_verified": "1"})
    small = reply_path(10, 0, alpha_sandbox)
    large = reply_path(50, 10, alpha_sandbox)
    assert len(small) == len(large), "\n".join(large)
    assert len(large) <= REPLY_PATH_QUERIES, "\n".join(large)
    sent = Message.objects.filter(direction="out", priority=Message.REPLY, status__in=["sent", "delivered"])
    assert sent.count() == 60
