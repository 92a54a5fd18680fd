"""Broadcasts and alerts through the HTTP API: CRUD, pause/resume/cancel, sends with their failures, the
pre-flight, one case's coming sends, the 422s that name the field, and another project's key."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from casemsg.core import errors
from casemsg.messaging import pipeline
from casemsg.scheduling import runner, tick
from casemsg.scheduling.models import ConditionalAlert
from tests.conftest import sandbox_gateway

KE = "254711000001"


def later(days: int) -> str:
    return (datetime.now(UTC).date() + timedelta(days=days)).isoformat()


def broadcast_body(**over: Any) -> dict[str, Any]:
    return {
        "name": "Reminder",
        "content": {"text": "Hello {case.name}"},
        "recipients": {"case_type": "mother"},
        "schedule": {"type": "daily", "time": "09:00", "start_date": later(2), "count": 3, "time_zone": "UTC"},
        **over,
    }


def alert_body(**over: Any) -> dict[str, Any]:
    return {
        "name": "Welcome",
        "case_type": "mother",
        "criteria": [{"property": "status", "operator": "equal", "value": "pregnant"}],
        "content": {"text": "Welcome {case.name}"},
        "recipients": ["case"],
        "schedule": {"type": "offsets", "unit": "days", "offsets": [1, 8]},
        **over,
    }


@pytest.fixture
def mothers(api):
    api.case(
        case_type="mother", case_id="m-1", name="Asha", properties={"contact_phone_number": KE, "status": "pregnant"}
    )
    api.case(case_type="mother", case_id="m-2", name="Bad", properties={"contact_phone_number": "1-206-617-1234"})


# --- broadcasts -----------------------------------------------------------------------------------
def test_broadcast_crud_pause_resume_cancel(api, mothers):
    r = api.post("broadcasts", broadcast_body())
    assert r.status_code == 201, r.content
    b = r.json()
    assert b["status"] == "active" and b["recipient_count"] == 2 and b["running"] == 2
    assert b["schedule"]["times"] == ["09:00"] and b["schedule_summary"].startswith("daily at 09:00")
    assert b["next_due_utc"].startswith(f"{later(2)}T09:00:00")
    bid = b["id"]

    listed = api.get("broadcasts").json()
    assert listed["count"] == 1 and [x["id"] for x in listed["items"]] == [bid]
    assert api.get("broadcasts", status="paused").json() == {"count": 0, "items": []}
    assert api.get("broadcasts", status="nonsense").json()["error"]["code"] == errors.VALIDATION_ERROR
    assert api.get(f"broadcasts/{bid}").json()["name"] == "Reminder"

    r = api.patch(f"broadcasts/{bid}", {"name": "Renamed", "content": {"text": "Hi {case.name}"}})
    assert r.status_code == 200, r.content
    assert (r.json()["name"], r.json()["content"]["text"], r.json()["revision"]) == ("Renamed", "Hi {case.name}", 1)

    paused = api.post(f"broadcasts/{bid}/pause").json()
    assert paused["status"] == "paused" and paused["next_due_utc"] is None
    resumed = api.post(f"broadcasts/{bid}/resume").json()
    assert resumed["status"] == "active" and resumed["next_due_utc"] is not None

    r = api.delete(f"broadcasts/{bid}")
    assert r.status_code == 200 and r.json()["status"] == "cancelled" and r.json()["running"] == 0
    r = api.patch(f"broadcasts/{bid}", {"name": "Again"})
    assert r.status_code == 409 and r.json()["error"]["code"] == errors.SCHEDULE_ENDED
    assert api.post(f"broadcasts/{bid}/resume").status_code == 409

    r = api.get("broadcasts/999999")
    assert r.status_code == 404 and r.json()["error"]["code"] == errors.BROADCAST_NOT_FOUND


@pytest.mark.parametrize(
    ("change", "code", "words"),
    [
        ({"nmae": "typo"}, errors.VALIDATION_ERROR, "nmae"),
        ({"schedule": {"type": "daily", "time": "25:00"}}, errors.VALIDATION_ERROR, "schedule.time"),
        (
            {"schedule": {"type": "daily", "time": "09:00", "time_zone": "Mars/Olympus"}},
            errors.INVALID_TIME_ZONE,
            "Mars",
        ),
        ({"schedule": {"type": "weekly", "time": "09:00"}}, errors.VALIDATION_ERROR, "weekdays"),
        ({"schedule": {"type": "daily", "time": "09:00", "colour": "red"}}, errors.VALIDATION_ERROR, "colour"),
        ({"content": {"translations": {"xx": "Hi"}, "text": "Hi"}}, errors.UNKNOWN_LANGUAGE_CODE, "xx"),
        ({"content": {"text": "Hi {case.name"}}, errors.CANNOT_RENDER_MESSAGE, "content.text"),
        ({"recipients": {}}, errors.VALIDATION_ERROR, "recipients"),
        (
            {"schedule": {"type": "once", "date": "2000-01-01", "time": "09:00", "time_zone": "UTC"}},
            errors.VALIDATION_ERROR,
            "passed",
        ),
    ],
)
def test_a_bad_broadcast_is_a_422_naming_the_problem(api, change, code, words):
    for path in ("broadcasts", "broadcasts/preflight"):
        r = api.post(path, broadcast_body(**change))
        assert r.status_code == 422, (path, r.content)
        assert r.json()["error"]["code"] == code
        assert words in r.json()["error"]["message"]


def test_broadcast_sends_show_status_and_failure_reasons(api, mothers):
    sandbox_gateway()
    r = api.post("broadcasts", broadcast_body(schedule={"type": "now"}))
    bid = r.json()["id"]
    assert tick.tick() == 0  # a "now" broadcast queues its messages when it is created
    pipeline.deliver_due()
    sends = api.get(f"broadcasts/{bid}/sends").json()
    assert sends["count"] == 2
    by_case = {m["recipient"]["case_id"]: m for m in sends["items"]}
    assert by_case["m-1"]["status"] in ("sent", "delivered") and by_case["m-1"]["text"] == "Hello Asha"
    assert by_case["m-2"]["status"] == "failed" and by_case["m-2"]["error"]["code"] == errors.INVALID_PHONE_NUMBER
    assert by_case["m-2"]["error"]["fix"]
    failed = api.get(f"broadcasts/{bid}/sends", status="failed").json()
    assert [m["recipient"]["case_id"] for m in failed["items"]] == ["m-2"]
    assert api.get(f"broadcasts/{bid}/sends", limit=0).status_code == 422
    b = api.get(f"broadcasts/{bid}").json()
    assert b["status"] == "done" and sum(b["messages"].values()) == 2


def test_preflight_answers_the_numbers_and_writes_nothing(api, mothers):
    r = api.post("broadcasts/preflight", broadcast_body())
    assert r.status_code == 200, r.content
    p = r.json()
    assert (p["recipients"], p["sendable"], p["blocked"], p["segments"]) == (2, 1, {"INVALID_PHONE_NUMBER": 1}, 1)
    [first] = p["first_sends"]
    assert first["case_id"] == "m-1" and first["text"] == "Hello Asha" and first["time_zone"] == "UTC"
    assert first["due_utc"].startswith(f"{later(2)}T09:00:00") and first["local_time"] == f"{later(2)}T09:00:00"
    assert api.get("broadcasts").json()["count"] == 0
    assert api.post("broadcasts/preflight?limit=0", broadcast_body()).json()["first_sends"] == []
    assert api.post("broadcasts/preflight?limit=101", broadcast_body()).status_code == 422


# --- alerts ---------------------------------------------------------------------------------------
def test_alert_crud_with_run_progress(api, mothers):
    r = api.post("alerts", alert_body())
    assert r.status_code == 201, r.content
    a = r.json()
    assert a["run_status"] == "running" and (a["run_done"], a["run_total"]) == (0, 2)
    assert a["criteria"] == [{"property": "status", "operator": "equal", "value": "pregnant"}]
    aid = a["id"]

    runner.run(ConditionalAlert.objects.get(pk=aid))
    a = api.get(f"alerts/{aid}").json()
    assert (a["run_status"], a["run_done"], a["run_total"]) == ("idle", 2, 2)
    assert a["run"]["up_to_date"] and a["run"]["percent"] == 100.0
    assert a["recipient_count"] == 1 and a["running"] == 1  # only Asha is pregnant

    listed = api.get("alerts", case_type="mother").json()
    assert listed["count"] == 1 and listed["items"][0]["id"] == aid
    assert api.get("alerts", case_type="child").json()["count"] == 0

    r = api.patch(f"alerts/{aid}", {"name": "Hello", "content": {"text": "Hi"}})
    assert r.status_code == 200 and r.json()["name"] == "Hello" and r.json()["run_status"] == "idle"
    assert api.post(f"alerts/{aid}/pause").json()["status"] == "paused"
    assert api.post(f"alerts/{aid}/resume").json()["status"] == "active"
    assert api.get(f"alerts/{aid}/sends").json() == {"count": 0, "items": []}

    assert api.delete(f"alerts/{aid}").status_code == 204
    r = api.get(f"alerts/{aid}")
    assert r.status_code == 404 and r.json()["error"]["code"] == errors.ALERT_NOT_FOUND


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"criteria": [{"property": "status", "operator": "looks_like", "value": "x"}]}, errors.UNKNOWN_OPERATOR),
        ({"case_type": "nobody"}, errors.UNKNOWN_CASE_TYPE),
        ({"criteria": [{"property": "status", "operator": "regex", "value": "("}]}, errors.INVALID_REGEX),
        ({"schedule": {"type": "daily", "time": "24:30"}}, errors.VALIDATION_ERROR),
        ({"schedule": {"type": "daily", "time": "09:00", "time_zone": "Nowhere/City"}}, errors.INVALID_TIME_ZONE),
        ({"recipients": ["boss"]}, errors.VALIDATION_ERROR),
        (
            {"criteria": [{"property": "status", "operator": "equal", "value": "x", "extra": 1}]},
            errors.VALIDATION_ERROR,
        ),
    ],
)
def test_a_bad_alert_is_a_422(api, mothers, change, code):
    r = api.post("alerts", alert_body(**change))
    assert r.status_code == 422, r.content
    assert r.json()["error"]["code"] == code


def test_another_projects_key_is_refused(api, other_api, mothers):
    bid = api.post("broadcasts", broadcast_body()).json()["id"]
    aid = api.post("alerts", alert_body()).json()["id"]
    theirs = other_api.key
    for r in (
        api.get("broadcasts", key=theirs),
        api.get(f"broadcasts/{bid}", key=theirs),
        api.post(f"broadcasts/{bid}/pause", key=theirs),
        api.delete(f"broadcasts/{bid}", key=theirs),
        api.post("broadcasts/preflight", broadcast_body(), key=theirs),
        api.get(f"alerts/{aid}", key=theirs),
        api.get(f"alerts/{aid}/sends", key=theirs),
        api.get("cases/m-1/schedule", key=theirs),
    ):
        assert r.status_code == 403 and r.json()["error"]["code"] == errors.FORBIDDEN
    # and through its own URL, another project's ids are not found
    assert other_api.get(f"broadcasts/{bid}").status_code == 404
    assert other_api.post(f"alerts/{aid}/pause").status_code == 404


# --- a case's coming sends ------------------------------------------------------------------------
def test_case_schedule_merges_alerts_and_broadcasts_by_due_time(api, mothers):
    aid = api.post("alerts", alert_body()).json()["id"]
    runner.run(ConditionalAlert.objects.get(pk=aid))
    api.post("broadcasts", broadcast_body(recipients={"case_ids": ["m-1"]}))

    r = api.get("cases/m-1/schedule", limit=4)
    assert r.status_code == 200, r.content
    items = r.json()["items"]
    assert r.json()["count"] == 4 == len(items)
    assert [i["due_utc"] for i in items] == sorted(i["due_utc"] for i in items)
    assert {i["source"] for i in items} == {"alert", "broadcast"}
    first_alert = next(i for i in items if i["source"] == "alert")
    assert first_alert["text"] == "Welcome Asha" and first_alert["case_id"] == "m-1"
    assert date.fromisoformat(first_alert["due_utc"][:10]) - datetime.now(UTC).date() <= timedelta(days=1)
    broadcast_days = [i["local_time"][:10] for i in items if i["source"] == "broadcast"]
    assert broadcast_days == [later(2), later(3), later(4)][: len(broadcast_days)] and broadcast_days

    assert api.get("cases/m-2/schedule").json() == {"count": 0, "items": []}
    assert api.get("cases/nobody/schedule").json()["error"]["code"] == errors.CASE_NOT_FOUND
    assert api.get("cases/m-1/schedule", limit=0).status_code == 422


def test_openapi_documents_the_operations_with_examples(client, db):
    schema = client.get("/api/openapi.json").json()
    paths = schema["paths"]
    for path, method in [
        ("/api/v1/projects/{project}/broadcasts", "post"),
        ("/api/v1/projects/{project}/broadcasts/preflight", "post"),
        ("/api/v1/projects/{project}/broadcasts/{broadcast_id}/sends", "get"),
        ("/api/v1/projects/{project}/alerts/{alert_id}", "delete"),
        ("/api/v1/projects/{project}/cases/{case_id}/schedule", "get"),
    ]:
        assert method in paths[path], (path, method)
    assert "409" in paths["/api/v1/projects/{project}/broadcasts/{broadcast_id}"]["patch"]["responses"]
    components = schema["components"]["schemas"]
    assert components["BroadcastIn"]["examples"][0]["schedule"]["type"] == "daily"
    assert components["AlertIn"]["examples"][0]["criteria"][0]["operator"] == "days_before"
