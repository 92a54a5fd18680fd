"""Settings that weaken a legal rule — consent regions removed, quiet hours off or narrowed, opt-out words
removed, opt-in words added, block_shared_numbers off — need an API key with the admin scope (the owner
role on the pages, the command line); every settings change, and every key issued or revoked, is in the
project's audit log: who, when, which setting, before and after. The log is read through the API (admin),
the owners' page, its CSV download and `casemsg project audit`."""

from __future__ import annotations

import csv
import io
import json
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from casemsg.core.errors import InputError
from casemsg.projects import services
from casemsg.projects.models import AuditEntry, Membership, Project
from tests.conftest import Api
from tests.web.clients import logged_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def writer(project) -> Api:
    """A key with the default scopes: read, send, write — not admin."""
    row, key = services.issue_key(project, "forwarder")
    return Api(key, project.slug)


@pytest.fixture
def strict(api: Api) -> dict:
    """A project with every legal rule switched on, set by the first key (it has admin)."""
    body = {
        "consent_regions": ["US", "PR", "CA"],
        "quiet_hours": {"start": "21:00", "end": "08:00"},
        "opt_out_keywords": ["SITISHA", "ACHA"],
        "opt_in_keywords": ["ANZA"],
        "block_shared_numbers": True,
    }
    r = api.patch("settings", body)
    assert r.status_code == 200, r.content
    return r.json()


WEAKENING = [
    ({"consent_regions": []}, "consent_regions"),  # the US consent rule switched off
    ({"consent_regions": ["PR", "CA"]}, "consent_regions"),
    ({"quiet_hours": None}, "quiet_hours"),
    ({"quiet_hours": {"start": "22:00", "end": "08:00"}}, "quiet_hours"),  # an hour less
    ({"quiet_hours": {"start": "21:00", "end": "07:59"}}, "quiet_hours"),
    ({"quiet_hours": {"start": "08:00", "end": "21:00"}}, "quiet_hours"),  # the day instead of the night
    ({"opt_out_keywords": ["SITISHA"]}, "opt_out_keywords"),
    ({"opt_out_keywords": []}, "opt_out_keywords"),
    ({"opt_in_keywords": ["ANZA", "SAWA"]}, "opt_in_keywords"),
    ({"block_shared_numbers": False}, "block_shared_numbers"),
    ({"auto_opt_in": True, "consent_regions": ["US"]}, "consent_regions"),  # hidden among a harmless change
]


@pytest.mark.parametrize(("body", "setting"), WEAKENING)
def test_weakening_needs_the_admin_scope(api: Api, writer: Api, strict: dict, body: dict, setting: str) -> None:
    entries = AuditEntry.objects.count()
    r = writer.patch("settings", body)
    assert r.status_code == 403, r.content
    assert r.json()["error"]["code"] == "WEAKENS_LEGAL_RULE"
    assert r.json()["error"]["message"].startswith(setting)
    assert api.get("settings").json() == strict  # nothing changed, all or nothing
    assert AuditEntry.objects.count() == entries

    r = api.patch("settings", body)  # the admin key may
    assert r.status_code == 200, r.content
    row = AuditEntry.objects.filter(setting=setting).latest("id")
    assert row.weakens and row.before == strict[setting] and row.after == r.json()[setting]
    assert row.source == "api" and row.who.startswith(f"api key {api.key[:10]}…")


STRENGTHENING = [
    {"consent_regions": ["US", "PR", "CA", "KE"]},
    {"quiet_hours": {"start": "20:00", "end": "09:00"}},  # wider
    {"opt_out_keywords": ["SITISHA", "ACHA", "BASI"]},
    {"opt_in_keywords": []},
    {"auto_opt_in": True, "opt_in_interval_hours": 48, "default_time_zone": "Africa/Nairobi"},
    {"consent_regions": ["CA", "PR", "US"]},  # the same regions in another order
]


@pytest.mark.parametrize("body", STRENGTHENING)
def test_other_changes_need_only_write_and_are_logged_too(writer: Api, strict: dict, body: dict) -> None:
    r = writer.patch("settings", body)
    assert r.status_code == 200, r.content
    got = r.json()
    changed = {k for k in body if got[k] != strict[k]}
    rows = {e.setting: e for e in AuditEntry.objects.filter(source="api", who__contains="(forwarder)")}
    assert set(rows) == changed
    for name, e in rows.items():
        assert (e.before, e.after, e.weakens) == (strict[name], got[name], False)


def test_quiet_hours_switched_on_and_block_shared_numbers_on_are_not_weakening(project, writer: Api) -> None:
    r = writer.patch("settings", {"quiet_hours": {"start": "22:00", "end": "06:00"}, "block_shared_numbers": True})
    assert r.status_code == 200, r.content
    r = writer.patch("settings", {"opt_out_keywords": ["basi"]})
    assert r.status_code == 200 and r.json()["opt_out_keywords"] == ["BASI"]
    r = writer.patch("settings", {"opt_out_keywords": ["Basi"]})  # the same word: nothing removed
    assert r.status_code == 200


def test_the_service_refuses_weakening_unless_told_so(project: Project) -> None:
    """A caller that does not say `may_weaken` cannot weaken a rule: forgetting refuses, never allows."""
    with pytest.raises(InputError) as exc:
        services.update_settings(project, {"consent_regions": []})
    assert (exc.value.code, exc.value.status) == ("WEAKENS_LEGAL_RULE", 403)
    assert Project.objects.get(pk=project.pk).consent_regions
    services.update_settings(project, {"consent_regions": []}, may_weaken=True)
    assert Project.objects.get(pk=project.pk).consent_regions == []
    (row,) = AuditEntry.objects.filter(setting="consent_regions")
    assert row.source == "system" and row.weakens and row.after == []


# --- the audit log through the API -----------------------------------------------------------------
def test_the_audit_list_is_paged_newest_first_and_admin_only(api: Api, writer: Api, project) -> None:
    for hours in range(1, 8):
        assert writer.patch("settings", {"opt_in_interval_hours": hours}).status_code == 200
    r = api.get("audit", limit=3)
    assert r.status_code == 200, r.content
    page = r.json()
    assert page["count"] == 8  # seven changes and the key the fixture issued
    assert [e["after"] for e in page["items"]] == [7, 6, 5]
    first = page["items"][0]
    assert set(first) == {"id", "at", "source", "who", "setting", "before", "after", "weakens"}
    assert (first["setting"], first["before"], first["source"], first["weakens"]) == (
        "opt_in_interval_hours",
        6,
        "api",
        False,
    )
    assert first["who"] == f"api key {writer.key[:10]}… (forwarder)"
    assert [e["after"] for e in api.get("audit", limit=3, offset=6).json()["items"]][0] == 1
    keys = api.get("audit", setting="api_key").json()
    assert keys["count"] == 1 and keys["items"][0]["after"]["name"] == "forwarder"
    assert keys["items"][0]["after"]["scopes"] == ["read", "send", "write"]
    assert api.get("audit", limit=0).status_code == 422
    r = writer.get("audit")
    assert (r.status_code, r.json()["error"]["code"]) == (403, "INSUFFICIENT_SCOPE")


def test_keys_issued_and_revoked_are_logged(api: Api, project) -> None:
    new = api.post("keys", {"name": "temp", "scopes": ["read"]}).json()
    assert api.delete(f"keys/{new['id']}").status_code == 204
    assert api.delete(f"keys/{new['id']}").status_code == 204  # twice: nothing more to log
    issued, revoked = AuditEntry.objects.filter(setting="api_key").order_by("id")
    assert issued.before is None and issued.after == {
        "id": new["id"],
        "prefix": new["prefix"],
        "name": "temp",
        "scopes": ["read"],
    }
    assert revoked.before["revoked"] is False and revoked.after["revoked"] is True
    assert new["key"] not in json.dumps([issued.after, revoked.after])  # never the key itself


def test_another_projects_audit_is_out_of_reach(api: Api, other_api: Api) -> None:
    api.patch("settings", {"auto_opt_in": True})
    r = other_api.get(api.url("audit"))
    assert (r.status_code, r.json()["error"]["code"]) == (403, "FORBIDDEN")
    assert other_api.get("audit").json()["count"] == 0


# --- pages ---------------------------------------------------------------------------------------
def member(project: Project, role: str):
    user = get_user_model().objects.create_user(f"{role}-1", password="pw-long-enough-1")
    services.add_member(project, user, role)
    return logged_in(user)


def settings_form(**over) -> dict:
    body = {
        "default_time_zone": "UTC",
        "default_language": "en",
        "sms_languages": "en sw",
        "quiet_hours_start": "21:00",
        "quiet_hours_end": "08:00",
        "consent_regions": "US PR",
        "block_shared_numbers": "on",
        "opt_in_interval_hours": "24",
        "opt_in_expiry_hours": "72",
        "opt_out_keywords": "SITISHA",
        "opt_in_keywords": "",
    }
    body.update(over)
    return {k: v for k, v in body.items() if v is not None}


def test_an_owner_may_weaken_on_the_page_and_it_is_logged_as_the_user(project) -> None:
    owner = member(project, Membership.OWNER)
    url = f"/projects/{project.slug}/settings/"
    assert owner.post(url, settings_form()).status_code == 302
    r = owner.post(
        url, settings_form(consent_regions="", quiet_hours_start="", quiet_hours_end="", opt_out_keywords="")
    )
    assert r.status_code == 302
    p = Project.objects.get(pk=project.pk)
    assert (p.consent_regions, p.quiet_hours_start, p.opt_out_keywords) == ([], None, [])
    rows = {e.setting: e for e in AuditEntry.objects.filter(weakens=True)}
    assert set(rows) == {"consent_regions", "quiet_hours", "opt_out_keywords"}
    assert all(e.who == "user owner-1" and e.source == "page" for e in rows.values())

    page = owner.get(f"/projects/{project.slug}/settings/audit/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "weakens a legal rule" in html and "user owner-1" in html and "consent_regions" in html


def test_the_audit_page_is_paginated_and_for_owners_only(project) -> None:
    owner, editor, viewer = (member(project, r) for r in ("owner", "editor", "viewer"))
    for hours in range(1, 56):
        services.update_settings(project, {"opt_in_interval_hours": hours})
    url = f"/projects/{project.slug}/settings/audit/"
    first = owner.get(url).content.decode()
    assert "55 in all" in first and "page 1 of 2" in first
    assert owner.get(url, {"page": 2}).content.decode().count('data-setting="opt_in_interval_hours"') == 5
    for client in (editor, viewer):
        assert client.get(url).status_code == 403
        assert client.get(url.replace("audit/", "audit.csv")).status_code == 403
        assert 'id="audit-link"' not in client.get(f"/projects/{project.slug}/settings/").content.decode()
    assert 'id="audit-link"' in owner.get(f"/projects/{project.slug}/settings/").content.decode()


def test_the_csv_download_is_safe_in_a_spreadsheet(project, api: Api) -> None:
    row, _ = services.issue_key(project, '=HYPERLINK("http://evil")')
    services.update_settings(project, {"opt_out_keywords": ["SITISHA"]})
    owner = member(project, Membership.OWNER)
    r = owner.get(f"/projects/{project.slug}/settings/audit.csv")
    assert r.status_code == 200 and r["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(r.streaming_content).decode())))
    assert rows[0] == ["at_utc", "source", "who", "setting", "before", "after", "weakens_legal_rule"]
    assert rows[1][3:] == ["opt_out_keywords", "[]", '["SITISHA"]', "no"]
    key_row = rows[2]
    assert key_row[3] == "api_key" and json.loads(key_row[5])["name"] == '=HYPERLINK("http://evil")'
    # a cell that starts like a formula is text to a spreadsheet
    for cells in rows:
        assert not any(c.startswith(("=", "+", "-", "@")) for c in cells), cells


# --- the command line ------------------------------------------------------------------------------
def test_the_command_line_changes_settings_and_shows_the_log(project) -> None:
    out = StringIO()
    call_command(
        "project", "settings", project.slug, "--set", "consent_regions=[]", "--set", "auto_opt_in=true", stdout=out
    )
    assert json.loads(out.getvalue())["consent_regions"] == []
    rows = {e.setting: e for e in AuditEntry.objects.all()}
    assert rows["consent_regions"].weakens and rows["consent_regions"].source == "cli"
    assert rows["consent_regions"].who.startswith("command line (")
    out = StringIO()
    call_command("project", "audit", project.slug, "--json", stdout=out)
    assert {e["setting"] for e in json.loads(out.getvalue())} == {"consent_regions", "auto_opt_in"}
    out = StringIO()
    call_command("project", "audit", project.slug, stdout=out)
    assert "WEAKENS A LEGAL RULE" in out.getvalue()
    out = StringIO()
    call_command("project", "audit", project.slug, "--csv", stdout=out)
    assert out.getvalue().splitlines()[0].startswith("at_utc,source,who")
