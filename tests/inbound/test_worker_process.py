"""End to end with the real queue: Twilio-format webhooks over HTTP to a live casemsg, the job through
the real queue (SqliteHuey or Redis), a real `casemsg worker` process handling it, and the replies
reaching a fake Twilio on 127.0.0.1. Nothing runs in-line here: this is what a deployment does."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from huey.contrib.djhuey import HUEY

from casemsg.contacts.models import OptOut
from casemsg.gateways.services import add_gateway, inbound_url, map_prefix
from casemsg.messaging.models import Message
from tests.conftest import database_url, queue_url
from tests.servers.webhooks import post_form, twilio_inbound, twilio_signature

pytestmark = pytest.mark.django_db(transaction=True)

REPO_ROOT = Path(__file__).resolve().parents[2]
REDIS_DB = 12  # a queue of its own, flushed before and after
REPLY = "The clinic is open 8 to 5."


@pytest.fixture
def real_queue():
    """Switch this process (the live server) from in-line jobs to the real queue the worker reads."""
    data_dir = tempfile.TemporaryDirectory(prefix="casemsg-inbound-worker-")
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_VERSION"}
    env.update(
        CASEMSG_QUEUE_IMMEDIATE="0",
        CASEMSG_DATA_DIR=data_dir.name,
        PYTHONUNBUFFERED="1",
        DJANGO_SETTINGS_MODULE="casemsg.settings",
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    )
    if settings.IS_POSTGRES:
        env["CASEMSG_DATABASE_URL"] = database_url()
    else:
        # casemsg's own SQLite settings (WAL, immediate transactions), pointed at the test database
        Path(data_dir.name, "worker_settings.py").write_text(
            "from casemsg.settings import *  # noqa: F403\n"
            f"DATABASES['default']['NAME'] = {str(settings.DATABASES['default']['NAME'])!r}  # noqa: F405\n"
        )
        env.update(DJANGO_SETTINGS_MODULE="worker_settings", PYTHONPATH=data_dir.name + os.pathsep + env["PYTHONPATH"])
        env.pop("CASEMSG_DATABASE_URL", None)
    if settings.QUEUE_URL.startswith("redis://"):
        import redis

        url = queue_url(REDIS_DB)
        env["CASEMSG_QUEUE_URL"] = url
        redis.Redis.from_url(url).flushdb()
        storage = HUEY.get_storage(url=url)
    else:
        env.pop("CASEMSG_QUEUE_URL", None)
        storage = HUEY.get_storage(filename=str(Path(data_dir.name) / "queue.sqlite3"))
    saved = HUEY.storage, HUEY._immediate  # noqa: SLF001
    HUEY.storage, HUEY._immediate = storage, False  # noqa: SLF001
    yield env
    HUEY.storage, HUEY._immediate = saved  # noqa: SLF001
    if "CASEMSG_QUEUE_URL" in env:
        import redis

        redis.Redis.from_url(env["CASEMSG_QUEUE_URL"]).flushdb()
    data_dir.cleanup()


@pytest.fixture
def worker(real_queue):
    log = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "casemsg", "worker", "--workers", "2"],
        cwd=REPO_ROOT,
        env=real_queue,
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def output() -> str:
        log.seek(0)
        return log.read()[-4000:]

    proc.output = output
    yield proc
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    log.close()


def wait_for(check, proc, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert proc.poll() is None, f"the worker died:\n{proc.output()}"
        assert time.monotonic() < deadline, f"timed out; worker output:\n{proc.output()}"
        time.sleep(0.1)


def test_webhooks_are_handled_by_a_worker_process(api, project, live_server, fake_twilio, worker):
    gw = add_gateway("tw", "twilio", fake_twilio.gateway_config(), project=project)
    map_prefix("*", gw.name, project)
    assert api.post("keywords", {"keyword": "clinic", "reply": {"en": REPLY}}).status_code == 201
    numbers = [f"2547110000{i:02d}" for i in range(12)]
    for n in numbers:
        api.case({"contact_phone_number": n, "contact_phone_number_is_verified": "1"})

    url = live_server.url + inbound_url(gw)
    token = gw.config["auth_token"]

    def post(number: str, text: str, sid: str | None = None) -> None:
        fields = twilio_inbound(number, text, sid=sid or "SM" + uuid.uuid4().hex)
        status, body = post_form(url, fields, {"X-Twilio-Signature": twilio_signature(url, fields, token)})
        assert status == 200, body

    for n in numbers[:10]:
        post(n, "CLINIC hours?")
    post(numbers[10], "STOP")
    post(numbers[11], "clinic", sid="SMdup")
    post(numbers[11], "clinic", sid="SMdup")  # Twilio retrying: one message

    # the webhook stored the rows and left them for the worker
    assert Message.objects.filter(direction="in").count() == 12
    wait_for(lambda: len(fake_twilio.messages()) >= 12, worker)
    wait_for(lambda: not Message.objects.filter(direction="in", next_attempt_on__isnull=False).exists(), worker)
    time.sleep(0.5)  # nothing more may arrive

    sent = sorted((r.to, r.text) for r in fake_twilio.messages())
    assert sent == sorted(
        [(n, REPLY) for n in numbers[:10]]
        + [
            (numbers[10], "You are unsubscribed and will receive no more messages. Reply START to resubscribe."),
            (numbers[11], REPLY),
        ]
    )
    assert OptOut.objects.filter(phone_number=numbers[10]).exists()
    handled = Message.objects.filter(direction="in", case__isnull=False, claim="", error_detail="")
    assert handled.count() == 12
    assert "Traceback" not in worker.output(), worker.output()
