"""/healthz and /readyz, in-process (worker heartbeat, backlog) and against real server processes whose
database or queue is a closed port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.test import Client
from django.utils import timezone

from casemsg.messaging.models import Message
from casemsg.ops import heartbeat
from casemsg.ops.models import WorkerHeartbeat
from tests.ops.http import request

ROOT = Path(__file__).resolve().parents[2]


def test_healthz_needs_nothing(db):
    r = Client().get("/healthz")
    assert r.status_code == 200 and r.json() == {"ok": True}
    assert "no-cache" in r["Cache-Control"]


def test_readyz_waits_for_a_worker_heartbeat(db, settings):
    client = Client()
    r = client.get("/readyz")
    assert r.status_code == 503
    checks = r.json()["checks"]
    assert checks["database"]["ok"] and checks["migrations"]["ok"] and checks["queue"]["ok"]
    assert not checks["worker"]["ok"] and "casemsg worker" in checks["worker"]["detail"]

    heartbeat.beat()
    r = client.get("/readyz")
    assert r.status_code == 200, r.json()
    assert r.json()["ready"] is True and r.json()["checks"]["worker"]["last_seen_seconds_ago"] < 5

    WorkerHeartbeat.objects.update(
        seen_on=timezone.now() - timedelta(seconds=settings.CASEMSG_WORKER_STALE_SECONDS + 5)
    )
    r = client.get("/readyz")
    assert r.status_code == 503 and "no worker seen for" in r.json()["checks"]["worker"]["detail"]


def test_readyz_reports_the_oldest_due_message(db, project):
    heartbeat.beat()
    now = timezone.now()
    Message.objects.create(
        project=project, to="254712345678", created_on=now, next_attempt_on=now - timedelta(minutes=5)
    )
    Message.objects.create(project=project, to="254712345679", created_on=now, next_attempt_on=now + timedelta(hours=1))
    backlog = Client().get("/readyz").json()["checks"]["backlog"]
    assert backlog["due_messages"] == 1
    assert 299 <= backlog["oldest_due_message_age_seconds"] < 330


# --- real processes -----------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if k not in ("PYTEST_VERSION", "CASEMSG_DATABASE_URL", "CASEMSG_QUEUE_URL")
    }
    env.update({"CASEMSG_DATA_DIR": str(tmp_path), "CASEMSG_QUEUE_IMMEDIATE": "0", **extra})
    return env


def _gunicorn(env: dict[str, str], port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "casemsg.wsgi:application", "--bind", f"127.0.0.1:{port}", "--workers", "1"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            request(f"http://127.0.0.1:{port}/healthz", timeout=2)
            return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise AssertionError("gunicorn did not start")


def _stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=15)


@pytest.mark.slow
def test_readyz_503_when_the_database_is_unreachable(tmp_path):
    closed = _free_port()
    env = _env(tmp_path, CASEMSG_DATABASE_URL=f"postgresql://postgres@127.0.0.1:{closed}/casemsg")
    port = _free_port()
    proc = _gunicorn(env, port)
    try:
        assert request(f"http://127.0.0.1:{port}/healthz").status_code == 200  # alive, not ready
        r = request(f"http://127.0.0.1:{port}/readyz", timeout=10)
        assert r.status_code == 503
        checks = r.json()["checks"]
        assert not checks["database"]["ok"] and str(closed) in checks["database"]["detail"]
        assert checks["worker"]["detail"] == "skipped: the database is unreachable"
    finally:
        _stop(proc)


@pytest.mark.slow
def test_readyz_503_when_the_queue_is_unreachable_and_200_when_it_is_back(tmp_path, migrated_data_dir):
    migrated_data_dir(tmp_path)
    closed = _free_port()
    port = _free_port()
    proc = _gunicorn(_env(tmp_path, CASEMSG_QUEUE_URL=f"redis://127.0.0.1:{closed}/0"), port)
    try:
        r = request(f"http://127.0.0.1:{port}/readyz", timeout=10)
        assert r.status_code == 503
        checks = r.json()["checks"]
        assert checks["database"]["ok"] and not checks["queue"]["ok"]
        assert "connect" in checks["queue"]["detail"].lower()
    finally:
        _stop(proc)
    # the embedded queue and a running worker: ready
    worker = subprocess.Popen(
        [sys.executable, "-m", "casemsg", "worker"],
        env=_env(tmp_path),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    proc = _gunicorn(_env(tmp_path), port)
    try:
        deadline = time.time() + 30
        while True:
            r = request(f"http://127.0.0.1:{port}/readyz", timeout=10)
            if r.status_code == 200 or time.time() > deadline:
                break
            time.sleep(0.3)
        assert r.status_code == 200, r.json()
    finally:
        _stop(proc)
        _stop(worker)
