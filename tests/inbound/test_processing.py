"""The inbound job: stored fast by the webhook, processed once by whichever worker claims it, and never
lost with a worker that stops mid-way."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

import pytest
from django.utils import timezone

from casemsg.inbound import claim, router
from casemsg.messaging import pipeline
from casemsg.messaging.models import Message
from tests.inbound.conftest import KE, KE2, OPT_OUT_CONFIRMATION, gateway_post, is_opted_out, outbox

pytestmark = pytest.mark.django_db


def incoming(gw, number: str, text: str) -> int:
    """The provider calls the gateway's inbound webhook: the message is stored, nothing more."""
    (pk,) = gateway_post(gw, number, text)
    return pk


def test_webhook_stores_and_the_job_processes(api, alpha_sandbox):
    pk = incoming(alpha_sandbox, KE, "STOP")
    row = Message.objects.get(pk=pk)
    assert (row.direction, row.status, row.to, row.text) == ("in", "received", KE, "STOP")
    assert row.next_attempt_on is not None  # waiting for a worker
    assert not is_opted_out(KE)  # nothing is decided in the request

    assert router.process_due([pk]) == 1
    assert is_opted_out(KE)
    assert router.process_due([pk]) == 0  # processed once
    assert router.process_due() == 0
    pipeline.deliver_due()
    assert outbox(api) == [OPT_OUT_CONFIRMATION]


def test_process_due_with_ids_handles_only_those(api, alpha_sandbox):
    a = incoming(alpha_sandbox, KE, "STOP")
    b = incoming(alpha_sandbox, KE2, "STOP")
    router.process_due([a])
    assert is_opted_out(KE) and not is_opted_out(KE2)
    router.process_due()  # the ticker's sweep finds the rest
    assert is_opted_out(KE2)
    assert Message.objects.get(pk=b).next_attempt_on is None


def test_two_workers_never_handle_the_same_message(api, alpha_sandbox):
    pk = incoming(alpha_sandbox, KE, "STOP")
    first = claim.claim()
    second = claim.claim()
    assert [m.pk for m in first] == [pk] and second == []


def test_a_message_claimed_by_a_worker_that_died_is_processed_again(api, alpha_sandbox):
    pk = incoming(alpha_sandbox, KE, "STOP")
    (claimed,) = claim.claim()  # a worker takes it, then stops before handling it
    assert claimed.pk == pk
    assert router.process_due() == 0  # still within the worker's time
    assert not is_opted_out(KE)

    Message.objects.filter(pk=pk).update(claimed_on=timezone.now() - claim.STUCK_AFTER - timedelta(seconds=1))
    assert router.process_due() == 1
    assert is_opted_out(KE)
    pipeline.deliver_due()
    assert outbox(api) == [OPT_OUT_CONFIRMATION]
    # handled rows are not taken again, however old
    Message.objects.filter(pk=pk).update(claimed_on=timezone.now() - timedelta(days=1))
    assert router.process_due() == 0
    assert outbox(api) == [OPT_OUT_CONFIRMATION]


def test_sandbox_incoming_validation(api, other_api, sandbox):
    r = api.post("sandbox/incoming", {"phone_number": "abc", "text": "hi"})
    assert (r.status_code, r.json()["error"]["code"]) == (422, "INVALID_PHONE_NUMBER")
    r = api.post("sandbox/incoming", {"text": "hi"})
    assert r.status_code == 422
    r = api.post("sandbox/incoming", {"phone_number": KE, "text": "hi"}, key="")
    assert r.status_code == 401
    r = other_api.post("/api/v1/projects/alpha/sandbox/incoming", {"phone_number": KE, "text": "hi"})
    assert r.status_code == 403
    assert Message.objects.count() == 0


def test_sandbox_incoming_without_a_sandbox_gateway(api):
    api.case({"contact_phone_number": KE})  # the project's own contact, but no sandbox serves the number
    r = api.post("sandbox/incoming", {"phone_number": KE, "text": "hi"})
    assert (r.status_code, r.json()["error"]["code"]) == (403, "NOT_A_PROJECT_NUMBER")
    assert "no gateway" in r.json()["error"]["message"]
    assert not Message.objects.filter(direction="in").exists()


def test_one_job_handles_the_rows_that_arrived_after_its_own_in_order(api, alpha_sandbox):
    """Under load a job takes its row and every newer waiting one, oldest first."""
    first = incoming(alpha_sandbox, KE, "STOP")
    incoming(alpha_sandbox, KE2, "STOP")
    incoming(alpha_sandbox, KE, "START")
    assert router.process_due([first], newer=True) == 3
    assert not is_opted_out(KE) and is_opted_out(KE2)
    pipeline.deliver_due()
    sent = [(m.to, m.text[:15]) for m in Message.objects.filter(direction="out").order_by("pk")]
    assert sent == [(KE, "You are unsubsc"), (KE2, "You are unsubsc"), (KE, "You are subscri")]
    assert router.process_due() == 0


def test_a_batch_sees_the_registry_changes_of_its_earlier_messages(api, alpha_sandbox):
    """A keyword releasing a number for two-way SMS: the next message of the same batch, from that number,
    already belongs to the contact it passed to."""
    r = api.post(
        "keywords",
        {
            "keyword": "release",
            "action": "update_case",
            "property_name": "contact_phone_number_is_verified",
            "property_value": "0",
        },
    )
    assert r.status_code == 201, r.content
    api.post("keywords", {"keyword": "clinic", "reply": {"en": "open"}})
    first_owner = api.case({"contact_phone_number": KE, "contact_phone_number_is_verified": "1"})
    household = api.case({"contact_phone_number": KE, "contact_phone_number_is_verified": "1"})
    first = incoming(alpha_sandbox, KE, "RELEASE")
    second = incoming(alpha_sandbox, KE, "clinic")
    router.process_due([first], newer=True)
    assert Message.objects.get(pk=first).case.case_id == first_owner["case_id"]
    assert Message.objects.get(pk=second).case.case_id == household["case_id"]
    pipeline.deliver_due()
    (reply,) = Message.objects.filter(direction="out")
    assert (reply.to, reply.text, reply.case.case_id) == (KE, "open", household["case_id"])


def test_the_inbound_job_is_registered_with_the_queue():
    """`casemsg worker` must know the job the webhook enqueues (in a fresh process, as a worker starts)."""
    code = (
        "import django; django.setup()\n"
        "from huey.contrib.djhuey import HUEY\n"
        "print(HUEY._registry.string_to_task('casemsg.inbound.tasks.process_inbound').__name__)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "casemsg.settings"},
    )
    assert out.stdout.strip() == "process_inbound", out.stderr
