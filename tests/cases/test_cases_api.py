"""The case API: create, get, update, close/reopen, delete, list with filters, bulk — all over HTTP."""

from __future__ import annotations

import re
from datetime import datetime

import pytest

from casemsg.cases.models import Case
from casemsg.contacts.models import PhoneEntry
from tests.conftest import assert_error

INDIA = "919812345678"


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# --- create -------------------------------------------------------------------------------------


def test_create_returns_the_case(api):
    r = api.post(
        "cases",
        {
            "case_type": "mother",
            "name": "Asha",
            "external_id": "EXT-1",
            "owner_id": "chw-7",
            "parent_id": "household-3",
            "properties": {"district": "north", "visits": 3, "pregnant": True, "dose": 1.5, "empty": ""},
        },
    )
    assert r.status_code == 201, r.content
    c = r.json()
    assert re.fullmatch(r"[0-9a-f]{32}", c["case_id"])
    assert c["case_type"] == "mother"
    assert c["name"] == "Asha"
    assert (c["external_id"], c["owner_id"], c["parent_id"]) == ("EXT-1", "chw-7", "household-3")
    # properties are free-form strings
    assert c["properties"] == {"district": "north", "visits": "3", "pregnant": "1", "dose": "1.5", "empty": ""}
    assert c["closed"] is False
    assert ts(c["opened_on"]) == ts(c["modified_on"])
    assert api.get(f"cases/{c['case_id']}").json() == c


def test_create_with_a_given_case_id(api):
    c = api.case(case_id="case-0001")
    assert c["case_id"] == "case-0001"
    assert api.get("cases/case-0001").status_code == 200


def test_create_with_an_existing_case_id_is_a_conflict(api):
    api.case({"a": "1"}, case_id="dup")
    assert_error(
        api.post("cases", {"case_type": "patient", "case_id": "dup", "properties": {"a": "2"}}), 409, "CASE_EXISTS"
    )
    assert api.get("cases/dup").json()["properties"] == {"a": "1"}


def test_same_case_id_in_two_projects(api, other_api):
    api.case({"who": "alpha"}, case_id="shared-id")
    other_api.case({"who": "beta"}, case_id="shared-id")
    assert api.get("cases/shared-id").json()["properties"] == {"who": "alpha"}
    assert other_api.get("cases/shared-id").json()["properties"] == {"who": "beta"}


@pytest.mark.parametrize(
    "body, code",
    [
        ({"name": "no type"}, "VALIDATION_ERROR"),
        ({"case_type": ""}, "CASE_TYPE_REQUIRED"),
        ({"case_type": "   "}, "CASE_TYPE_REQUIRED"),
        ({"case_type": "x" * 65}, "VALUE_TOO_LONG"),
        ({"case_type": "patient", "name": "x" * 256}, "VALUE_TOO_LONG"),
        ({"case_type": "patient", "properties": {"name": "x" * 256}}, "VALUE_TOO_LONG"),
        ({"case_type": "patient", "case_id": "x" * 65}, "VALUE_TOO_LONG"),
        ({"case_type": "patient", "case_id": "  "}, "INVALID_CASE_ID"),
        ({"case_type": "patient", "properties": {"nested": {"a": 1}}}, "INVALID_PROPERTY"),
        ({"case_type": "patient", "properties": {"list": [1, 2]}}, "INVALID_PROPERTY"),
        ({"case_type": "patient", "properties": {"": "blank name"}}, "INVALID_PROPERTY"),
        ({"case_type": "patient", "properties": {"k" * 256: "long name"}}, "INVALID_PROPERTY"),
        ({"case_type": "patient", "properties": {"note": "nul \x00 inside"}}, "INVALID_PROPERTY"),
        ({"case_type": "patient", "name": "nul \x00"}, "INVALID_VALUE"),
        ({"case_type": "patient", "properties": "not a dict"}, "VALIDATION_ERROR"),
    ],
)
def test_create_validation_errors_are_422_and_write_nothing(api, body, code):
    assert_error(api.post("cases", body), 422, code)
    assert Case.objects.count() == 0


def test_malformed_json_is_an_error_in_the_same_shape(api):
    r = api.client.post(
        api.url("cases"), "{not json", content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {api.key}"
    )
    assert_error(r, 400, "HTTP_ERROR")


# --- get / 404 ----------------------------------------------------------------------------------


def test_unknown_case_is_404(api):
    assert_error(api.get("cases/nope"), 404, "CASE_NOT_FOUND")
    assert_error(api.patch("cases/nope", {"name": "x"}), 404, "CASE_NOT_FOUND")
    assert_error(api.delete("cases/nope"), 404, "CASE_NOT_FOUND")
    assert_error(api.get("cases/nope/contact"), 404, "CASE_NOT_FOUND")


def test_another_projects_case_is_404_under_this_project(api, other_api):
    c = other_api.case({"secret": "beta"})
    for r in (
        api.get(f"cases/{c['case_id']}"),
        api.get(f"cases/{c['case_id']}/contact"),
        api.patch(f"cases/{c['case_id']}", {"name": "stolen"}),
        api.delete(f"cases/{c['case_id']}"),
    ):
        assert_error(r, 404, "CASE_NOT_FOUND")
        assert b"beta" not in r.content
    assert other_api.get(f"cases/{c['case_id']}").json()["name"] == "Asha"


# --- update -------------------------------------------------------------------------------------


def test_update_merges_properties_and_null_removes_one(api):
    c = api.case({"district": "north", "village": "Kibera", "visits": "1"})
    r = api.patch(f"cases/{c['case_id']}", {"properties": {"visits": 2, "village": None, "new": "x"}})
    assert r.status_code == 200, r.content
    u = r.json()
    assert u["properties"] == {"district": "north", "visits": "2", "new": "x"}
    assert api.get(f"cases/{c['case_id']}").json()["properties"] == u["properties"]
    # removing a property that is not there is fine
    r = api.patch(f"cases/{c['case_id']}", {"properties": {"never-set": None}})
    assert r.json()["properties"] == u["properties"]


def test_update_fields_and_times(api):
    c = api.case(owner_id="chw-1")
    u = api.patch(
        f"cases/{c['case_id']}", {"name": "Asha K", "owner_id": "chw-2", "case_type": "mother", "external_id": "E9"}
    ).json()
    assert (u["name"], u["owner_id"], u["case_type"], u["external_id"]) == ("Asha K", "chw-2", "mother", "E9")
    assert u["case_id"] == c["case_id"]
    assert u["opened_on"] == c["opened_on"]
    assert ts(u["modified_on"]) > ts(c["modified_on"])
    # an empty PATCH changes nothing but the modification time
    u2 = api.patch(f"cases/{c['case_id']}", {}).json()
    assert {k: v for k, v in u2.items() if k != "modified_on"} == {k: v for k, v in u.items() if k != "modified_on"}


def test_update_validation_error_writes_nothing(api):
    c = api.case({"a": "1"})
    assert_error(api.patch(f"cases/{c['case_id']}", {"properties": {"a": "2", "b": {"x": 1}}}), 422, "INVALID_PROPERTY")
    assert_error(api.patch(f"cases/{c['case_id']}", {"closed": "perhaps"}), 422, "VALIDATION_ERROR")
    assert api.get(f"cases/{c['case_id']}").json() == c


# --- close / reopen -----------------------------------------------------------------------------


def test_close_and_reopen(api):
    c = api.case({"contact_phone_number": INDIA})
    assert c["closed_on"] is None
    closed = api.patch(f"cases/{c['case_id']}", {"closed": True}).json()
    assert closed["closed"] is True and closed["closed_on"] is not None
    assert not PhoneEntry.objects.filter(phone_number=INDIA).exists()  # a closed case holds no number
    reopened = api.patch(f"cases/{c['case_id']}", {"closed": False}).json()
    assert reopened["closed"] is False and reopened["closed_on"] is None
    assert PhoneEntry.objects.filter(phone_number=INDIA).count() == 1


def test_close_and_update_in_one_call(api):
    c = api.case({"outcome": ""})
    u = api.patch(f"cases/{c['case_id']}", {"closed": True, "properties": {"outcome": "delivered"}}).json()
    assert u["closed"] is True and u["properties"]["outcome"] == "delivered"


# --- delete -------------------------------------------------------------------------------------


def test_delete(api):
    c = api.case({"contact_phone_number": INDIA})
    keep = api.case()
    r = api.delete(f"cases/{c['case_id']}")
    assert r.status_code == 204
    assert_error(api.get(f"cases/{c['case_id']}"), 404, "CASE_NOT_FOUND")
    assert_error(api.delete(f"cases/{c['case_id']}"), 404, "CASE_NOT_FOUND")
    assert not PhoneEntry.objects.filter(phone_number=INDIA).exists()
    assert [x["case_id"] for x in api.get("cases").json()["items"]] == [keep["case_id"]]


# --- list ---------------------------------------------------------------------------------------


@pytest.fixture
def some_cases(api, other_api):
    made = {
        "m1": api.case({"district": "north", "risk": "high"}, case_type="mother", case_id="m1", owner_id="o1"),
        "m2": api.case({"district": "south", "risk": "high"}, case_type="mother", case_id="m2", external_id="X2"),
        "m3": api.case({"district": "north"}, case_type="mother", case_id="m3"),
        "c1": api.case({"district": "north", "a__b": "odd", "contains": "x"}, case_type="child", case_id="c1"),
    }
    api.patch("cases/m3", {"closed": True})
    other_api.case({"district": "north"}, case_type="mother", case_id="beta-1")
    return made


def ids(r) -> list[str]:
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["count"] >= len(body["items"])
    return [c["case_id"] for c in body["items"]]


def test_list_all_of_this_project_only(api, some_cases):
    r = api.get("cases")
    assert ids(r) == ["m1", "m2", "m3", "c1"]
    assert r.json()["count"] == 4


@pytest.mark.parametrize(
    "params, expected",
    [
        ({"case_type": "mother"}, ["m1", "m2", "m3"]),
        ({"case_type": "child"}, ["c1"]),
        ({"case_type": "nobody"}, []),
        ({"closed": "true"}, ["m3"]),
        ({"closed": "false"}, ["m1", "m2", "c1"]),
        ({"case_type": "mother", "closed": "false"}, ["m1", "m2"]),
        ({"prop.district": "north"}, ["m1", "m3", "c1"]),
        ({"prop.district": "north", "prop.risk": "high"}, ["m1"]),
        ({"prop.district": "north", "closed": "false", "case_type": "mother"}, ["m1"]),
        ({"prop.risk": "low"}, []),
        ({"prop.missing": "x"}, []),
        ({"owner_id": "o1"}, ["m1"]),
        ({"external_id": "X2"}, ["m2"]),
        # property names are taken literally, never as lookups or paths
        ({"prop.a__b": "odd"}, ["c1"]),
        ({"prop.contains": "x"}, ["c1"]),
        ({"prop.isnull": "true"}, []),
    ],
)
def test_list_filters(api, some_cases, params, expected):
    r = api.get("cases", **params)
    assert ids(r) == expected
    assert r.json()["count"] == len(expected)


def test_list_pages(api, some_cases):
    assert ids(api.get("cases", limit=2)) == ["m1", "m2"]
    r = api.get("cases", limit=2, offset=2)
    assert ids(r) == ["m3", "c1"] and r.json()["count"] == 4
    assert ids(api.get("cases", offset=10)) == []
    assert_error(api.get("cases", limit=0), 422, "VALIDATION_ERROR")
    assert_error(api.get("cases", limit=1001), 422, "VALIDATION_ERROR")
    assert_error(api.get("cases", offset=-1), 422, "VALIDATION_ERROR")
    assert_error(api.get("cases", limit="many"), 422, "VALIDATION_ERROR")


# --- bulk ---------------------------------------------------------------------------------------


def test_bulk_creates_and_updates_in_input_order(api):
    existing = api.case({"district": "north", "keep": "k"}, case_id="e1")
    r = api.post(
        "cases/bulk",
        {
            "cases": [
                {"case_type": "patient", "case_id": "n1", "properties": {"contact_phone_number": INDIA}},
                {"case_id": "e1", "properties": {"district": "south", "keep": None}, "name": "Renamed"},
                {"case_type": "patient", "properties": {"x": "1"}},
                {"case_id": "n2", "case_type": "patient", "closed": True},
            ]
        },
    )
    assert r.status_code == 200, r.content
    out = r.json()
    assert [c["case_id"] for c in out[:2]] == ["n1", "e1"]
    assert out[1]["properties"] == {"district": "south"} and out[1]["name"] == "Renamed"
    assert out[1]["opened_on"] == existing["opened_on"]
    assert re.fullmatch(r"[0-9a-f]{32}", out[2]["case_id"])
    assert out[3]["closed"] is True
    assert api.get("cases").json()["count"] == 4
    # the registry is synced by the bulk path too
    assert api.contact("n1")["phone_number"] == INDIA
    assert PhoneEntry.objects.filter(phone_number=INDIA).count() == 1


def test_bulk_of_1000_is_accepted(api):
    cases = [
        {"case_type": "patient", "case_id": f"b{i:04d}", "properties": {"contact_phone_number": f"2547{i:08d}"}}
        for i in range(1000)
    ]
    r = api.post("cases/bulk", {"cases": cases})
    assert r.status_code == 200, r.content
    assert len(r.json()) == 1000
    assert Case.objects.count() == 1000
    assert PhoneEntry.objects.count() == 1000
    # and the same 1000 again are updates
    r = api.post("cases/bulk", {"cases": [{"case_id": c["case_id"], "properties": {"v": "2"}} for c in cases]})
    assert r.status_code == 200, r.content
    assert Case.objects.count() == 1000
    assert api.get("cases/b0999").json()["properties"]["v"] == "2"


def test_bulk_of_1001_is_refused(api):
    cases = [{"case_type": "patient", "case_id": f"b{i}"} for i in range(1001)]
    assert_error(api.post("cases/bulk", {"cases": cases}), 422, "TOO_MANY_CASES")
    assert Case.objects.count() == 0


@pytest.mark.parametrize(
    "bad_item, code",
    [
        ({"case_id": "new-without-type"}, "CASE_TYPE_REQUIRED"),
        ({"case_type": "patient", "properties": {"p": ["list"]}}, "INVALID_PROPERTY"),
        ({"case_type": "patient", "case_id": "y" * 65}, "VALUE_TOO_LONG"),
        ({"case_type": "patient", "case_id": "e1"}, "DUPLICATE_CASE_ID"),
    ],
)
def test_bulk_is_one_transaction_a_failing_item_writes_nothing(api, bad_item, code):
    api.case({"contact_phone_number": INDIA, "v": "1"}, case_id="e1")
    before_cases = list(Case.objects.order_by("pk").values())
    before_entries = list(PhoneEntry.objects.order_by("pk").values())
    good = [
        {"case_type": "patient", "case_id": f"g{i}", "properties": {"contact_phone_number": f"2547{i:08d}"}}
        for i in range(50)
    ]
    update = {"case_id": "e1", "properties": {"v": "2", "contact_phone_number": None}}
    assert_error(api.post("cases/bulk", {"cases": [update, *good, bad_item]}), 422, code)
    assert list(Case.objects.order_by("pk").values()) == before_cases
    assert list(PhoneEntry.objects.order_by("pk").values()) == before_entries


def test_bulk_schema_errors(api):
    assert_error(api.post("cases/bulk", {}), 422, "VALIDATION_ERROR")
    assert_error(api.post("cases/bulk", {"cases": "nope"}), 422, "VALIDATION_ERROR")
    r = api.post("cases/bulk", {"cases": []})
    assert r.status_code == 200 and r.json() == []
