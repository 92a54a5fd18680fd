"""Which gateway sends, which translation is chosen, and how templates render — end to end: queued
through the API, delivered by the worker function, read back from the message row and the gateway."""

from __future__ import annotations

import pytest

from casemsg.gateways.services import add_gateway, map_prefix
from tests.conftest import sandbox_gateway
from tests.messaging.conftest import IN, KE, KE2, TZ, deliver, msg, send

pytestmark = pytest.mark.django_db


def _send_to(api, number: str, text: str = "Hello", **props) -> dict:
    case = api.case({"contact_phone_number": number, **props})
    return send(api, case["case_id"], text=text)


# --- gateway choice ------------------------------------------------------------------------------
def test_longest_prefix_wins_and_star_catches_the_rest(api):
    sandbox_gateway("gw-all", "*")
    sandbox_gateway("gw-254", "254")
    sandbox_gateway("gw-25471", "25471")
    a = _send_to(api, KE)  # 25471…: both 254 and 25471 match
    b = _send_to(api, KE2)  # 25472…: only 254
    c = _send_to(api, IN)  # 91…: only *
    deliver()
    assert (msg(a).status, msg(a).gateway_name) == ("sent", "gw-25471")
    assert (msg(b).status, msg(b).gateway_name) == ("sent", "gw-254")
    assert (msg(c).status, msg(c).gateway_name) == ("sent", "gw-all")
    # and the API reports the gateway used
    assert api.get(f"messages/{a['id']}").json()["gateway"] == "gw-25471"


def test_route_order_does_not_matter(api):
    # routes added longest first: the router still sorts them
    sandbox_gateway("gw-25471", "25471")
    sandbox_gateway("gw-254", "254")
    sandbox_gateway("gw-all", "*")
    a, b = _send_to(api, KE), _send_to(api, KE2)
    deliver()
    assert msg(a).gateway_name == "gw-25471"
    assert msg(b).gateway_name == "gw-254"


def test_project_map_wins_over_installation_map(api, other_api, project):
    sandbox_gateway("inst-254", "254")
    sandbox_gateway("inst-all", "*")
    # the project's own gateway, mapped for the project only (through the project API)
    r = api.post("gateways", {"name": "alpha-ke", "type": "sandbox"})
    assert r.status_code == 201, r.content
    r = api.post("routes", {"prefix": "2547", "gateway": "alpha-ke"})
    assert r.status_code == 201, r.content
    mine = _send_to(api, KE)
    mine_other_prefix = _send_to(api, TZ)  # 255…: no project route → installation '*'
    theirs = _send_to(other_api, KE)  # another project: the installation map
    deliver()
    assert msg(mine).gateway_name == "alpha-ke"
    assert msg(mine_other_prefix).gateway_name == "inst-all"
    assert msg(theirs).gateway_name == "inst-254"
    assert msg(theirs).status == "sent"


def test_project_catch_all_beats_a_longer_installation_prefix(api, project):
    sandbox_gateway("inst-254", "254")
    sandbox_gateway("alpha-all", "*", project=project)
    m = _send_to(api, KE)
    deliver()
    assert msg(m).gateway_name == "alpha-all"


def test_another_projects_gateway_cannot_be_mapped_or_used(api, other_project, project):
    sandbox_gateway("beta-own", None, project=other_project)
    r = api.post("routes", {"prefix": "254", "gateway": "beta-own"})
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "GATEWAY_NOT_FOUND"
    sandbox_gateway("inst-all", "*")
    m = _send_to(api, KE, contact_backend_id="beta-own")
    deliver()
    assert (msg(m).status, msg(m).error) == ("failed", "GATEWAY_NOT_FOUND")


def test_contact_backend_id_overrides_the_prefix_maps(api, project):
    sandbox_gateway("gw-254", "254")
    sandbox_gateway("special", None)  # mapped to no prefix at all
    sandbox_gateway("alpha-own", None, project=project)
    a = _send_to(api, KE, contact_backend_id="special")
    b = _send_to(api, KE, contact_backend_id="alpha-own")
    c = _send_to(api, KE)
    # no route at all matches India, yet the override sends it
    d = _send_to(api, IN, contact_backend_id=" special ")
    deliver()
    assert (msg(a).status, msg(a).gateway_name) == ("sent", "special")
    assert (msg(b).status, msg(b).gateway_name) == ("sent", "alpha-own")
    assert (msg(c).status, msg(c).gateway_name) == ("sent", "gw-254")
    assert (msg(d).status, msg(d).gateway_name) == ("sent", "special")


def test_a_name_stands_for_the_projects_own_gateway_then_the_installations(api, other_api, project, other_project):
    """Gateway names are unique per project: the same name in two projects (and in the installation) are
    three gateways. A contact's contact_backend_id, and a route by name, reach the project's own gateway of
    that name first, then the installation's; never another project's, even in the same batch."""
    theirs = sandbox_gateway("twin", None, project=other_project)
    shared = sandbox_gateway("shared", None)
    mine_shadow = sandbox_gateway("shared", None, project=project)  # hides the installation's for alpha
    sandbox_gateway("inst-all", "*")
    only_theirs = sandbox_gateway("beta-only", None, project=other_project)
    a = _send_to(api, KE, contact_backend_id="twin")  # alpha has no "twin": beta's is not used
    b = _send_to(api, KE, contact_backend_id="shared")
    c = send(other_api, other_api.case({"contact_phone_number": KE2, "contact_backend_id": "twin"})["case_id"])
    d = send(other_api, other_api.case({"contact_phone_number": KE2, "contact_backend_id": "shared"})["case_id"])
    e_case = api.case({"contact_phone_number": KE, "contact_backend_id": "beta-only"})
    e = send(api, e_case["case_id"])
    deliver()  # one batch holding both projects' messages
    assert (msg(a).status, msg(a).error) == ("failed", "GATEWAY_NOT_FOUND")
    assert (msg(b).status, msg(b).gateway_id) == ("sent", mine_shadow.pk)
    assert (msg(c).status, msg(c).gateway_id) == ("sent", theirs.pk)
    assert (msg(d).status, msg(d).gateway_id) == ("sent", shared.pk)  # beta has no own "shared"
    assert (msg(e).status, msg(e).error) == ("failed", "GATEWAY_NOT_FOUND")
    # the contact status says the same, in the same words as for a name nobody has
    status = api.contact(e_case["case_id"])
    assert status["sms"]["error"]["code"] == "GATEWAY_NOT_FOUND" and only_theirs.name == "beta-only"

    # a route by name: alpha's "shared" is its own
    r = api.post("routes", {"prefix": "255", "gateway": "shared"})
    assert r.status_code == 201
    assert project.routes.get(prefix="255").gateway_id == mine_shadow.pk
    r = api.post("routes", {"prefix": "256", "gateway": "twin"})
    assert (r.status_code, r.json()["error"]["code"]) == (404, "GATEWAY_NOT_FOUND")


def test_country_support_is_checked_for_the_chosen_gateway(api):
    add_gateway("ke-tz-only", "sandbox", countries=["ke", "TZ"])
    map_prefix("*", "ke-tz-only")
    ke, tz, india = _send_to(api, KE), _send_to(api, TZ), _send_to(api, IN)
    deliver()
    assert (msg(ke).status, msg(ke).gateway_name) == ("sent", "ke-tz-only")
    assert msg(tz).status == "sent"
    m = msg(india)
    assert (m.status, m.error) == ("failed", "UNSUPPORTED_COUNTRY")
    assert "ke-tz-only" in m.error_detail and "IN" in m.error_detail


def test_country_support_applies_to_an_override_too(api):
    sandbox_gateway("inst-all", "*")
    add_gateway("ke-only", "sandbox", countries=["KE"])
    m = _send_to(api, IN, contact_backend_id="ke-only")
    deliver()
    assert (msg(m).status, msg(m).error) == ("failed", "UNSUPPORTED_COUNTRY")


def test_a_changed_route_applies_to_messages_still_queued(api):
    sandbox_gateway("first", "*")
    sandbox_gateway("second", None)
    m = _send_to(api, KE)
    map_prefix("*", "second")  # replaces the route before the worker picks the message up
    deliver()
    assert msg(m).gateway_name == "second"


# --- translations --------------------------------------------------------------------------------
TRANSLATIONS = {"en": "Hello {case.name}", "sw": "Habari {case.name}", "fr": "Bonjour {case.name}"}


@pytest.mark.parametrize(
    ("language_code", "translations", "default_language", "text", "expected", "lang"),
    [
        # the contact's language first
        ("sw", TRANSLATIONS, "", None, "Habari Asha", "sw"),
        ("en", TRANSLATIONS, "sw", None, "Hello Asha", "en"),
        # no text in the contact's language → the message's (schedule's) default language
        ("sw", {"en": "Hello", "fr": "Bonjour"}, "fr", None, "Bonjour", "fr"),
        # neither → the project's default language (en)
        ("sw", {"en": "Hello", "fr": "Bonjour"}, "de", None, "Hello", "en"),
        # a contact without a language uses the default language, then the project's
        ("", TRANSLATIONS, "sw", None, "Habari Asha", "sw"),
        ("", TRANSLATIONS, "", None, "Hello Asha", "en"),
        # a contact language that is not one of the project's SMS languages is not used
        ("fr", TRANSLATIONS, "", None, "Hello Asha", "en"),
        # no translation fits at all → the untranslated text
        ("sw", {"fr": "Bonjour"}, "", "Hi {case.name}", "Hi Asha", ""),
        # a blank translation does not count
        ("sw", {"sw": "  ", "en": "Hello"}, "", None, "Hello", "en"),
    ],
)
def test_translation_fallback_chain(api, sandbox, language_code, translations, default_language, text, expected, lang):
    props = {"contact_phone_number": KE}
    if language_code:
        props["language_code"] = language_code
    case = api.case(props)
    body = {"translations": translations, "default_language": default_language, "text": text}
    m = send(api, case["case_id"], **body)
    deliver()
    row = msg(m)
    assert row.status == "sent", (row.error, row.error_detail)
    assert (row.text, row.language) == (expected, lang)
    got = api.get(f"messages/{m['id']}").json()
    assert (got["text"], got["language"]) == (expected, lang)


def test_translation_is_chosen_at_send_time_with_the_contacts_current_language(api, sandbox):
    case = api.case({"contact_phone_number": KE, "language_code": "en"})
    m = send(api, case["case_id"], text=None, translations={"en": "Hello", "sw": "Habari"})
    r = api.patch(f"cases/{case['case_id']}", {"properties": {"language_code": "sw"}})
    assert r.status_code == 200, r.content
    deliver()
    assert (msg(m).text, msg(m).language) == ("Habari", "sw")


def test_a_mobile_workers_language_picks_the_translation(api, sandbox):
    r = api.post(
        "mobile-workers", {"username": "wanjiru", "name": "Wanjiru", "language_code": "sw", "phone_numbers": [KE]}
    )
    assert r.status_code == 201, r.content
    wid = r.json()["id"]
    r = api.post(
        "messages",
        {
            "recipient": {"mobile_worker_id": wid},
            "translations": {"en": "Hello {recipient.name}", "sw": "Habari {recipient.name}"},
        },
    )
    assert r.status_code == 202, r.content
    deliver()
    row = msg(r.json())
    assert (row.status, row.text, row.language) == ("sent", "Habari Wanjiru", "sw")


# --- rendering -----------------------------------------------------------------------------------
def test_rendering_case_parent_and_recipient_values(api, sandbox):
    api.case(
        {"village": "Kisumu", "chw_name": "Otieno"}, case_id="household-1", name="Household 1", case_type="household"
    )
    child = api.case(
        {"contact_phone_number": KE, "edd": "2025-03-01", "weeks": 12}, name="Asha", parent_id="household-1"
    )
    text = (
        "Hi {case.name} / {recipient.name}: week {case.weeks}, due {case.edd}, "
        "village {case.parent.village}, CHW {case.parent.chw_name}, household {case.parent.name}."
    )
    m = send(api, child["case_id"], text=text)
    deliver()
    row = msg(m)
    assert row.status == "sent", (row.error, row.error_detail)
    assert row.text == ("Hi Asha / Asha: week 12, due 2025-03-01, village Kisumu, CHW Otieno, household Household 1.")


def test_unknown_values_render_as_question_mark(api, sandbox):
    orphan = api.case({"contact_phone_number": KE}, name="Asha")
    with_missing_parent = api.case({"contact_phone_number": KE2}, name="Baraka", parent_id="no-such-case")
    text = "{case.nothing} {case.parent.village} {recipient.name} {recipient.phone}"
    a = send(api, orphan["case_id"], text=text)
    b = send(api, with_missing_parent["case_id"], text=text)
    deliver()
    assert msg(a).text == "(?) (?) Asha (?)"
    assert msg(b).text == "(?) (?) Baraka (?)"
    assert msg(a).status == msg(b).status == "sent"


def test_rendering_uses_case_values_at_send_time_and_literal_braces(api, sandbox):
    case = api.case({"contact_phone_number": KE, "clinic": "Old clinic"})
    m = send(api, case["case_id"], text="Go to {case.clinic} {{not a placeholder}}")
    api.patch(f"cases/{case['case_id']}", {"properties": {"clinic": "New clinic"}})
    deliver()
    assert msg(m).text == "Go to New clinic {not a placeholder}"


def test_parent_lookups_stay_in_the_project(api, other_api, sandbox):
    other_api.case({"village": "Elsewhere"}, case_id="hh")
    api.case({"village": "Here"}, case_id="hh", case_type="household")
    child = api.case({"contact_phone_number": KE}, parent_id="hh")
    m = send(api, child["case_id"], text="{case.parent.village}")
    deliver()
    assert msg(m).text == "Here"
