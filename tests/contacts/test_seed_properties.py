"""The seeds' case-property table and the "advanced configuration" seed, row by row, through the API.

Every test creates cases (and mobile workers) over HTTP and reads their contact status over HTTP:
`GET /api/v1/projects/{project}/cases/{case_id}/contact`.
"""

from __future__ import annotations

import pytest

from casemsg.gateways.models import Gateway
from casemsg.projects.models import Project

INDIA = "919812345678"  # the newer seed's valid example (one-way needs no consent)
SEED_555 = "15551234567"  # the newer seed's valid example: +1, possible, in no assigned range
US = "12066171234"  # a real, assigned Seattle number: consent region US
OLD_SEED_US = "12066181323"  # the older seed's valid example
PUERTO_RICO = "17872345678"  # a US territory: consent required
CANADA = "15062345678"  # +1 but Canada: not a consent region by default
KENYA = "254712345678"


def codes(items) -> list[str]:
    return [w["code"] for w in items]


def warning(st: dict, code: str) -> dict:
    found = [w for w in st["warnings"] if w["code"] == code]
    assert found, f"no {code} warning in {st['warnings']}"
    return found[0]


def set_project(slug: str, **fields) -> None:
    assert Project.objects.filter(slug=slug).update(**fields) == 1


def worker(api, username: str, numbers: list, **fields) -> dict:
    r = api.post("mobile-workers", {"username": username, "phone_numbers": numbers, **fields})
    assert r.status_code == 201, r.content
    return r.json()


def worker_contact(api, worker_id: int) -> dict:
    r = api.get(f"mobile-workers/{worker_id}/contact")
    assert r.status_code == 200, r.content
    return r.json()


def patch(api, case_id: str, body: dict) -> dict:
    r = api.patch(f"cases/{case_id}", body)
    assert r.status_code == 200, r.content
    return r.json()


# ---------------------------------------------------------------------------------------------------
# contact_phone_number: "international e.164 format … both 15551234567 and 919812345678 are valid"


@pytest.mark.parametrize("number", [SEED_555, INDIA, OLD_SEED_US])
def test_seed_valid_examples_are_accepted(api, number):
    c = api.case({"contact_phone_number": number, "contact_phone_number_is_verified": "1"})
    st = api.contact(c["case_id"])
    assert st["phone_number"] == number
    assert st["sms"] == {"ok": True, "error": None}
    assert st["two_way_sms"] == {"ok": True, "error": None}
    assert st["two_way"] is True
    assert "INVALID_PHONE_NUMBER" not in codes(st["warnings"])


def test_seed_555_example_is_accepted_with_unassigned_warning(api):
    st = api.contact(api.case({"contact_phone_number": SEED_555})["case_id"])
    assert st["phone_number"] == SEED_555
    w = warning(st, "UNASSIGNED_PHONE_NUMBER")
    assert SEED_555 in w["detail"]
    assert w["title"] and w["description"] and w["fix"]
    # an assigned number carries no such warning
    st = api.contact(api.case({"contact_phone_number": INDIA})["case_id"])
    assert "UNASSIGNED_PHONE_NUMBER" not in codes(st["warnings"])


def test_seed_invalid_example_with_dashes(api):
    st = api.contact(api.case({"contact_phone_number": "1-206-617-1234"})["case_id"])
    for channel in ("sms", "two_way_sms"):
        err = st[channel]["error"]
        assert st[channel]["ok"] is False
        assert err["code"] == "INVALID_PHONE_NUMBER"
        assert err["fix"] == "Remove the dashes: 12066171234"
        assert "'1-206-617-1234'" in err["detail"]  # the error names the value and the rule
        assert "no spaces, dashes or punctuation" in err["detail"]
    assert warning(st, "INVALID_PHONE_NUMBER")["fix"] == "Remove the dashes: 12066171234"
    assert st["phone_number"] == "1-206-617-1234"  # shown as entered, not silently rewritten


@pytest.mark.parametrize(
    "raw, corrected",
    [
        ("9109812345678", "919812345678"),  # the newer seed: "remove the leading zero"
        ("910981231234", "91981231234"),  # the older seed's example, which kept the national 0
        ("4407911123456", "447911123456"),
    ],
)
def test_national_leading_zero_is_an_error_naming_the_corrected_number(api, raw, corrected):
    st = api.contact(api.case({"contact_phone_number": raw})["case_id"])
    err = st["sms"]["error"]
    assert err["code"] == "INVALID_PHONE_NUMBER"
    assert err["fix"] == f"Remove the leading 0 of the national number: {corrected}"
    assert "leading 0" in err["detail"]


@pytest.mark.parametrize(
    "raw, normalized",
    [
        ("9109812345678", "919812345678"),
        ("1-206-617-1234", "12066171234"),
        ("+91 98123 45678", "919812345678"),
    ],
)
def test_auto_normalize_setting_fixes_and_stores_the_number(api, raw, normalized):
    set_project("alpha", auto_normalize_phone_numbers=True)
    c = api.case({"contact_phone_number": raw, "contact_phone_number_is_verified": "1"})
    assert c["properties"]["contact_phone_number"] == normalized
    assert api.get(f"cases/{c['case_id']}").json()["properties"]["contact_phone_number"] == normalized
    st = api.contact(c["case_id"])
    assert st["phone_number"] == normalized
    assert st["sms"]["ok"] is True and st["two_way"] is True


def test_without_auto_normalize_the_value_is_kept_as_entered(api):
    c = api.case({"contact_phone_number": "9109812345678"})
    assert c["properties"]["contact_phone_number"] == "9109812345678"
    # a later PATCH goes through the same rule once the setting is on
    set_project("alpha", auto_normalize_phone_numbers=True)
    c = patch(api, c["case_id"], {"properties": {"contact_phone_number": "9109812345678"}})
    assert c["properties"]["contact_phone_number"] == "919812345678"


@pytest.mark.parametrize(
    "raw, fix",
    [
        ("91 98123 45678", "Remove the spaces: 919812345678"),
        ("(91)9812345678", "Remove the brackets: 919812345678"),
        ("91.9812.345678", "Remove the dots: 919812345678"),
        ("+1 (206) 617-1234", "Remove the spaces, brackets and dashes: 12066171234"),
        ("9198123456/78", "Remove the slashes: 919812345678"),
        ("91981234567a", "Remove the letters and write the number as country code then national number."),
        (
            "tel:919812345678",
            "Remove the letters and punctuation and write the number as country code then national number.",
        ),
        ("٩١٩٨١٢٣٤٥٦٧٨", "Write the digits as 0-9: 919812345678"),  # Arabic-Indic digits
        ("00919812345678", "Remove the leading 00 (the international call prefix): 919812345678"),
    ],
)
def test_punctuation_letters_and_prefixes_are_invalid_with_a_fix(api, raw, fix):
    st = api.contact(api.case({"contact_phone_number": raw})["case_id"])
    err = st["sms"]["error"]
    assert err["code"] == "INVALID_PHONE_NUMBER"
    assert err["fix"] == fix
    assert st["two_way_sms"]["error"]["code"] == "INVALID_PHONE_NUMBER"


@pytest.mark.parametrize(
    "raw",
    [
        "1",  # a country code alone
        "123",  # too short
        "9198",  # too short for India
        "1206617123",  # one digit short of a US number
        "120661712345",  # one digit too many for a US number
        "1234567890123456",  # 16 digits: E.164 allows 15
        "49123456789012345",  # 17 digits that phonenumbers calls "possible" for Germany
        "99912345678",  # no such country code
        "0919812345678",  # no country code at all
    ],
)
def test_impossible_lengths_and_country_codes_are_invalid(api, raw):
    st = api.contact(api.case({"contact_phone_number": raw})["case_id"])
    assert st["sms"]["error"]["code"] == "INVALID_PHONE_NUMBER"
    assert st["sms"]["error"]["detail"].startswith(f"'{raw}'")
    assert st["two_way"] is False


def test_leading_plus_is_stripped(api):
    c = api.case({"contact_phone_number": "+919812345678", "contact_phone_number_is_verified": "1"})
    assert c["properties"]["contact_phone_number"] == "+919812345678"  # the case keeps what was sent
    st = api.contact(c["case_id"])
    assert st["phone_number"] == INDIA
    assert st["sms"]["ok"] is True and st["two_way"] is True
    # the registry holds the digits: the same number written without '+' is the same number
    other = api.contact(api.case({"contact_phone_number": INDIA, "contact_phone_number_is_verified": "1"})["case_id"])
    assert other["two_way"] is False
    assert other["two_way_sms"]["error"]["code"] == "PHONE_NUMBER_IN_USE"


@pytest.mark.parametrize("props", [{}, {"contact_phone_number": ""}, {"contact_phone_number": "   "}])
def test_no_phone_number(api, props):
    st = api.contact(api.case(props)["case_id"])
    assert st["sms"]["error"]["code"] == "NO_PHONE_NUMBER"
    assert st["two_way_sms"]["error"]["code"] == "NO_PHONE_NUMBER"


# ---------------------------------------------------------------------------------------------------
# contact_phone_number_is_verified and US consent: "we will not allow SMS Messaging to go through"


@pytest.mark.parametrize("number", [US, OLD_SEED_US, PUERTO_RICO])
def test_us_number_without_consent_gets_no_sms(api, number):
    st = api.contact(api.case({"contact_phone_number": number})["case_id"])
    assert st["needs_consent"] is True
    assert st["sms"]["ok"] is False
    assert st["sms"]["error"]["code"] == "NO_CONSENT"
    assert number in st["sms"]["error"]["detail"]


@pytest.mark.parametrize("verified", ["1", 1, True, " 1 "])
def test_us_number_with_consent_recorded_as_verified_1(api, verified):
    c = api.case({"contact_phone_number": US, "contact_phone_number_is_verified": verified})
    st = api.contact(c["case_id"])
    assert st["verified"] is True
    assert st["sms"] == {"ok": True, "error": None}


@pytest.mark.parametrize("verified", ["0", "", "yes", "true", "2"])
def test_only_1_means_verified(api, verified):
    c = api.case({"contact_phone_number": US, "contact_phone_number_is_verified": verified})
    st = api.contact(c["case_id"])
    assert st["verified"] is False
    assert st["sms"]["error"]["code"] == "NO_CONSENT"
    assert st["two_way_sms"]["error"]["code"] == "NO_TWO_WAY_PHONE_NUMBER"


def test_consent_recorded_later_by_a_frontline_worker(api):
    c = api.case({"contact_phone_number": US})
    assert api.contact(c["case_id"])["sms"]["error"]["code"] == "NO_CONSENT"
    patch(api, c["case_id"], {"properties": {"contact_phone_number_is_verified": "1"}})
    assert api.contact(c["case_id"])["sms"]["ok"] is True
    # withdrawing the property withdraws consent
    patch(api, c["case_id"], {"properties": {"contact_phone_number_is_verified": None}})
    assert api.contact(c["case_id"])["sms"]["error"]["code"] == "NO_CONSENT"


@pytest.mark.parametrize("number", [INDIA, KENYA, CANADA])
def test_non_us_one_way_needs_only_the_number(api, number):
    st = api.contact(api.case({"contact_phone_number": number})["case_id"])
    assert st["needs_consent"] is False
    assert st["sms"] == {"ok": True, "error": None}
    assert st["verified"] is False


@pytest.mark.parametrize("number", [SEED_555, "19999999999"])
def test_plus_1_number_of_undeterminable_region_needs_consent(api, number):
    st = api.contact(api.case({"contact_phone_number": number})["case_id"])
    assert st["needs_consent"] is True
    assert st["sms"]["error"]["code"] == "NO_CONSENT"
    c = api.case({"contact_phone_number": number, "contact_phone_number_is_verified": "1"}, name="Bea")
    assert api.contact(c["case_id"])["sms"]["ok"] is True


def test_consent_regions_are_a_project_setting(api):
    set_project("alpha", consent_regions=["KE"])
    assert api.contact(api.case({"contact_phone_number": US})["case_id"])["sms"]["ok"] is True
    st = api.contact(api.case({"contact_phone_number": KENYA})["case_id"])
    assert st["sms"]["error"]["code"] == "NO_CONSENT"


# ---------------------------------------------------------------------------------------------------
# Two-way: "Set this to the value 1 if you want this contact to be able to use two-way SMS"


def test_two_way_needs_verified(api):
    c = api.case({"contact_phone_number": INDIA})
    st = api.contact(c["case_id"])
    assert st["sms"]["ok"] is True
    assert st["two_way"] is False
    assert st["two_way_sms"]["error"]["code"] == "NO_TWO_WAY_PHONE_NUMBER"
    patch(api, c["case_id"], {"properties": {"contact_phone_number_is_verified": "1"}})
    st = api.contact(c["case_id"])
    assert st["two_way"] is True
    assert st["two_way_sms"] == {"ok": True, "error": None}


# ---------------------------------------------------------------------------------------------------
# "Only one contact can hold a number for two-way SMS … the contact who registers it first will own it"


def verified_case(api, number=INDIA, name="Asha") -> dict:
    return api.case({"contact_phone_number": number, "contact_phone_number_is_verified": "1"}, name=name)


def test_first_verified_registrant_wins_across_projects(api, other_api):
    first = verified_case(api, name="Alpha Asha")
    second = verified_case(other_api, name="Beta Bela")
    a = api.contact(first["case_id"])
    b = other_api.contact(second["case_id"])
    assert a["two_way"] is True and a["two_way_sms"]["ok"] is True
    assert b["two_way"] is False
    assert b["two_way_sms"]["error"]["code"] == "PHONE_NUMBER_IN_USE"
    # the other project's contact is not named to beta
    assert b["two_way_owner"] == "a contact in another project"
    w = warning(b, "PHONE_NUMBER_IN_USE")
    assert "a contact in another project" in w["detail"]
    assert "Close the other case or remove the number from the mobile worker" in w["fix"]
    text = other_api.get(f"cases/{second['case_id']}/contact").content.decode()
    assert first["case_id"] not in text and "Alpha Asha" not in text
    # a shared number stays usable one-way
    assert b["sms"] == {"ok": True, "error": None}


def test_an_unverified_registrant_never_owns(api, other_api):
    api.case({"contact_phone_number": INDIA})  # first, but not verified
    b = other_api.contact(verified_case(other_api)["case_id"])
    assert b["two_way"] is True


def test_mobile_worker_registered_first_owns_against_a_case(api):
    w = worker(api, "chw1", [{"number": INDIA, "verified": True}])
    c = verified_case(api)
    assert worker_contact(api, w["id"])["two_way"] is True
    st = api.contact(c["case_id"])
    assert st["two_way"] is False
    assert st["two_way_sms"]["error"]["code"] == "PHONE_NUMBER_IN_USE"
    assert st["two_way_owner"] == "mobile worker chw1"
    assert "mobile worker chw1" in warning(st, "PHONE_NUMBER_IN_USE")["detail"]
    assert st["sms"]["ok"] is True


def test_case_registered_first_owns_against_a_mobile_worker(api, other_api):
    c = verified_case(api, name="Asha")
    w = worker(other_api, "chw2", [{"number": INDIA, "verified": True}])
    assert api.contact(c["case_id"])["two_way"] is True
    st = worker_contact(other_api, w["id"])
    assert st["two_way"] is False
    assert st["two_way_sms"]["error"]["code"] == "PHONE_NUMBER_IN_USE"
    assert st["two_way_owner"] == "a contact in another project"
    # within the same project the holder is named
    w2 = worker(api, "chw3", [{"number": INDIA, "verified": True}])
    st = worker_contact(api, w2["id"])
    assert st["two_way_owner"] == f"case {c['case_id']} (Asha)"


def owners(api_by_case: list[tuple]) -> list[bool]:
    return [a.contact(c["case_id"])["two_way"] for a, c in api_by_case]


def test_owner_closes_case_and_the_next_oldest_verified_registrant_owns(api, other_api):
    a = verified_case(api, name="A")
    b = verified_case(other_api, name="B")
    unverified = api.case({"contact_phone_number": INDIA}, name="U")
    c = verified_case(api, name="C")
    cases = [(api, a), (other_api, b), (api, unverified), (api, c)]
    assert owners(cases) == [True, False, False, False]
    patch(api, a["case_id"], {"closed": True})
    assert owners(cases) == [False, True, False, False]
    # reopening does not take the number back from the new owner
    patch(api, a["case_id"], {"closed": False})
    assert owners(cases) == [False, True, False, False]
    patch(other_api, b["case_id"], {"closed": True})
    # c was verified before a re-registered on reopening: c is the oldest verified registrant now
    assert owners(cases) == [False, False, False, True]
    api.delete(f"cases/{c['case_id']}")
    assert owners(cases[:3]) == [True, False, False]


def test_oldest_first_is_by_verification(api):
    b = api.case({"contact_phone_number": INDIA}, name="B")  # registered early, verified late
    a = verified_case(api, name="A")
    c = verified_case(api, name="C")
    patch(api, b["case_id"], {"properties": {"contact_phone_number_is_verified": "1"}})
    patch(api, a["case_id"], {"closed": True})
    assert owners([(api, b), (api, c)]) == [False, True]


def test_owner_changes_number_and_ownership_passes_on(api, other_api):
    a = verified_case(api, name="A")
    b = verified_case(other_api, name="B")
    patch(api, a["case_id"], {"properties": {"contact_phone_number": KENYA}})
    assert other_api.contact(b["case_id"])["two_way"] is True
    # verification belongs to the number it was given for: the new number starts unverified
    st = api.contact(a["case_id"])
    assert st["phone_number"] == KENYA and st["verified"] is False and st["two_way"] is False
    # verified again (the same change may set both), it takes the new number for two-way
    patch(api, a["case_id"], {"properties": {"contact_phone_number": KENYA, "contact_phone_number_is_verified": "1"}})
    st = api.contact(a["case_id"])
    assert st["phone_number"] == KENYA and st["two_way"] is True


def test_owner_unverifies_and_ownership_passes_on(api):
    a = verified_case(api, name="A")
    b = verified_case(api, name="B")
    patch(api, a["case_id"], {"properties": {"contact_phone_number_is_verified": "0"}})
    assert owners([(api, a), (api, b)]) == [False, True]


def test_owner_case_becomes_invalid_number_and_ownership_passes_on(api):
    a = verified_case(api, name="A")
    b = verified_case(api, name="B")
    patch(api, a["case_id"], {"properties": {"contact_phone_number": "91-98123-45678"}})
    assert owners([(api, a), (api, b)]) == [False, True]


def test_worker_deactivated_passes_ownership_on(api, other_api):
    w = worker(api, "chw1", [{"number": INDIA, "verified": True}])
    c = verified_case(other_api)
    r = api.patch(f"mobile-workers/{w['id']}", {"active": False})
    assert r.status_code == 200, r.content
    assert other_api.contact(c["case_id"])["two_way"] is True
    assert worker_contact(api, w["id"])["sms"]["error"]["code"] == "CONTACT_IS_INACTIVE"


def test_worker_deleted_passes_ownership_on(api):
    w = worker(api, "chw1", [{"number": INDIA, "verified": True}])
    c = verified_case(api)
    assert api.delete(f"mobile-workers/{w['id']}").status_code == 204
    st = api.contact(c["case_id"])
    assert st["two_way"] is True
    assert "PHONE_NUMBER_IN_USE" not in codes(st["warnings"])


def test_worker_removes_number_passes_ownership_on(api):
    w = worker(api, "chw1", [{"number": INDIA, "verified": True}, {"number": KENYA, "verified": True}])
    c = verified_case(api)
    r = api.patch(f"mobile-workers/{w['id']}", {"phone_numbers": [KENYA]})
    assert r.status_code == 200, r.content
    assert api.contact(c["case_id"])["two_way"] is True
    assert worker_contact(api, w["id"])["two_way"] is True  # still owns its other number


def test_shared_number_same_project_is_one_way_with_a_warning_naming_the_holder(api):
    holder = verified_case(api, name="Asha")
    other = api.case({"contact_phone_number": INDIA}, name="Bela")
    st = api.contact(other["case_id"])
    assert st["sms"] == {"ok": True, "error": None}
    w = warning(st, "PHONE_NUMBER_IN_USE")
    assert f"case {holder['case_id']} (Asha)" in w["detail"]
    assert w["fix"] == (
        f"Close the other case or remove the number from the mobile worker (case {holder['case_id']} (Asha))."
    )
    assert st["two_way_sms"]["error"]["code"] == "NO_TWO_WAY_PHONE_NUMBER"
    # a contact with the number to itself has no such warning
    st = api.contact(api.case({"contact_phone_number": KENYA})["case_id"])
    assert "PHONE_NUMBER_IN_USE" not in codes(st["warnings"])


def test_shared_with_a_worker_names_the_worker(api):
    worker(api, "chw9", [INDIA])
    st = api.contact(api.case({"contact_phone_number": INDIA})["case_id"])
    assert st["sms"]["ok"] is True
    assert "mobile worker chw9" in warning(st, "PHONE_NUMBER_IN_USE")["detail"]


def test_block_shared_numbers_setting_stops_all_sms(api, other_api):
    verified_case(other_api)
    c = api.case({"contact_phone_number": INDIA})
    assert api.contact(c["case_id"])["sms"]["ok"] is True
    set_project("alpha", block_shared_numbers=True)
    st = api.contact(c["case_id"])
    assert st["sms"]["ok"] is False
    assert st["sms"]["error"]["code"] == "PHONE_NUMBER_IN_USE"
    assert "a contact in another project" in st["sms"]["error"]["detail"]
    # the setting is per project: beta's own contact is unaffected
    c2 = other_api.case({"contact_phone_number": INDIA})
    assert other_api.contact(c2["case_id"])["sms"]["ok"] is True


# ---------------------------------------------------------------------------------------------------
# Closed cases are not contacts


def test_closed_case_is_inactive_on_every_channel_and_reopening_restores_it(api):
    c = api.case(
        {
            "contact_phone_number": INDIA,
            "contact_phone_number_is_verified": "1",
            "commcare_email_address": "asha@example.org",
        }
    )
    patch(api, c["case_id"], {"closed": True})
    st = api.contact(c["case_id"])
    for channel in ("sms", "two_way_sms", "email"):
        assert st[channel]["ok"] is False
        assert st[channel]["error"]["code"] == "CONTACT_IS_INACTIVE"
    assert st["two_way"] is False
    patch(api, c["case_id"], {"closed": False})
    st = api.contact(c["case_id"])
    for channel in ("sms", "two_way_sms", "email"):
        assert st[channel]["ok"] is True, st[channel]
    assert st["two_way"] is True


def test_deleted_case_is_no_contact(api):
    c = verified_case(api)
    assert api.delete(f"cases/{c['case_id']}").status_code == 204
    assert api.get(f"cases/{c['case_id']}/contact").status_code == 404
    # its number is free: the next registrant owns it outright
    st = api.contact(verified_case(api)["case_id"])
    assert st["two_way"] is True and st["warnings"] == []


# ---------------------------------------------------------------------------------------------------
# time_zone: "Otherwise, the project's time zone will be used" (which is UTC unless set)


def test_time_zone_from_the_contact(api):
    st = api.contact(api.case({"time_zone": "America/New_York"})["case_id"])
    assert st["time_zone"] == "America/New_York"
    assert st["time_zone_source"] == "contact"
    assert "INVALID_TIME_ZONE" not in codes(st["warnings"])


def test_missing_time_zone_falls_back_to_utc_project_default(api):
    st = api.contact(api.case({})["case_id"])
    assert st["time_zone"] == "UTC"
    assert st["time_zone_source"] == "project"
    set_project("alpha", default_time_zone="Africa/Nairobi")
    st = api.contact(api.case({"time_zone": ""})["case_id"])
    assert st["time_zone"] == "Africa/Nairobi"
    assert st["time_zone_source"] == "project"


@pytest.mark.parametrize(
    "value", ["Mars/Olympus_Mons", "EST-5", "america/new_york", "America", "localtime", "../../etc/passwd", "x" * 300]
)
def test_invalid_time_zone_is_reported_and_the_project_default_used(api, value):
    set_project("alpha", default_time_zone="Asia/Kolkata")
    st = api.contact(api.case({"time_zone": value})["case_id"])
    assert st["time_zone"] == "Asia/Kolkata"
    assert st["time_zone_source"] == "project"
    w = warning(st, "INVALID_TIME_ZONE")
    assert value in w["detail"]
    # a bad time zone does not stop messages
    assert st["email"]["error"]["code"] == "NO_EMAIL_ADDRESS"


# ---------------------------------------------------------------------------------------------------
# language_code: "should match the language codes that you define on the SMS Languages page"


def test_language_code_in_project_languages_is_used(api):
    st = api.contact(api.case({"language_code": "sw"})["case_id"])
    assert st["language_code"] == "sw"
    assert st["language_source"] == "contact"
    assert "UNKNOWN_LANGUAGE_CODE" not in codes(st["warnings"])


def test_missing_language_code_uses_the_project_default(api):
    st = api.contact(api.case({})["case_id"])
    assert (st["language_code"], st["language_source"]) == ("en", "project")


@pytest.mark.parametrize("value", ["hin", "fr", "EN"])  # codes match exactly, as defined for the project
def test_unknown_language_code_warns_and_falls_back(api, value):
    set_project("alpha", default_language="sw")
    st = api.contact(api.case({"language_code": value})["case_id"])
    assert st["language_code"] == "sw"
    assert st["language_source"] == "project"
    assert value in warning(st, "UNKNOWN_LANGUAGE_CODE")["detail"]


# ---------------------------------------------------------------------------------------------------
# contact_backend_id: "specify the name of that gateway here"


def test_contact_backend_id_naming_a_gateway(api, project):
    Gateway.objects.create(name="ke-sandbox", type="sandbox")
    Gateway.objects.create(name="alpha-own", type="sandbox", project=project)
    for name in ("ke-sandbox", "alpha-own"):
        st = api.contact(api.case({"contact_phone_number": INDIA, "contact_backend_id": name})["case_id"])
        assert st["gateway"] == name
        assert st["sms"]["ok"] is True
        assert "GATEWAY_NOT_FOUND" not in codes(st["warnings"])


def test_unknown_contact_backend_id(api, other_project):
    Gateway.objects.create(name="beta-own", type="sandbox", project=other_project)
    for name in ("no-such-gateway", "beta-own"):  # another project's gateway is not this project's
        st = api.contact(api.case({"contact_phone_number": INDIA, "contact_backend_id": name})["case_id"])
        assert st["gateway"] == name
        assert st["sms"]["error"]["code"] == "GATEWAY_NOT_FOUND"
        assert name in warning(st, "GATEWAY_NOT_FOUND")["detail"]


# ---------------------------------------------------------------------------------------------------
# commcare_email_address: "Set this to the contact's email address to send email content to them"


def test_email_missing(api):
    st = api.contact(api.case({})["case_id"])
    assert st["email"]["ok"] is False
    assert st["email"]["address"] is None
    assert st["email"]["error"]["code"] == "NO_EMAIL_ADDRESS"


@pytest.mark.parametrize("value", ["asha", "asha@", "@example.org", "asha@@example.org", "asha example@x.org"])
def test_email_invalid(api, value):
    st = api.contact(api.case({"commcare_email_address": value})["case_id"])
    assert st["email"]["ok"] is False
    assert st["email"]["error"]["code"] == "INVALID_EMAIL_ADDRESS"


def test_email_valid(api):
    st = api.contact(api.case({"commcare_email_address": "asha@example.org"})["case_id"])
    assert st["email"] == {"ok": True, "error": None, "address": "asha@example.org"}
    # email needs no phone number
    assert st["sms"]["error"]["code"] == "NO_PHONE_NUMBER"


# ---------------------------------------------------------------------------------------------------
# name: "Required for SMS survey"


def test_missing_name_warns_for_surveys(api):
    st = api.contact(api.case({"contact_phone_number": INDIA}, name="")["case_id"])
    assert "NO_CASE_NAME" in codes(st["warnings"])
    assert st["sms"]["ok"] is True  # one-way SMS does not need it


def test_name_as_a_property_counts(api):
    c = api.case({"contact_phone_number": INDIA, "name": "Asha"}, name="")
    assert c["name"] == "Asha"
    assert "NO_CASE_NAME" not in codes(api.contact(c["case_id"])["warnings"])


# ---------------------------------------------------------------------------------------------------
# "A bad contact property never rejects a case update"

BAD = {
    "contact_phone_number": "1-206-617-1234",
    "contact_phone_number_is_verified": "maybe",
    "commcare_email_address": "not-an-email",
    "time_zone": "Nowhere/Land",
    "language_code": "xx",
    "contact_backend_id": "missing-gateway",
}


def test_bad_contact_properties_never_reject_a_case(api):
    r = api.post("cases", {"case_type": "patient", "name": "", "properties": BAD})
    assert r.status_code == 201, r.content
    case = r.json()
    assert case["properties"] == BAD
    assert api.get(f"cases/{case['case_id']}").json()["properties"] == BAD
    st = api.contact(case["case_id"])
    assert st["sms"]["error"]["code"] == "INVALID_PHONE_NUMBER"
    assert st["email"]["error"]["code"] == "INVALID_EMAIL_ADDRESS"
    assert {
        "INVALID_PHONE_NUMBER",
        "INVALID_TIME_ZONE",
        "UNKNOWN_LANGUAGE_CODE",
        "GATEWAY_NOT_FOUND",
        "NO_CASE_NAME",
    } <= set(codes(st["warnings"]))


def test_bad_contact_properties_never_reject_an_update(api):
    c = verified_case(api)
    r = api.patch(f"cases/{c['case_id']}", {"properties": {**BAD, "district": "north"}})
    assert r.status_code == 200, r.content
    assert r.json()["properties"] == {**BAD, "district": "north"}
    st = api.contact(c["case_id"])
    assert st["sms"]["error"]["code"] == "INVALID_PHONE_NUMBER"
    assert st["two_way"] is False  # the number it had is released
    r = api.post("cases/bulk", {"cases": [{"case_id": c["case_id"], "properties": {"time_zone": "Bad/Zone"}}]})
    assert r.status_code == 200, r.content
    assert r.json()[0]["properties"]["time_zone"] == "Bad/Zone"
