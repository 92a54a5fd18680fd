"""Groups through the HTTP API: CRUD, a static group's members by case id and by CSV, the preview, a group
as the recipients of a message, a broadcast and an alert, and as a filter of the cases list; refusals with
their codes; another project's key."""

from __future__ import annotations

from typing import Any

from django.test import Client

from casemsg.core import errors
from casemsg.messaging import pipeline
from casemsg.messaging.models import Message
from casemsg.scheduling import runner, tick
from casemsg.scheduling.models import ConditionalAlert, ScheduleInstance
from tests.conftest import sandbox_gateway

KE = "2547110002{:02d}"


def _cases(api, n: int = 4) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        district = "North" if i % 2 == 0 else "South"
        out.append(
            api.case({"contact_phone_number": KE.format(i), "district": district}, case_type="mother", name=f"M{i}")
        )
    return out


def _group(api, **body: Any) -> dict[str, Any]:
    r = api.post("groups", {"name": "North", "kind": "dynamic", "case_type": "mother", **body})
    assert r.status_code == 201, r.content
    return r.json()


NORTH = [{"property": "district", "operator": "equals", "value": "North"}]


def test_dynamic_group_crud_and_preview(api):
    cs = _cases(api)
    g = _group(api, conditions=NORTH)
    assert (g["kind"], g["member_count"], g["summary"]) == ("dynamic", 2, "open mother cases where district is North")
    assert api.get("groups").json()["items"][0]["member_count"] == 2
    p = api.get(f"groups/{g['id']}/preview", sample=1).json()
    assert p["count"] == 2 and [c["case_id"] for c in p["sample"]] == [cs[0]["case_id"]]
    members = api.get(f"groups/{g['id']}/members").json()
    assert [c["case_id"] for c in members["items"]] == [cs[0]["case_id"], cs[2]["case_id"]]
    # evaluated when read: a case that starts matching is a member at once
    api.patch(f"cases/{cs[1]['case_id']}", {"properties": {"district": "North"}})
    assert api.get(f"groups/{g['id']}").json()["member_count"] == 3
    r = api.patch(
        f"groups/{g['id']}", {"conditions": [{"property": "district", "operator": "equals", "value": "South"}]}
    )
    assert r.status_code == 200 and r.json()["member_count"] == 1
    # a definition previewed before it is saved
    r = api.post("groups/preview", {"name": "x", "kind": "dynamic", "case_type": "mother", "conditions": NORTH})
    assert r.status_code == 200 and r.json()["count"] == 3
    assert api.delete(f"groups/{g['id']}").status_code == 204
    assert api.get(f"groups/{g['id']}").json()["error"]["code"] == errors.GROUP_NOT_FOUND


def test_refusals(api, other_api):
    _cases(api, 1)
    g = _group(api, conditions=NORTH)
    r = api.post("groups", {"name": "North", "kind": "static"})
    assert (r.status_code, r.json()["error"]["code"]) == (409, errors.GROUP_EXISTS)
    r = api.post("groups", {"name": "Bad", "kind": "dynamic", "case_type": "mother", "conditions": [{"property": "x"}]})
    assert (r.status_code, r.json()["error"]["code"]) == (422, errors.INVALID_CONDITION)
    assert "condition 1" in r.json()["error"]["message"]
    r = api.post("groups", {"name": "No type", "kind": "dynamic"})
    assert r.json()["error"]["code"] == errors.CASE_TYPE_REQUIRED
    r = api.post(f"groups/{g['id']}/members", {"case_ids": ["x"]})
    assert (r.status_code, r.json()["error"]["code"]) == (409, errors.GROUP_IS_DYNAMIC)
    r = api.post("groups", {"name": "Odd", "kind": "static", "conditions": NORTH})
    assert r.json()["error"]["code"] == errors.VALIDATION_ERROR
    # another project's key reaches nothing
    assert other_api.get(f"/api/v1/projects/{api.slug}/groups").status_code == 403
    assert other_api.get(f"groups/{g['id']}").json()["error"]["code"] == errors.GROUP_NOT_FOUND


def test_static_group_members_by_api_and_csv(api):
    cs = _cases(api)
    g = api.post("groups", {"name": "Pilot", "case_ids": [cs[0]["case_id"]]}).json()
    assert (g["kind"], g["member_count"]) == ("static", 1)
    r = api.post(f"groups/{g['id']}/members", {"case_ids": [cs[0]["case_id"], cs[1]["case_id"], "nobody"]})
    assert r.json() == {"added": 1, "removed": 0, "unchanged": 1, "not_found": 1, "not_found_ids": ["nobody"]}
    csv = f"name,case_id\nx,{cs[2]['case_id']}\ny,{cs[3]['case_id']}\nz,{cs[2]['case_id']}\nw,ghost\n".encode()
    client = Client()
    r = client.post(
        api.url(f"groups/{g['id']}/members/import"),
        {"file": _upload("members.csv", csv)},
        HTTP_AUTHORIZATION=f"Bearer {api.key}",
    )
    assert r.status_code == 200, r.content
    assert r.json() == {"added": 2, "removed": 0, "unchanged": 0, "not_found": 1, "not_found_ids": ["ghost"]}
    assert api.get(f"groups/{g['id']}").json()["member_count"] == 4
    r = api.post(f"groups/{g['id']}/members/remove", {"case_ids": [cs[0]["case_id"], cs[0]["case_id"]]})
    assert (r.json()["removed"], api.get(f"groups/{g['id']}").json()["member_count"]) == (1, 3)
    # the cases list filtered by the group
    listed = api.get("cases", group=g["id"]).json()
    assert {c["case_id"] for c in listed["items"]} == {c["case_id"] for c in cs[1:]}
    assert api.get("cases", group=999999).json()["error"]["code"] == errors.GROUP_NOT_FOUND


def _upload(name: str, data: bytes):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data, content_type="text/csv")


def test_a_message_to_a_group(api):
    sandbox_gateway()
    cs = _cases(api)
    g = _group(api, conditions=NORTH)
    r = api.post("messages", {"recipient": {"group": g["id"]}, "text": "Hello {case.name}"})
    assert r.status_code == 202, r.content
    out = r.json()
    assert (out["recipients"], out["queued"], out["status"]) == (2, 2, "done")
    pipeline.deliver_due()
    sent = Message.objects.filter(event_id=out["event_id"])
    assert sorted(m.case.case_id for m in sent) == sorted([cs[0]["case_id"], cs[2]["case_id"]])
    assert {m.status for m in sent} == {Message.SENT}
    b = api.get(f"broadcasts/{out['broadcast_id']}").json()
    assert b["recipients"] == {"group": g["id"]} and "group “North”" in b["recipients_summary"]
    # one contact still answers with its message; a bad group is a 404; both at once are refused
    r = api.post("messages", {"recipient": {"case_id": cs[1]["case_id"]}, "text": "Hi"})
    assert r.status_code == 202 and r.json()["recipient"] == {"case_id": cs[1]["case_id"]}
    r = api.post("messages", {"recipient": {"group": 999999}, "text": "Hi"})
    assert (r.status_code, r.json()["error"]["code"]) == (404, errors.GROUP_NOT_FOUND)
    r = api.post("messages", {"recipient": {"group": g["id"], "case_id": cs[1]["case_id"]}, "text": "Hi"})
    assert r.json()["error"]["code"] == errors.VALIDATION_ERROR


def test_a_broadcast_and_an_alert_to_a_group(api):
    sandbox_gateway()
    cs = _cases(api)
    g = _group(api, conditions=NORTH)
    body = {
        "name": "Tip",
        "content": {"text": "Tip for {case.name}"},
        "recipients": {"group": g["id"]},
        "schedule": {"type": "daily", "time": "09:00", "count": 3, "time_zone": "UTC"},
    }
    pre = api.post("broadcasts/preflight", body).json()
    assert pre["recipients"] == 2 and pre["at_each_send"] is True
    assert "read again at each send" in pre["recipients_note"]
    b = api.post("broadcasts", body).json()
    assert b["recipient_count"] == 2 and b["recipients_read_at_each_send"] is True
    assert b["recipients_next_read_utc"] is not None
    # the group cannot be deleted while the broadcast uses it
    r = api.delete(f"groups/{g['id']}")
    assert (r.status_code, r.json()["error"]["code"]) == (409, errors.GROUP_IN_USE)

    alert = {
        "name": "Welcome",
        "case_type": "mother",
        "criteria": [],
        "content": {"text": "Welcome {case.name}"},
        "recipients": {"roles": ["case"], "group": g["id"]},
        "schedule": {"type": "offsets", "unit": "hours", "offsets": [0]},
    }
    r = api.post("alerts", alert)
    assert r.status_code == 201, r.content
    a = r.json()
    assert a["recipients"] == {"roles": ["case"], "group": g["id"]}
    runner.run(ConditionalAlert.objects.get(pk=a["id"]))
    started = ScheduleInstance.objects.filter(alert_id=a["id"], active=True)
    assert sorted(i.case.case_id for i in started) == sorted([cs[0]["case_id"], cs[2]["case_id"]])
    # a case that joins the group (its property changes) starts, one that leaves it ends
    api.patch(f"cases/{cs[1]['case_id']}", {"properties": {"district": "North"}})
    api.patch(f"cases/{cs[0]['case_id']}", {"properties": {"district": "South"}})
    assert sorted(i.case.case_id for i in started.all()) == sorted([cs[1]["case_id"], cs[2]["case_id"]])
    # old bodies go on working: a list of roles, no group
    r = api.patch(f"alerts/{a['id']}", {"recipients": ["case"]})
    assert r.status_code == 200 and r.json()["recipients"] == ["case"]
    tick.tick()
