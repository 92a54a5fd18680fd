"""The conversations, inbox and reports API: the contacts who wrote, a thread, a reply through the pipeline (a
reply that cannot go is stored failed, with its reason), the inbox with its states and labels, the history and a
broadcast's delivery report; each operation's scope; another project is out of reach."""

from __future__ import annotations

import pytest
from django.utils import timezone

from casemsg.core import errors
from casemsg.messaging.models import Message
from casemsg.projects.models import ApiKey
from casemsg.scheduling import services as scheduling
from tests.conftest import Api
from tests.inbound.conftest import KE, KE2, US, sms_in, work

pytestmark = pytest.mark.django_db
TWO_WAY = {"contact_phone_number_is_verified": "1"}


def test_conversations_threads_and_replies(api, project, sandbox):
    api.case({"contact_phone_number": KE, **TWO_WAY}, case_id="amina", name="Amina")
    api.case({"contact_phone_number": KE2, **TWO_WAY}, case_id="ben", name="Ben")
    sms_in(api, KE, "Is the clinic open?")
    sms_in(api, KE2, "Hello")
    r = api.get("conversations")
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["count"] == 2 and [c["contact"]["key"] for c in body["items"]] == ["ben", "amina"]
    assert body["items"][1]["last_message"]["text"] == "Is the clinic open?" and body["items"][1]["open_inbox"] == 1
    assert api.get("conversations", q="amin").json()["count"] == 1

    r = api.post("conversations/amina/messages", {"text": "Yes, {until} 5pm"})
    assert r.status_code == 202, r.content
    work()
    r = api.get("conversations/amina")
    assert r.status_code == 200
    thread = r.json()
    assert thread["contact"] == {
        "key": "amina",
        "type": "case",
        "name": "Amina",
        "case_id": "amina",
        "mobile_worker_id": None,
    }
    assert [m["text"] for m in thread["items"]] == ["Yes, {until} 5pm", "Is the clinic open?"]  # newest first
    assert thread["items"][0]["status"] in ("sent", "delivered")
    assert api.get("inbox", state="handled").json()["count"] == 1  # answered: handled

    api.case({"contact_phone_number": US}, case_id="maria")  # no consent
    r = api.post("conversations/maria/messages", {"text": "Hello"})
    assert r.status_code == 202 and r.json()["status"] == "failed"
    assert r.json()["error"]["code"] == errors.NO_CONSENT
    assert api.get("conversations/nobody").json()["error"]["code"] == errors.CASE_NOT_FOUND
    r = api.post("conversations/amina/messages", {"text": "   "})
    assert r.status_code == 422 and r.json()["error"]["code"] == errors.MESSAGE_BLANK
    assert api.post("conversations/amina/messages", {"text": "x", "extra": 1}).status_code == 422


def test_the_inbox_states_and_labels(api, project, sandbox):
    api.case({"contact_phone_number": KE, **TWO_WAY}, case_id="amina", name="Amina")
    sms_in(api, KE, "Where do I get my card?")
    r = api.get("inbox")
    assert r.status_code == 200 and r.json()["count"] == 1
    item = r.json()["items"][0]
    assert item["state"] == "open" and item["contact"]["key"] == "amina" and item["labels"] == []
    assert item["message"]["text"] == "Where do I get my card?"
    mid = item["message_id"]
    r = api.patch(f"inbox/{mid}", {"state": "archived", "labels": ["Cards", "Cards", "Urgent"]})
    assert r.status_code == 200, r.content
    assert r.json()["state"] == "archived" and r.json()["labels"] == ["Cards", "Urgent"]
    assert r.json()["changed_by"].startswith("api key ")
    assert api.get("inbox").json()["count"] == 0
    assert api.get("inbox", state="all", label="Urgent").json()["count"] == 1
    assert api.get("inbox", state="archived", q="card").json()["count"] == 1
    assert [lb["name"] for lb in api.get("inbox/labels").json()] == ["Cards", "Urgent"]
    assert api.post("inbox/labels", {"name": "Later"}).status_code == 201
    assert api.delete("inbox/labels/Urgent").status_code == 204
    assert api.delete("inbox/labels/Urgent").status_code == 404
    assert api.patch(f"inbox/{mid}", {"state": "done"}).json()["error"]["code"] == errors.VALIDATION_ERROR
    assert api.get("inbox", state="done").status_code == 422
    assert api.patch("inbox/999999", {"state": "open"}).json()["error"]["code"] == errors.MESSAGE_NOT_FOUND


def test_reports(api, project, sandbox):
    api.case({"contact_phone_number": KE, **TWO_WAY}, case_id="amina", name="Amina")
    api.case({"contact_phone_number": US}, case_id="maria")
    b = scheduling.create_broadcast(
        project,
        {"name": "Tip", "content": {"text": "Hi"}, "recipients": {"case_type": "patient"}, "schedule": {"type": "now"}},
        timezone.now(),
    )
    sms_in(api, KE, "thanks")
    work()
    r = api.get("reports/history")
    assert r.status_code == 200, r.content
    h = r.json()
    assert h["total"]["messages"] == Message.objects.filter(project=project).count()
    sources = {s["source"]: s for s in h["sources"]}
    assert sources["broadcast"]["messages"] == 2 and sources["broadcast"]["failed_by_error"] == {"NO_CONSENT": 1}
    assert sources["inbound"]["by_status"] == {"received": 1}
    assert [(n["source"], n["name"]) for n in h["named"]] == [("broadcast", "Tip")]
    r = api.get(f"reports/broadcasts/{b.pk}")
    assert r.status_code == 200 and r.json()["total"]["messages"] == 2 and len(r.json()["days"]) == 1
    assert api.get(f"reports/broadcasts/{b.pk + 1}").json()["error"]["code"] == errors.BROADCAST_NOT_FOUND
    assert api.get("reports/alerts/1").json()["error"]["code"] == errors.ALERT_NOT_FOUND
    assert api.get("reports/history", since="2026-02-01", until="2026-01-01").status_code == 422
    assert api.get("reports/history", channel="fax").status_code == 422
    r = api.get("reports/consent")
    assert r.status_code == 200 and set(r.json()["totals"]) >= {"consent", "opt_out"}


def test_scopes_and_other_projects(api, project, other_project, sandbox):
    api.case({"contact_phone_number": KE, **TWO_WAY}, case_id="amina")
    sms_in(api, KE, "hello")
    mid = api.get("inbox").json()["items"][0]["message_id"]
    _row, read_only = ApiKey.issue_row(project, "reader", ["read"])
    reader = Api(read_only, project.slug)
    assert reader.get("inbox").status_code == 200 and reader.get("conversations/amina").status_code == 200
    assert reader.patch(f"inbox/{mid}", {"state": "archived"}).json()["error"]["code"] == errors.INSUFFICIENT_SCOPE
    assert reader.post("conversations/amina/messages", {"text": "x"}).status_code == 403
    assert reader.post("inbox/labels", {"name": "x"}).status_code == 403
    other = Api(other_project.api_key, other_project.slug)
    assert other.get("conversations/amina").status_code == 404
    assert other.patch(f"inbox/{mid}", {"state": "archived"}).status_code == 404
    assert other.get("inbox").json()["count"] == 0
