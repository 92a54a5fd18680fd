"""Event webhook URLs follow the gateway URL rules: refused when saved (422) and at every connection."""

from __future__ import annotations

import pytest

from casemsg.events import deliver
from casemsg.events.models import Delivery


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://[::1]/hook",
        "http://2130706433/hook",  # 127.0.0.1 in decimal
        "http://169.254.169.254/latest/meta-data/",
        "ftp://example.com/hook",
        "http://user:pass@example.com/hook",
    ],
)
def test_internal_and_bad_urls_refused_on_save(api, settings, url):
    settings.CASEMSG_GATEWAY_ALLOW_PRIVATE = False
    r = api.post("webhooks", {"url": url, "events": ["message.status"]})
    assert r.status_code == 422, r.content
    assert r.json()["error"]["code"] == "WEBHOOK_URL_NOT_ALLOWED"
    assert "event webhook URL" in r.json()["error"]["message"]


def test_metadata_refused_even_when_private_addresses_are_allowed(api, settings):
    settings.CASEMSG_GATEWAY_ALLOW_PRIVATE = True
    r = api.post("webhooks", {"url": "http://169.254.169.254/", "events": ["message.status"]})
    assert r.status_code == 422 and "metadata" in r.json()["error"]["message"]


def test_patch_checks_the_url_too(api, settings, receiver):
    created = api.post("webhooks", {"url": receiver().url, "events": ["message.status"]}).json()
    settings.CASEMSG_GATEWAY_ALLOW_PRIVATE = False
    r = api.patch(f"webhooks/{created['id']}", {"url": "http://192.168.1.1/"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "WEBHOOK_URL_NOT_ALLOWED"


def test_refused_at_connect_when_the_address_became_internal(api, settings, receiver):
    """Saved while the installation allowed private addresses; the connection is checked again (as after a
    DNS rebinding): no request reaches the server, the delivery records why and is retried later."""
    server = receiver()
    created = api.post("webhooks", {"url": server.url, "events": ["message.status"]}).json()
    settings.CASEMSG_GATEWAY_ALLOW_PRIVATE = False
    r = api.post(f"webhooks/{created['id']}/test").json()
    assert server.hits == []
    assert r["state"] == "pending" and r["last_status"] is None
    assert "loopback" in r["last_error"] and "CASEMSG_GATEWAY_ALLOW_PRIVATE" in r["last_error"]
    assert deliver.deliver_due() == 0  # waits for its back-off
    assert Delivery.objects.get().attempts == 1
