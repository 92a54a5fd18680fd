"""`casemsg serve` as an operator runs it: readiness once the worker beats, /metrics summed over gunicorn's
processes and the worker's (multiprocess mode), and JSON access lines without the gateway key."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.ops.http import request
from tests.ops.test_health import _free_port

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "serve-test-metrics-token"


def _post_json(url: str, body: dict, key: str = "") -> tuple[int, dict]:
    import urllib.error
    import urllib.request

    req = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", **({"Authorization": f"Bearer {key}"} if key else {})},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def _sample(text: str, name: str, **labels: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    total = 0.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and set(labels.items()) <= set(s.labels.items()):
                total += s.value
    return total


@pytest.mark.slow
def test_serve_ready_metrics_across_processes_and_access_log(tmp_path, fake_http, migrated_data_dir):
    env = {
        k: v for k, v in os.environ.items() if k not in ("PYTEST_VERSION", "CASEMSG_DATABASE_URL", "CASEMSG_QUEUE_URL")
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.update(
        CASEMSG_DATA_DIR=str(tmp_path),
        CASEMSG_QUEUE_IMMEDIATE="0",
        CASEMSG_METRICS_TOKEN=TOKEN,
        CASEMSG_LOG_FORMAT="json",
        CASEMSG_GATEWAY_ALLOW_PRIVATE="1",
    )
    migrated_data_dir(tmp_path)
    out = subprocess.run(
        [sys.executable, "-m", "casemsg", "project", "create", "ops", "--json"],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    key = json.loads(out.stdout)["api_key"]
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = (tmp_path / "serve.out").open("w")
    serve = subprocess.Popen(
        [sys.executable, "-m", "casemsg", "serve", "--port", str(port), "--web-workers", "2"],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.time() + 60
        ready = None
        while time.time() < deadline:
            try:
                ready = request(f"{base}/readyz")
                if ready.status_code == 200:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        assert ready is not None and ready.status_code == 200, ready and ready.text

        # a send: the worker process calls the gateway
        api = f"{base}/api/v1/projects/ops"
        status, _ = _post_json(
            f"{api}/gateways", {"name": "fake", "type": "http", "config": fake_http.gateway_config()}, key
        )
        assert status == 201
        assert _post_json(f"{api}/routes", {"prefix": "*", "gateway": "fake"}, key)[0] == 201
        status, case = _post_json(
            f"{api}/cases", {"case_type": "p", "name": "A", "properties": {"contact_phone_number": "254712345678"}}, key
        )
        assert status == 201, case
        status, msg = _post_json(f"{api}/messages", {"recipient": {"case_id": case["case_id"]}, "text": "Hi"}, key)
        assert status == 202, msg
        # provider webhooks with a wrong key, answered by whichever gunicorn process
        for _ in range(4):
            assert _post_json(f"{base}/api/v1/gateways/fake/s3cr3t-wrong-key/inbound", {})[0] in (403, 404)

        deadline = time.time() + 30
        while True:
            text = request(f"{base}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).text
            sent = _sample(text, "casemsg_gateway_requests_total", gateway="fake", outcome="2xx")
            if sent == 1 or time.time() > deadline:
                break
            time.sleep(0.3)
        assert sent == 1  # counted in the worker process, read by a web process
        assert _sample(text, "casemsg_webhook_requests_total", kind="inbound") == 4  # summed over web processes
        assert _sample(text, "casemsg_messages", status="sent") == 1
        assert request(f"{base}/metrics").status_code == 401
        assert list((tmp_path / "metrics").glob("*.db"))
    finally:
        os.killpg(serve.pid, signal.SIGTERM)
        serve.wait(timeout=30)
        log.close()
    lines = (tmp_path / "serve.out").read_text().splitlines()
    access = [json.loads(x) for x in lines if x.startswith("{") and '"gunicorn.access"' in x]
    assert any(a["path"] == "/api/v1/gateways/fake/***/inbound" and a["method"] == "POST" for a in access)
    assert all("s3cr3t-wrong-key" not in x for x in lines)
    assert all("254712345678" not in json.dumps(a) for a in access)
