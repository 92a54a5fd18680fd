"""Property-based: no phone number string (nor time zone, nor property filter) makes the API answer 500.

A case keeps whatever it is given (a bad contact property never rejects a case); a mobile worker's
number is validated (201 or 422). Either way the contact status answers 200 and says what is wrong.
"""

from __future__ import annotations

import itertools
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from casemsg.projects.models import Project

FUZZ = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

DIGITISH = "0123456789+-() ./"
phone_strings = st.one_of(
    st.text(),
    st.text(alphabet=DIGITISH, max_size=24),
    st.from_regex(r"\+?(00)?[1-9][0-9]{0,18}", fullmatch=True),
    st.from_regex(r"\+?[0-9]{1,4}[ -.]?\(?0?[0-9]{2,5}\)?[ -.]?[0-9]{3,8}", fullmatch=True),
    st.text(alphabet=st.characters(categories=["Nd"]), max_size=16),  # digits of every script
)
PHONE_CODES = {None, "INVALID_PHONE_NUMBER", "NO_PHONE_NUMBER", "NO_CONSENT", "PHONE_NUMBER_IN_USE"}
TRICKY = [
    "",
    "+",
    "00",
    "1",
    "+1",
    "١٢٠٦٦١٨١٣٢٣",
    "49123456789012345",
    "9109812345678",
    "1-206-617-1234",
    "\x00",
    "12066171234\x00",
    " 919812345678 ",
    "٩",
    "²³",
    "+" * 30,
    "9" * 300,
]
_seq = itertools.count()


def check_contact(st_: dict) -> None:
    assert st_["sms"]["ok"] or st_["sms"]["error"]["code"] in PHONE_CODES, st_["sms"]
    if st_["sms"]["ok"] or st_["sms"]["error"]["code"] in ("NO_CONSENT", "PHONE_NUMBER_IN_USE"):
        n = st_["phone_number"]
        assert n.isascii() and n.isdigit() and len(n) <= 15, n


@pytest.fixture(params=[False, True], ids=["as-entered", "auto-normalize"])
def any_api(request, api):
    Project.objects.filter(slug="alpha").update(auto_normalize_phone_numbers=request.param)
    return api


@FUZZ
@given(raw=phone_strings, verified=st.sampled_from([None, "1", "0"]))
@example(raw="١٢٠٦٦١٨١٣٢٣", verified="1")
@example(raw="49123456789012345", verified="1")
@example(raw="12066171234\x00", verified=None)
def test_case_phone_number_never_500(any_api, raw, verified):
    props = {"contact_phone_number": raw}
    if verified is not None:
        props["contact_phone_number_is_verified"] = verified
    r = any_api.post("cases", {"case_type": "patient", "name": "Fuzz", "properties": props})
    if "\x00" in raw:
        # PostgreSQL cannot store NUL; refused alike on every database
        assert r.status_code == 422, r.content
        assert r.json()["error"]["code"] == "INVALID_PROPERTY"
        return
    assert r.status_code == 201, r.content
    case_id = r.json()["case_id"]
    r = any_api.get(f"cases/{case_id}/contact")
    assert r.status_code == 200, r.content
    check_contact(r.json())
    # updating to another odd value is just as safe
    r = any_api.patch(f"cases/{case_id}", {"properties": {"contact_phone_number": raw[::-1]}})
    assert r.status_code == 200, r.content
    assert any_api.get(f"cases/{case_id}/contact").status_code == 200


@pytest.mark.parametrize("raw", TRICKY)
def test_case_tricky_phone_numbers(api, raw):
    r = api.post("cases", {"case_type": "patient", "properties": {"contact_phone_number": raw}})
    assert r.status_code == (422 if "\x00" in raw else 201), r.content
    if r.status_code == 201:
        check_contact(api.contact(r.json()["case_id"]))


@FUZZ
@given(raw=phone_strings, as_dict=st.booleans(), verified=st.booleans())
@example(raw="١٢٠٦٦١٨١٣٢٣", as_dict=True, verified=True)
@example(raw="49123456789012345", as_dict=False, verified=False)
@example(raw="\x00", as_dict=False, verified=False)
def test_worker_phone_number_never_500(any_api, raw, as_dict, verified):
    item = {"number": raw, "verified": verified} if as_dict else raw
    r = any_api.post("mobile-workers", {"username": f"fuzz{next(_seq)}", "phone_numbers": [item]})
    assert r.status_code in (201, 422), r.content
    if r.status_code == 422:
        assert r.json()["error"]["code"] in ("INVALID_PHONE_NUMBER", "VALIDATION_ERROR"), r.content
        return
    worker = r.json()
    for p in worker["phone_numbers"]:
        assert p["number"].isascii() and p["number"].isdigit() and len(p["number"]) <= 15
    r = any_api.get(f"mobile-workers/{worker['id']}/contact")
    assert r.status_code == 200, r.content
    check_contact(r.json())


@FUZZ
@given(tz=st.one_of(st.text(), st.sampled_from(["America", "Europe/", "localtime", "posixrules", "x" * 300])))
def test_time_zone_never_500(api, tz):
    r = api.post("cases", {"case_type": "patient", "properties": {"time_zone": tz}})
    if "\x00" in tz:
        assert r.status_code == 422, r.content
        return
    assert r.status_code == 201, r.content
    st_ = api.contact(r.json()["case_id"])
    assert st_["time_zone_source"] in ("contact", "project")
    if st_["time_zone_source"] == "project":
        assert st_["time_zone"] == "UTC"


@FUZZ
@given(name=st.text(min_size=1, max_size=40), value=st.text(max_size=40))
def test_property_filter_never_500(api, name, value):
    r = api.get("cases", **{f"prop.{name}": value})
    if "\x00" in name + value:
        assert r.status_code == 422, r.content  # PostgreSQL cannot take NUL: refused on every database
        assert r.json()["error"]["code"] == "INVALID_VALUE"
        return
    assert r.status_code == 200, r.content
    assert r.json()["count"] == 0


@settings(FUZZ, max_examples=50)
@given(case_id=st.text(min_size=1).filter(lambda s: "/" not in s), case_type=st.text())
@example(case_id="\x00", case_type="")
def test_path_and_query_strings_never_500(api, case_id, case_type):
    case_id = quote(case_id, safe="")
    for r in (
        api.get(f"cases/{case_id}"),
        api.get(f"cases/{case_id}/contact"),
        api.get("cases", case_type=case_type),
        api.patch(f"cases/{case_id}", {"name": "x"}),
        api.delete(f"cases/{case_id}"),
    ):
        assert r.status_code in (200, 404, 422), (r.status_code, r.content)
