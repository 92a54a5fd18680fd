"""A project's default country: set from its time zone when the project is created (Africa/Nairobi → KE),
changed in its settings (API, page, CLI), and used on every path that writes a number — the API, bulk, the CSV
import, the pages, a source's sync, a keyword, a mobile worker — so that a case's `0711 222 333` is stored as
254711222333, and the fix is shown: "0711 222 333 → +254 711 222333 (Kenya, the project's default country)"."""

from __future__ import annotations

import importlib
import io
import json
import time

import pytest
from django.apps import apps
from django.core.management import CommandError, call_command
from django.test import Client

from casemsg.cases.models import Case
from casemsg.cases.services import CaseChange, bulk_upsert
from casemsg.core import errors, phone
from casemsg.projects.models import Project
from casemsg.projects.services import create_project
from casemsg.sources import services as sources
from casemsg.sources.push import sign
from tests.conftest import Api
from tests.inbound.conftest import sms_in

pytestmark = pytest.mark.django_db

LOCAL, STORED = "0711 222 333", "254711222333"
SHOWN = "0711 222 333 → +254 711 222333 (Kenya, the project's default country)"


@pytest.fixture
def nairobi() -> Project:
    p, key = create_project("nairobi", "Nairobi program", "Africa/Nairobi")
    p.api_key = key
    return p


@pytest.fixture
def napi(nairobi) -> Api:
    return Api(nairobi.api_key, nairobi.slug)


def stored(project: Project, case_id: str) -> str:
    return Case.objects.get(project=project, case_id=case_id).properties["contact_phone_number"]


# --- the setting ----------------------------------------------------------------------------------
def test_a_new_project_takes_its_time_zones_country(db) -> None:
    assert create_project("ke", "K", "Africa/Nairobi")[0].default_country == "KE"
    assert create_project("ny", "N", "America/New_York")[0].default_country == "US"
    assert create_project("utc", "U", "UTC")[0].default_country == ""
    assert create_project("chosen", "C", "Africa/Nairobi", country="tz")[0].default_country == "TZ"
    out = io.StringIO()
    call_command("project", "create", "kampala", "--time-zone", "Africa/Kampala", stdout=out)
    assert "Default country: UG" in out.getvalue()
    assert Project.objects.get(slug="kampala").default_country == "UG"
    with pytest.raises(CommandError, match="default_country: 'XX' is not an ISO 3166 country code"):
        call_command("project", "create", "nowhere", "--country", "xx", stdout=out)


def test_the_setting_through_the_api_the_cli_and_the_page(napi, nairobi, admin) -> None:
    assert napi.get("settings").json()["default_country"] == "KE"
    r = napi.patch("settings", {"default_country": "XX"})
    assert r.status_code == 422 and r.json()["error"]["code"] == errors.VALIDATION_ERROR
    assert "default_country" in r.json()["error"]["message"]
    assert napi.patch("settings", {"default_country": "ug"}).json()["default_country"] == "UG"
    out = io.StringIO()
    call_command("project", "settings", "nairobi", "--set", 'default_country="TZ"', stdout=out)
    assert json.loads(out.getvalue())["default_country"] == "TZ"
    page = admin.get("/projects/nairobi/settings/")
    assert page.context["form"].initial["default_country"] == "TZ"
    assert '<option value="KE">Kenya (KE)</option>' in page.content.decode()
    body = {k: v for k, v in page.context["form"].initial.items() if v not in (None, False)}
    r = admin.post("/projects/nairobi/settings/", {**body, "default_country": "KE"})
    assert r.status_code == 302
    assert napi.get("settings").json()["default_country"] == "KE"
    # every change is in the audit log
    audit = napi.get("audit", setting="default_country").json()["items"]
    assert [(a["before"], a["after"]) for a in audit][:3] == [("TZ", "KE"), ("UG", "TZ"), ("KE", "UG")]


def test_the_migration_sets_existing_projects_from_their_zones(db) -> None:
    for slug, zone in (("a", "Africa/Nairobi"), ("b", "Asia/Kolkata"), ("c", "UTC"), ("d", "Africa/Nairobi")):
        create_project(slug, slug, zone, country="")
    Project.objects.filter(slug="b").update(default_country="LK")  # one chosen already stays
    migration = importlib.import_module("casemsg.projects.migrations.0008_project_default_country")
    migration.from_time_zones(apps, None)
    got = dict(Project.objects.values_list("slug", "default_country"))
    assert got == {"a": "KE", "b": "LK", "c": "", "d": "KE"}


# --- the number -----------------------------------------------------------------------------------
def test_the_rule() -> None:
    fix = phone.local_fix(LOCAL, "KE")
    assert fix is not None and fix.number == STORED and fix.describe() == SHOWN
    assert phone.local_fix("711222333", "KE").number == STORED  # type: ignore[union-attr]
    assert phone.local_fix("(0711) 222-333", "KE").number == STORED  # type: ignore[union-attr]
    # an international number, one written with + or 00, one with an obvious fix of its own: untouched
    for value in (STORED, "+0711222333", "00254711222333", "1-206-617-1234", "12066171234", "0711 22X 333"):
        assert phone.local_fix(value, "KE") is None, value
    assert phone.local_fix(LOCAL, "") is None
    assert phone.local_fix("0711", "KE") is None  # no valid Kenyan number
    assert phone.local_fix("(206) 617-1234", "US").number == "12066171234"  # type: ignore[union-attr]


def test_the_api_and_bulk(napi, nairobi, project) -> None:
    r = napi.post("cases", {"case_id": "one", "case_type": "mother", "properties": {"contact_phone_number": LOCAL}})
    assert r.status_code == 201 and r.json()["properties"]["contact_phone_number"] == STORED
    assert napi.contact("one")["sms"]["error"] is None  # a Kenyan number needs no consent: it can be texted
    body = {
        "cases": [
            {"case_id": f"b{i}", "case_type": "mother", "properties": {"contact_phone_number": v}}
            for i, v in enumerate(["0722 000 111", "0733-000-222", "919812345678"])
        ]
    }
    assert napi.post("cases/bulk", body).status_code in (200, 201)
    assert [stored(nairobi, f"b{i}") for i in range(3)] == ["254722000111", "254733000222", "919812345678"]
    # a project without a default country (UTC) keeps the local number, and says what is wrong
    other = Api(project.api_key, project.slug)
    assert other.post("cases", {"case_id": "x", "case_type": "m", "properties": {"contact_phone_number": LOCAL}})
    assert stored(project, "x") == LOCAL
    assert other.contact("x")["sms"]["error"]["code"] == errors.INVALID_PHONE_NUMBER


def test_a_number_stored_before_gets_the_fix_on_the_case_page(napi, nairobi, admin) -> None:
    Project.objects.filter(pk=nairobi.pk).update(default_country="")
    nairobi.refresh_from_db()
    bulk_upsert(nairobi, [CaseChange(case_id="old", case_type="mother", properties={"contact_phone_number": LOCAL})])
    assert stored(nairobi, "old") == LOCAL
    napi.patch("settings", {"default_country": "KE"})
    contact = napi.contact("old")
    assert contact["sms"]["error"]["code"] == errors.INVALID_PHONE_NUMBER and contact["sms"]["error"]["fix"] == SHOWN
    page = admin.get("/projects/nairobi/cases/old/").content.decode()
    assert f"Apply the fix: {STORED}" in page
    assert "0711 222 333 → +254 711 222333 (Kenya, the project&#x27;s default country)" in page
    r = admin.post("/projects/nairobi/cases/old/", {"action": "fix", "value": STORED}, follow=True)
    assert stored(nairobi, "old") == STORED, r.content.decode()[:2000]
    assert f"Phone number changed: {SHOWN}." in [str(m) for m in r.context["messages"]]


def test_the_case_pages_store_it_and_say_so(nairobi, admin) -> None:
    r = admin.post(
        "/projects/nairobi/new-case/",
        {"case_type": "mother", "name": "Amina", "case_id": "amina", "contact_phone_number": LOCAL},
        follow=True,
    )
    case = Case.objects.filter(project=nairobi, name="Amina").first()
    assert case is not None, r.content.decode()[:3000]
    assert case.properties["contact_phone_number"] == STORED
    said = [str(m) for m in r.context["messages"]]
    assert f"Phone number stored as an international number: {SHOWN}." in said
    # the properties form of the case page, too
    r = admin.post(
        f"/projects/nairobi/cases/{case.case_id}/",
        {"action": "properties", "key": ["contact_phone_number"], "value": ["0722 000 111"], "name": "Amina"},
        follow=True,
    )
    assert stored(nairobi, case.case_id) == "254722000111"
    assert any("0722 000 111 → +254 722 000111 (Kenya" in str(m) for m in r.context["messages"])


def test_the_csv_import_stores_and_lists_the_fixes(nairobi, tmp_path) -> None:
    path = tmp_path / "cases.csv"
    path.write_text(f"case_id,name,contact_phone_number\nc1,Asha,{LOCAL}\nc2,Ravi,919812345678\nc3,Bad,0711\n")
    out, err = io.StringIO(), io.StringIO()
    call_command("cases", "import", str(path), "--project", "nairobi", "--case-type", "mother", stdout=out, stderr=err)
    assert f"line 2 (imported, number fixed): {SHOWN}" in err.getvalue()
    assert "1 local number was stored with the project's default country" in out.getvalue()
    assert stored(nairobi, "c1") == STORED and stored(nairobi, "c3") == "0711"  # no Kenyan number: a warning
    out = io.StringIO()
    call_command("cases", "import", str(path), "--project", "nairobi", "--case-type", "mother", "--json", stdout=out)
    doc = json.loads(out.getvalue())
    assert doc["fixed"] == [{"line": 2, "message": SHOWN}]
    assert [w["line"] for w in doc["warnings"]] == [4]


def test_the_import_page_shows_the_fixes(nairobi, admin) -> None:
    upload = io.BytesIO(f"case_id,contact_phone_number\np1,{LOCAL}\n".encode())
    upload.name = "cases.csv"
    r = admin.post("/projects/nairobi/cases-import/", {"case_type": "mother", "file": upload})
    page = r.content.decode()
    assert r.status_code == 200 and "number fixed: 0711 222 333 → +254 711 222333 (Kenya" in page
    r = admin.post("/projects/nairobi/cases-import/", {"step": "confirm", "token": r.context["token"]}, follow=True)
    assert stored(nairobi, "p1") == STORED
    assert any(
        "1 local number stored with the project's default country (Kenya)" in str(m) for m in r.context["messages"]
    )


def test_a_source_sync_stores_it_once(nairobi) -> None:
    secret = "s3cret-signing-key-0123456789"
    source = sources.add_source(nairobi, "push", "push", {"signing_secret": secret}, case_type="mother")
    body = json.dumps({"cases": [{"case_id": "s1", "properties": {"contact_phone_number": LOCAL}}]}).encode()

    def post():
        sig = sign(secret, int(time.time()), body)
        r = Client().post(
            sources.receiver_path(source), body, content_type="application/json", HTTP_X_CASEMSG_SIGNATURE=sig
        )
        assert r.status_code == 200, r.content
        return r.json()

    assert post()["created"] == 1
    assert stored(nairobi, "s1") == STORED
    assert post()["unchanged"] == 1  # the stored fix is the same number: no rewrite at every sync


def test_a_keyword_sets_it(napi, nairobi, sandbox) -> None:
    r = napi.post("keywords", {"keyword": "phone", "action": "update_case", "property_name": "contact_phone_number"})
    assert r.status_code == 201, r.content
    napi.case({"contact_phone_number": "254700000001", "contact_phone_number_is_verified": "1"}, case_id="k1")
    sms_in(napi, "254700000001", f"PHONE {LOCAL}")
    assert stored(nairobi, "k1") == STORED


def test_a_mobile_workers_number(napi) -> None:
    r = napi.post("mobile-workers", {"username": "chw", "phone_numbers": [LOCAL]})
    assert r.status_code == 201, r.content
    assert [n["number"] for n in r.json()["phone_numbers"]] == [STORED]
