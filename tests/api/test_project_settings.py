"""GET/PATCH /api/v1/projects/{project}/settings: a project's time zone, languages, quiet hours, consent
regions, switches and opt-in timings. A PATCH changes any subset, all or nothing; each wrong value is a 422
with a catalogue code and a sentence naming the field."""

from __future__ import annotations

from datetime import time

import pytest

from casemsg.core.errors import InputError
from casemsg.projects import services
from casemsg.projects.models import Project
from tests.conftest import Api

pytestmark = pytest.mark.django_db

DEFAULTS = {
    "default_time_zone": "UTC",
    "default_country": "",  # UTC is no country's zone
    "default_language": "en",
    "sms_languages": ["en", "sw"],  # the project fixture adds sw
    "quiet_hours": None,
    "consent_regions": ["US", "PR", "GU", "VI", "AS", "MP", "UM"],
    "block_shared_numbers": False,
    "auto_normalize_phone_numbers": False,
    "opt_in_interval_hours": 24,
    "opt_in_expiry_hours": 72,
    "auto_opt_in": False,
    "opt_out_keywords": [],
    "opt_in_keywords": [],
    "survey_skip_word": "#SKIP",
}


def patch_settings(api: Api, body: dict, expect: int = 200) -> dict:
    r = api.patch("settings", body)
    assert r.status_code == expect, r.content
    return r.json()


def test_get_answers_every_setting(api: Api) -> None:
    r = api.get("settings")
    assert r.status_code == 200, r.content
    assert r.json() == DEFAULTS


def test_patch_changes_every_setting(api: Api, project: Project) -> None:
    changed = {
        "default_time_zone": "Asia/Kolkata",
        "default_country": "IN",
        "default_language": "sw",
        "sms_languages": ["sw", "en", "pt-BR"],
        "quiet_hours": {"start": "21:00", "end": "08:00"},
        "consent_regions": ["US", "CA"],
        "block_shared_numbers": True,
        "auto_normalize_phone_numbers": True,
        "opt_in_interval_hours": 0,
        "opt_in_expiry_hours": 8760,
        "auto_opt_in": True,
        "opt_out_keywords": ["SITISHA", "ACHA"],
        "opt_in_keywords": ["ANZA"],
        "survey_skip_word": "RUKA",
    }
    assert patch_settings(api, changed) == changed
    assert api.get("settings").json() == changed
    p = Project.objects.get(pk=project.pk)
    assert (p.quiet_hours_start, p.quiet_hours_end) == (time(21), time(8))
    assert (p.default_time_zone, p.sms_languages, p.consent_regions) == (
        "Asia/Kolkata",
        ["sw", "en", "pt-BR"],
        ["US", "CA"],
    )


def test_patch_leaves_what_it_does_not_name(api: Api) -> None:
    got = patch_settings(api, {"quiet_hours": {"start": "12:30", "end": "14:00"}})
    assert got == {**DEFAULTS, "quiet_hours": {"start": "12:30", "end": "14:00"}}
    assert patch_settings(api, {"auto_opt_in": True})["quiet_hours"] == {"start": "12:30", "end": "14:00"}
    assert patch_settings(api, {"quiet_hours": None})["quiet_hours"] is None  # null: no quiet hours
    assert patch_settings(api, {}) == {**DEFAULTS, "auto_opt_in": True}


def test_what_get_answers_can_be_sent_back(api: Api) -> None:
    """The default consent regions include UM, which phonenumbers has no numbering plan for."""
    patch_settings(api, {"quiet_hours": {"start": "22:00", "end": "06:00"}})
    current = api.get("settings").json()
    assert patch_settings(api, current) == current


def test_repeated_entries_are_kept_once(api: Api) -> None:
    got = patch_settings(api, {"sms_languages": ["en", "sw", "en"], "consent_regions": ["KE", "KE"]})
    assert (got["sms_languages"], got["consent_regions"]) == (["en", "sw"], ["KE"])


@pytest.mark.parametrize(
    ("body", "code", "names"),
    [
        ({"default_time_zone": "Mars/Olympus"}, "INVALID_TIME_ZONE", "default_time_zone"),
        ({"default_time_zone": "localtime"}, "INVALID_TIME_ZONE", "default_time_zone"),
        ({"default_time_zone": ""}, "INVALID_TIME_ZONE", "default_time_zone"),
        ({"default_time_zone": "x" * 65}, "VALIDATION_ERROR", "default_time_zone"),
        ({"default_language": "fr"}, "VALIDATION_ERROR", "default_language"),  # not one of sms_languages
        ({"default_language": "English"}, "VALIDATION_ERROR", "default_language"),
        ({"sms_languages": ["sw"]}, "VALIDATION_ERROR", "default_language"),  # would drop the default (en)
        ({"sms_languages": []}, "VALIDATION_ERROR", "sms_languages"),
        ({"sms_languages": ["en", "EN"]}, "VALIDATION_ERROR", "sms_languages[1]"),
        ({"sms_languages": ["en", 3]}, "VALIDATION_ERROR", "sms_languages"),
        ({"sms_languages": "en"}, "VALIDATION_ERROR", "sms_languages"),
        (
            {"sms_languages": [f"e{chr(97 + i // 26)}{chr(97 + i % 26)}" for i in range(51)]},
            "VALIDATION_ERROR",
            "sms_languages",
        ),
        ({"quiet_hours": {"start": "21:00"}}, "VALIDATION_ERROR", "quiet_hours.end"),
        ({"quiet_hours": {"start": "24:00", "end": "08:00"}}, "VALIDATION_ERROR", "quiet_hours.start"),
        ({"quiet_hours": {"start": "21:00", "end": "8:00"}}, "VALIDATION_ERROR", "quiet_hours.end"),
        ({"quiet_hours": {"start": "21:60", "end": "08:00"}}, "VALIDATION_ERROR", "quiet_hours.start"),
        ({"quiet_hours": {"start": "08:00", "end": "08:00"}}, "VALIDATION_ERROR", "quiet_hours"),
        ({"quiet_hours": {"start": "21:00", "end": "08:00", "days": "all"}}, "VALIDATION_ERROR", "days"),
        ({"quiet_hours": "21:00-08:00"}, "VALIDATION_ERROR", "quiet_hours"),
        ({"consent_regions": ["XX"]}, "VALIDATION_ERROR", "consent_regions[0]"),
        ({"consent_regions": ["US", "us"]}, "VALIDATION_ERROR", "consent_regions[1]"),
        ({"consent_regions": ["USA"]}, "VALIDATION_ERROR", "consent_regions[0]"),
        ({"block_shared_numbers": "yes"}, "VALIDATION_ERROR", "block_shared_numbers"),
        ({"auto_opt_in": 1}, "VALIDATION_ERROR", "auto_opt_in"),
        ({"auto_normalize_phone_numbers": None}, "VALIDATION_ERROR", "auto_normalize_phone_numbers"),
        ({"opt_in_interval_hours": -1}, "VALIDATION_ERROR", "opt_in_interval_hours"),
        ({"opt_in_interval_hours": 8761}, "VALIDATION_ERROR", "opt_in_interval_hours"),
        ({"opt_in_interval_hours": 1.5}, "VALIDATION_ERROR", "opt_in_interval_hours"),
        ({"opt_in_interval_hours": "24"}, "VALIDATION_ERROR", "opt_in_interval_hours"),
        ({"opt_in_expiry_hours": 0}, "VALIDATION_ERROR", "opt_in_expiry_hours"),
        ({"opt_in_expiry_hours": True}, "VALIDATION_ERROR", "opt_in_expiry_hours"),
        ({"default_time_zone": None}, "VALIDATION_ERROR", "default_time_zone"),
        ({"quiet_hour": {"start": "21:00", "end": "08:00"}}, "VALIDATION_ERROR", "quiet_hour"),  # misspelt
        ({"default_language": "e\x00n"}, "INVALID_VALUE", "default_language"),
        ({"opt_out_keywords": ["two words"]}, "VALIDATION_ERROR", "opt_out_keywords[0]"),
        ({"opt_out_keywords": ["STOP!"]}, "VALIDATION_ERROR", "opt_out_keywords[0]"),
        ({"opt_out_keywords": [""]}, "VALIDATION_ERROR", "opt_out_keywords[0]"),
        ({"opt_out_keywords": "SITISHA"}, "VALIDATION_ERROR", "opt_out_keywords"),
        ({"opt_in_keywords": ["ok", "x" * 33]}, "VALIDATION_ERROR", "opt_in_keywords"),
        ({"opt_out_keywords": ["ACHA"], "opt_in_keywords": ["acha"]}, "VALIDATION_ERROR", "opt_in_keywords"),
    ],
)
def test_each_wrong_value_is_a_422_naming_its_field(api: Api, body: dict, code: str, names: str) -> None:
    r = api.patch("settings", body)
    assert r.status_code == 422, r.content
    error = r.json()["error"]
    assert error["code"] == code
    assert names in error["message"], error["message"]
    assert api.get("settings").json() == DEFAULTS  # nothing changed


def test_all_or_nothing(api: Api) -> None:
    r = api.patch(
        "settings", {"auto_opt_in": True, "quiet_hours": {"start": "21:00", "end": "08:00"}, "opt_in_expiry_hours": 0}
    )
    assert r.status_code == 422 and "opt_in_expiry_hours" in r.json()["error"]["message"]
    assert api.get("settings").json() == DEFAULTS


def test_languages_and_default_change_together(api: Api) -> None:
    got = patch_settings(api, {"sms_languages": ["fr"], "default_language": "fr"})
    assert (got["sms_languages"], got["default_language"]) == (["fr"], "fr")


def test_another_projects_key_is_refused(api: Api, other_api: Api) -> None:
    for r in (
        other_api.get(api.url("settings")),
        other_api.patch(api.url("settings"), {"auto_opt_in": True}),
    ):
        assert r.status_code == 403, r.content
        assert r.json()["error"]["code"] == "FORBIDDEN"
    assert api.get("settings").json() == DEFAULTS


def test_no_key_is_refused(api: Api) -> None:
    assert api.get("settings", key="").status_code == 401
    assert api.patch("settings", {"auto_opt_in": True}, key="").status_code == 401


def test_the_service_refuses_what_is_not_a_setting(project: Project) -> None:
    with pytest.raises(InputError) as exc:
        services.update_settings(project, {"name": "Renamed"})
    assert exc.value.code == "VALIDATION_ERROR" and exc.value.message.startswith("name:")
    assert Project.objects.get(pk=project.pk).name == "Alpha program"
