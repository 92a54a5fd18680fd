"""The mobile worker API: create, update, deactivate, delete, and the worker's contact status."""

from __future__ import annotations

import pytest

from casemsg.contacts.models import PhoneEntry
from casemsg.projects.models import Project
from casemsg.workers.models import MobileWorker
from tests.conftest import assert_error

INDIA = "919812345678"
KENYA = "254712345678"
US = "12066171234"


def create(api, **body) -> dict:
    r = api.post("mobile-workers", {"username": "chw1", **body})
    assert r.status_code == 201, r.content
    return r.json()


def contact(api, worker_id: int) -> dict:
    r = api.get(f"mobile-workers/{worker_id}/contact")
    assert r.status_code == 200, r.content
    return r.json()


def entries(number: str) -> list[tuple]:
    return list(PhoneEntry.objects.filter(phone_number=number).values_list("worker__username", "verified", "two_way"))


def test_create_and_get(api):
    w = create(
        api,
        name="Neema",
        phone_numbers=["+919812345678", {"number": KENYA, "verified": True}, INDIA],
        email="neema@example.org",
        time_zone="Africa/Nairobi",
        language_code="sw",
    )
    assert w["username"] == "chw1" and w["name"] == "Neema" and w["active"] is True
    # '+' stripped, duplicates collapsed, new numbers unverified unless said
    assert w["phone_numbers"] == [{"number": INDIA, "verified": False}, {"number": KENYA, "verified": True}]
    assert (w["email"], w["time_zone"], w["language_code"]) == ("neema@example.org", "Africa/Nairobi", "sw")
    r = api.get(f"mobile-workers/{w['id']}")
    assert r.status_code == 200 and r.json() == w
    # the registry mirrors the numbers, and the first verified registrant of KENYA owns it
    assert entries(INDIA) == [("chw1", False, False)]
    assert entries(KENYA) == [("chw1", True, True)]


@pytest.mark.parametrize(
    "numbers, fix",
    [
        (["1-206-617-1234"], "Remove the dashes: 12066171234"),
        ([INDIA, "9109812345678"], "Remove the leading 0 of the national number: 919812345678"),
        ([{"number": "123", "verified": True}], None),
        ([""], None),
        (["not a number"], None),
        (["49123456789012345"], None),
    ],
)
def test_bad_phone_number_is_422_and_nothing_is_written(api, numbers, fix):
    err = assert_error(
        api.post("mobile-workers", {"username": "chw1", "phone_numbers": numbers}), 422, "INVALID_PHONE_NUMBER"
    )
    if fix:
        assert fix in err["message"]
    assert MobileWorker.objects.count() == 0
    assert PhoneEntry.objects.count() == 0


def test_auto_normalize_setting_applies_to_workers(api):
    Project.objects.filter(slug="alpha").update(auto_normalize_phone_numbers=True)
    w = create(api, phone_numbers=["9109812345678", "254-712-345-678"])
    assert [p["number"] for p in w["phone_numbers"]] == [INDIA, KENYA]


@pytest.mark.parametrize(
    "body, status, code",
    [
        ({"name": "no username"}, 422, "VALIDATION_ERROR"),
        ({"username": "   "}, 422, "USERNAME_REQUIRED"),
        ({"username": "u" * 151}, 422, "VALUE_TOO_LONG"),
        ({"username": "chw", "name": "n" * 256}, 422, "VALUE_TOO_LONG"),
        ({"username": "chw", "email": "e" * 250 + "@x.org"}, 422, "VALUE_TOO_LONG"),
        ({"username": "chw", "time_zone": "Z" * 65}, 422, "VALUE_TOO_LONG"),
        ({"username": "chw\x00"}, 422, "INVALID_VALUE"),
        ({"username": "chw", "phone_numbers": [12066171234]}, 422, "VALIDATION_ERROR"),
        ({"username": "chw", "phone_numbers": "12066171234"}, 422, "VALIDATION_ERROR"),
        ({"username": "chw", "active": "sometimes"}, 422, "VALIDATION_ERROR"),
    ],
)
def test_create_validation(api, body, status, code):
    assert_error(api.post("mobile-workers", body), status, code)
    assert MobileWorker.objects.count() == 0


def test_username_unique_per_project(api, other_api):
    create(api)
    assert_error(api.post("mobile-workers", {"username": "chw1"}), 409, "USERNAME_TAKEN")
    r = other_api.post("mobile-workers", {"username": "chw1"})
    assert r.status_code == 201, r.content
    assert MobileWorker.objects.filter(project__slug="alpha").count() == 1


def test_update(api):
    w = create(api, phone_numbers=[{"number": KENYA, "verified": True}])
    r = api.patch(
        f"mobile-workers/{w['id']}",
        {"name": "Neema K", "email": "n@example.org", "phone_numbers": ["+254712345678", INDIA]},
    )
    assert r.status_code == 200, r.content
    u = r.json()
    assert u["name"] == "Neema K" and u["email"] == "n@example.org" and u["username"] == "chw1"
    # keeping a number keeps its verification
    assert u["phone_numbers"] == [{"number": KENYA, "verified": True}, {"number": INDIA, "verified": False}]
    assert api.get(f"mobile-workers/{w['id']}").json() == u
    assert entries(INDIA) == [("chw1", False, False)]
    # replacing the list drops the numbers left out
    u = api.patch(f"mobile-workers/{w['id']}", {"phone_numbers": [INDIA]}).json()
    assert u["phone_numbers"] == [{"number": INDIA, "verified": False}]
    assert entries(KENYA) == []
    # a PATCH without phone_numbers leaves them alone
    u = api.patch(f"mobile-workers/{w['id']}", {"time_zone": "Africa/Nairobi"}).json()
    assert u["phone_numbers"] == [{"number": INDIA, "verified": False}]


def test_update_with_a_bad_number_is_422_and_changes_nothing(api):
    w = create(api, name="Neema", phone_numbers=[{"number": KENYA, "verified": True}])
    err = assert_error(
        api.patch(f"mobile-workers/{w['id']}", {"name": "Changed", "phone_numbers": [INDIA, "91-98123-45678"]}),
        422,
        "INVALID_PHONE_NUMBER",
    )
    assert "Remove the dashes: 919812345678" in err["message"]
    assert api.get(f"mobile-workers/{w['id']}").json() == w
    assert entries(KENYA) == [("chw1", True, True)]
    assert entries(INDIA) == []


def test_rename_to_a_taken_username_is_409_and_changes_nothing(api):
    create(api, username="a")
    b = create(api, username="b", phone_numbers=[KENYA])
    assert_error(
        api.patch(f"mobile-workers/{b['id']}", {"username": "a", "phone_numbers": [INDIA]}), 409, "USERNAME_TAKEN"
    )
    assert api.get(f"mobile-workers/{b['id']}").json() == b
    assert entries(INDIA) == []


def test_deactivate_and_reactivate(api):
    w = create(api, phone_numbers=[{"number": KENYA, "verified": True}], email="n@example.org")
    assert contact(api, w["id"])["sms"]["ok"] is True
    r = api.patch(f"mobile-workers/{w['id']}", {"active": False})
    assert r.status_code == 200 and r.json()["active"] is False
    st = contact(api, w["id"])
    for channel in ("sms", "two_way_sms", "email"):
        assert st[channel]["error"]["code"] == "CONTACT_IS_INACTIVE"
    assert entries(KENYA) == []  # an inactive worker holds no number
    assert [x["username"] for x in api.get("mobile-workers", active="false").json()["items"]] == ["chw1"]
    assert api.get("mobile-workers", active="true").json()["items"] == []
    api.patch(f"mobile-workers/{w['id']}", {"active": True})
    st = contact(api, w["id"])
    assert st["sms"]["ok"] and st["two_way_sms"]["ok"] and st["email"]["ok"]
    assert entries(KENYA) == [("chw1", True, True)]


def test_delete(api):
    w = create(api, phone_numbers=[{"number": KENYA, "verified": True}])
    assert api.delete(f"mobile-workers/{w['id']}").status_code == 204
    assert_error(api.get(f"mobile-workers/{w['id']}"), 404, "MOBILE_WORKER_NOT_FOUND")
    assert_error(api.delete(f"mobile-workers/{w['id']}"), 404, "MOBILE_WORKER_NOT_FOUND")
    assert_error(api.get(f"mobile-workers/{w['id']}/contact"), 404, "MOBILE_WORKER_NOT_FOUND")
    assert entries(KENYA) == []
    assert api.get("mobile-workers").json()["items"] == []


def test_unknown_and_other_projects_workers_are_404(api, other_api):
    w = create(other_api, username="beta-worker")
    for r in (
        api.get(f"mobile-workers/{w['id']}"),
        api.patch(f"mobile-workers/{w['id']}", {"name": "x"}),
        api.delete(f"mobile-workers/{w['id']}"),
        api.get(f"mobile-workers/{w['id']}/contact"),
        api.get("mobile-workers/999999"),
    ):
        assert_error(r, 404, "MOBILE_WORKER_NOT_FOUND")
        assert b"beta-worker" not in r.content
    assert api.get("mobile-workers").json()["items"] == []
    assert other_api.get(f"mobile-workers/{w['id']}").json()["name"] == ""


# --- the worker as a contact ----------------------------------------------------------------------


def test_worker_contact(api):
    w = create(
        api,
        name="Neema",
        phone_numbers=[INDIA, {"number": KENYA, "verified": True}],
        email="neema@example.org",
        time_zone="Africa/Nairobi",
        language_code="sw",
    )
    st = contact(api, w["id"])
    assert st["phone_number"] == KENYA  # the first verified number is the messaging number
    assert st["verified"] is True and st["two_way"] is True
    assert st["sms"] == {"ok": True, "error": None}
    assert st["two_way_sms"] == {"ok": True, "error": None}
    assert st["email"] == {"ok": True, "error": None, "address": "neema@example.org"}
    assert (st["time_zone"], st["time_zone_source"]) == ("Africa/Nairobi", "contact")
    assert (st["language_code"], st["language_source"]) == ("sw", "contact")
    assert st["warnings"] == []


def test_worker_contact_problems(api):
    w = create(api, phone_numbers=[US], email="nope", time_zone="Mars/Base", language_code="xx")
    st = contact(api, w["id"])
    assert st["phone_number"] == US and st["verified"] is False
    assert st["sms"]["error"]["code"] == "NO_CONSENT"
    assert st["two_way_sms"]["error"]["code"] == "NO_TWO_WAY_PHONE_NUMBER"
    assert st["email"]["error"]["code"] == "INVALID_EMAIL_ADDRESS"
    assert (st["time_zone"], st["time_zone_source"]) == ("UTC", "project")
    assert (st["language_code"], st["language_source"]) == ("en", "project")
    assert {w["code"] for w in st["warnings"]} >= {"INVALID_TIME_ZONE", "UNKNOWN_LANGUAGE_CODE"}
    # a worker's name is its username at worst: never NO_CASE_NAME
    assert "NO_CASE_NAME" not in {w["code"] for w in st["warnings"]}
    # consent recorded: the number verified
    api.patch(f"mobile-workers/{w['id']}", {"phone_numbers": [{"number": US, "verified": True}]})
    assert contact(api, w["id"])["sms"]["ok"] is True


def test_worker_without_numbers(api):
    st = contact(api, create(api)["id"])
    assert st["phone_number"] is None
    assert st["sms"]["error"]["code"] == "NO_PHONE_NUMBER"
    assert st["email"]["error"]["code"] == "NO_EMAIL_ADDRESS"
