"""The configuration pages through Django's test client: keywords, gateways and routes, settings, API keys.

Every form is posted with good and bad input: bad input shows the service's sentence on the form (the same
words the API answers with) and changes nothing; nothing answers 500. Roles: a viewer sees no write control
and is refused (403) when posting anyway; another project's rows are 404."""

from __future__ import annotations

import json

import pytest
from django.utils import timezone

from casemsg.contacts.models import OptOut
from casemsg.gateways import services as gateways
from casemsg.gateways.models import Gateway, GatewayRoute
from casemsg.inbound import services as keyword_services
from casemsg.inbound.models import Keyword
from casemsg.inbound.services import KeywordFields
from casemsg.messaging.models import Message
from casemsg.projects.models import ApiKey, Project
from fakes.gateways import Rule

KE = "254712345678"
XSS = "<script>alert(1)</script>"
XSS_ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


def errors_of(response) -> dict[str, list[str]]:
    """The form's errors as the page got them (field → messages; '__all__' for the form's own)."""
    form = response.context["form"]
    return {k: [str(e) for e in v] for k, v in form.errors.items()}


# --- keywords --------------------------------------------------------------------------------------
def kw_body(**over: str) -> dict[str, str]:
    return {"keyword": "hello", "action": "reply", "reply_en": "Hi {case.name}!", **over}


def test_keyword_create_edit_delete(owner, project):
    base = f"/projects/{project.slug}/keywords/"
    assert owner.get(base).status_code == 200
    r = owner.post(base + "new/", kw_body(reply_sw="Habari {case.name}!", description=XSS))
    assert r.status_code == 302, errors_of(r)
    k = Keyword.objects.get(project=project)
    assert (k.keyword, k.action) == ("HELLO", "reply")
    assert k.reply == {"en": "Hi {case.name}!", "sw": "Habari {case.name}!"}  # one box per project language

    page = owner.get(base).content.decode()
    assert "HELLO" in page and XSS_ESCAPED in page and XSS not in page

    edit = owner.get(f"{base}{k.pk}/")
    assert edit.status_code == 200 and "Habari {case.name}!" in edit.content.decode()
    body = kw_body(keyword="hi", action="update_case", p_update_case__property_name="status", reply_en="")
    r = owner.post(f"{base}{k.pk}/", body)
    assert r.status_code == 302, errors_of(r)
    k.refresh_from_db()
    assert (k.keyword, k.action, k.params, k.reply) == (
        "HI",
        "update_case",
        {"property_name": "status", "property_value": "{rest}"},
        {},
    )
    # the form shows the stored parameters in the action's own fields
    edit = owner.get(f"{base}{k.pk}/").content.decode()
    assert 'name="p_update_case__property_name"' in edit and 'value="status"' in edit

    assert owner.post(f"{base}{k.pk}/", {"delete": "1"}).status_code == 302
    assert not Keyword.objects.filter(pk=k.pk).exists()


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        (kw_body(keyword="STOP"), "keyword", "reserved for opt-out"),
        (kw_body(keyword="two words"), "keyword", "one word"),
        (kw_body(reply_en=""), "__all__", "needs reply text"),
        (kw_body(action="update_case", reply_en=""), "p_update_case__property_name", "needs property_name"),
        (kw_body(action="start_survey"), "p_start_survey__survey", "needs survey"),
        (kw_body(reply_en="Hi {case.name"), "__all__", "not a valid template"),
        (kw_body(action="explode"), "action", "Select a valid choice"),
        (kw_body(keyword=""), "keyword", "required"),
    ],
)
def test_keyword_bad_input_is_a_form_error(owner, project, body, field, words):
    r = owner.post(f"/projects/{project.slug}/keywords/new/", body)
    assert r.status_code == 200
    assert any(words in e for e in errors_of(r)[field]), errors_of(r)
    assert not Keyword.objects.exists()


def test_keyword_error_is_the_api_sentence_and_duplicates_are_refused(owner, project, api):
    api_answer = api.post("keywords", {"keyword": "STOP", "action": "reply", "reply": {"en": "x"}}).json()
    r = owner.post(f"/projects/{project.slug}/keywords/new/", kw_body(keyword="STOP"))
    assert errors_of(r)["keyword"] == [api_answer["error"]["message"]]

    assert owner.post(f"/projects/{project.slug}/keywords/new/", kw_body()).status_code == 302
    r = owner.post(f"/projects/{project.slug}/keywords/new/", kw_body(keyword="Hello"))
    assert "exists in this project" in errors_of(r)["keyword"][0]
    assert Keyword.objects.count() == 1


def test_keyword_of_another_project_is_404(owner, project, other_project):
    k = keyword_services.create_keyword(other_project, KeywordFields(keyword="THEIRS", reply={"en": "x"}))
    assert owner.get(f"/projects/{project.slug}/keywords/{k.pk}/").status_code == 404
    assert owner.post(f"/projects/{project.slug}/keywords/{k.pk}/", {"delete": "1"}).status_code == 404
    assert Keyword.objects.filter(pk=k.pk).exists()


def test_viewer_reads_keywords_but_cannot_change_them(viewer, project):
    k = keyword_services.create_keyword(project, KeywordFields(keyword="HELLO", reply={"en": "Hi"}))
    page = viewer.get(f"/projects/{project.slug}/keywords/").content.decode()
    assert "HELLO" in page and "Add a keyword" not in page
    form = viewer.get(f"/projects/{project.slug}/keywords/{k.pk}/").content.decode()
    assert 'id="save"' not in form and 'id="delete"' not in form and "disabled" in form
    assert viewer.post(f"/projects/{project.slug}/keywords/new/", kw_body(keyword="NEW")).status_code == 403
    assert viewer.post(f"/projects/{project.slug}/keywords/{k.pk}/", {"delete": "1"}).status_code == 403
    assert list(Keyword.objects.values_list("keyword", flat=True)) == ["HELLO"]


# --- gateways --------------------------------------------------------------------------------------
def gw_body(**over: str) -> dict[str, str]:
    return {"name": "aggregator", "rate_limit": "0", "max_segments": "10", "countries": "", **over}


def test_gateway_list_shows_own_and_installation_gateways(owner, project, other_project):
    gateways.add_gateway("shared-sandbox", "sandbox")
    own = gateways.add_gateway("own-http", "http", {"url": "https://93.184.216.34/send"}, project=project)
    gateways.add_gateway("their-http", "http", {"url": "https://93.184.216.34/send"}, project=other_project)
    page = owner.get(f"/projects/{project.slug}/gateways/").content.decode()
    assert "shared-sandbox" in page and "own-http" in page and "their-http" not in page
    assert f"/gateways/{own.pk}/" in page
    types = owner.get(f"/projects/{project.slug}/gateways/new/").content.decode()
    assert "?type=twilio" in types and "?type=http" in types
    assert "not a gateway type" in owner.get(f"/projects/{project.slug}/gateways/new/?type=nope").content.decode()


def test_gateway_form_is_built_from_the_type_schema(owner, project):
    page = owner.get(f"/projects/{project.slug}/gateways/new/?type=twilio").content.decode()
    for key in ("account_sid", "auth_token", "from_number", "messaging_service_sid", "opt_out_keywords"):
        assert f'name="cfg_{key}"' in page
    assert 'type="password" name="cfg_auth_token"' in page
    africa = owner.get(f"/projects/{project.slug}/gateways/new/?type=africastalking").content.decode()
    assert 'type="checkbox" name="cfg_sandbox"' in africa


def test_gateway_create_edit_keeps_secrets_and_never_shows_them(owner, project):
    body = gw_body(
        type="twilio",
        name="tw",
        cfg_account_sid="AC123",
        cfg_auth_token="s3cret-token",
        cfg_from_number="+15550001111",
        cfg_opt_out_keywords="sitisha, acha",
        countries="us ca",
        rate_limit="5",
    )
    r = owner.post(f"/projects/{project.slug}/gateways/new/", body)
    assert r.status_code == 302, errors_of(r)
    gw = Gateway.objects.get(name="tw")
    assert gw.project_id == project.pk and gw.type == "twilio"
    assert gw.config == {
        "account_sid": "AC123",
        "auth_token": "s3cret-token",
        "from_number": "+15550001111",
        "opt_out_keywords": ["sitisha", "acha"],
    }
    assert (gw.countries, gw.rate_limit) == (["US", "CA"], 5)

    page = owner.get(f"/projects/{project.slug}/gateways/{gw.pk}/").content.decode()
    assert "s3cret-token" not in page and "AC123" in page and "sitisha, acha" in page
    assert gw.inbound_key in page  # the webhook addresses, for the provider

    # a blank secret keeps the stored one; the name cannot change
    edit = {k: v for k, v in body.items() if k not in ("cfg_auth_token", "name", "type")}
    r = owner.post(f"/projects/{project.slug}/gateways/{gw.pk}/", {**edit, "cfg_from_number": "+15550002222"})
    assert r.status_code == 302, errors_of(r)
    gw.refresh_from_db()
    assert gw.config["auth_token"] == "s3cret-token" and gw.config["from_number"] == "+15550002222"
    r = owner.post(f"/projects/{project.slug}/gateways/{gw.pk}/", {**edit, "cfg_auth_token": "new-token"})
    gw.refresh_from_db()
    assert gw.config["auth_token"] == "new-token"


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        (gw_body(type="http"), "cfg_url", "This field is required"),
        (gw_body(type="http", cfg_url="http://169.254.169.254/latest"), "cfg_url", "metadata"),
        (gw_body(type="http", cfg_url="ftp://sms.example.org/"), "cfg_url", ""),
        (gw_body(type="http", cfg_url="https://93.184.216.34/", cfg_params="{not json"), "cfg_params", "JSON"),
        (gw_body(type="http", cfg_url="https://93.184.216.34/", cfg_params="[1]"), "cfg_params", "JSON object"),
        (gw_body(type="http", cfg_url="https://93.184.216.34/", cfg_method="PUT"), "cfg_method", "valid choice"),
        (gw_body(type="http", cfg_url="https://93.184.216.34/", cfg_timeout="soon"), "cfg_timeout", "a number"),
        (gw_body(type="http", name="bad name", cfg_url="https://93.184.216.34/"), "name", "letters, digits"),
        (gw_body(type="http", cfg_url="https://93.184.216.34/", countries="XX"), "countries", "XX"),
        (gw_body(type="http", cfg_url="https://93.184.216.34/", max_segments="0"), "max_segments", "greater"),
        (gw_body(type="twilio", cfg_account_sid="AC1", cfg_auth_token="t"), "cfg_from_number", "from_number or"),
        (gw_body(type="http", cfg_url="https://93.184.216.34/", cfg_timeout="1e400"), "cfg_timeout", "finite"),
        (gw_body(type="http", cfg_url="https://93.184.216.34/", cfg_params='{"a": NaN}'), "cfg_params", "JSON"),
        (gw_body(type="http", cfg_url="https://93.184.216.34/", cfg_params='{"a": "\\u0000"}'), "cfg_params", "NUL"),
        (gw_body(type="http", cfg_url="https://93.184.216.34/", rate_limit="9" * 12), "rate_limit", "less than"),
    ],
)
def test_gateway_bad_input_is_a_form_error(owner, project, body, field, words):
    r = owner.post(f"/projects/{project.slug}/gateways/new/", body)
    assert r.status_code == 200
    errs = errors_of(r)
    assert field in errs and any(words in e for e in errs[field]), errs
    assert not Gateway.objects.exists()


def test_gateway_url_refusal_is_netguards_sentence(owner, project, settings):
    settings.CASEMSG_GATEWAY_ALLOW_PRIVATE = False
    r = owner.post(f"/projects/{project.slug}/gateways/new/", gw_body(type="http", cfg_url="http://127.0.0.1:6379/"))
    assert "127.0.0.1" in errors_of(r)["cfg_url"][0]
    assert not Gateway.objects.exists()


def test_gateway_name_taken_is_a_form_error(owner, project, other_project):
    gateways.add_gateway("aggregator", "sandbox", project=project)
    r = owner.post(f"/projects/{project.slug}/gateways/new/", gw_body(type="sandbox"))
    assert "This project already has a gateway named 'aggregator'" in errors_of(r)["name"][0]
    # another project's names (and the installation's) do not stand in the way, and are not named
    gateways.add_gateway("theirs", "sandbox", project=other_project)
    gateways.add_gateway("shared", "sandbox")
    for name in ("theirs", "shared"):
        r = owner.post(f"/projects/{project.slug}/gateways/new/", gw_body(type="sandbox", name=name))
        assert r.status_code == 302, errors_of(r)
    assert Gateway.objects.filter(project=project).count() == 3


def test_only_own_gateways_are_edited_or_deleted(owner, project, other_project):
    shared = gateways.add_gateway("shared", "sandbox")
    theirs = gateways.add_gateway("theirs", "sandbox", project=other_project)
    for gw in (shared, theirs):
        assert owner.get(f"/projects/{project.slug}/gateways/{gw.pk}/").status_code == 404
        assert owner.post(f"/projects/{project.slug}/gateways/{gw.pk}/", {"delete": "1"}).status_code == 404
        assert (
            owner.post(f"/projects/{project.slug}/gateways/{gw.pk}/test/", {"to": KE, "text": "x"}).status_code == 404
        )
    assert Gateway.objects.count() == 2


def test_gateway_delete_takes_its_routes(owner, project):
    gw = gateways.add_gateway("mine", "sandbox", project=project)
    gateways.map_prefix("254", "mine", project)
    assert owner.post(f"/projects/{project.slug}/gateways/{gw.pk}/", {"delete": "1"}).status_code == 302
    assert not Gateway.objects.exists() and not GatewayRoute.objects.exists()


def test_send_a_test_message_through_a_real_http_server(owner, project, fake_http):
    config = fake_http.gateway_config()
    body = gw_body(
        type="http",
        name="agg",
        cfg_url=config["url"],
        cfg_params=json.dumps(config["params"]),
        cfg_provider_id_path="id",
    )
    r = owner.post(f"/projects/{project.slug}/gateways/new/", body)
    assert r.status_code == 302, errors_of(r)
    gw = Gateway.objects.get(name="agg")

    r = owner.post(f"/projects/{project.slug}/gateways/{gw.pk}/test/", {"to": "+254 712 345 678", "text": "Hi {x}"})
    assert r.status_code == 200
    page = r.content.decode()
    assert 'id="test-outcome" data-status="sent"' in page
    (got,) = fake_http.requests()
    assert (got.to, got.text) == (KE, "Hi {x}")  # as typed: braces are no placeholders
    msg = Message.objects.get(project=project, direction=Message.OUT)
    assert (msg.status, msg.gateway_id, msg.to) == ("sent", gw.pk, KE)
    assert msg.provider_id and msg.provider_id in page


def test_test_message_checks_like_any_message(owner, project, fake_http):
    gw = gateways.add_gateway("agg", "http", fake_http.gateway_config(), project=project)
    url = f"/projects/{project.slug}/gateways/{gw.pk}/test/"
    r = owner.post(url, {"to": "12345", "text": "x"})
    assert "to" in r.context["test_form"].errors
    OptOut.objects.create(phone_number=KE, source="keyword", opted_out_on=timezone.now())
    r = owner.post(url, {"to": KE, "text": "x"})
    assert 'data-status="failed"' in r.content.decode() and "PHONE_OPTED_OUT" in r.content.decode()
    fake_http.add_rule(Rule(status=400, error="nope"))
    OptOut.objects.all().delete()
    r = owner.post(url, {"to": KE, "text": "x"})
    assert 'data-status="failed"' in r.content.decode() and "GATEWAY_ERROR" in r.content.decode()
    assert owner.get(url).status_code == 405


def test_routes_add_replace_remove_and_bad_input(owner, project, other_project):
    mine = gateways.add_gateway("mine", "sandbox", project=project)
    gateways.add_gateway("shared", "sandbox")
    gateways.add_gateway("theirs", "sandbox", project=other_project)
    url = f"/projects/{project.slug}/routes/"
    page = owner.get(url).content.decode()
    assert 'value="mine"' in page and 'value="shared"' in page and 'value="theirs"' not in page

    assert owner.post(url, {"route_prefix": "+254", "gateway": "mine"}).status_code == 302
    assert owner.post(url, {"route_prefix": "254", "gateway": "shared"}).status_code == 302  # replaces
    (r,) = GatewayRoute.objects.filter(project=project)
    assert (r.prefix, r.gateway.name) == ("254", "shared")

    bad = owner.post(url, {"route_prefix": "25a", "gateway": "mine"})
    assert "digits" in errors_of(bad)["route_prefix"][0]
    bad = owner.post(url, {"route_prefix": "1", "gateway": "theirs"})
    assert "valid choice" in errors_of(bad)["gateway"][0]

    assert owner.post(url, {"remove": "254"}).status_code == 302
    assert not GatewayRoute.objects.filter(project=project).exists()
    assert mine.pk  # the gateway stays


def test_viewer_sees_no_gateway_controls_and_is_refused(viewer, project, fake_http):
    gw = gateways.add_gateway("mine", "http", fake_http.gateway_config(), project=project)
    page = viewer.get(f"/projects/{project.slug}/gateways/").content.decode()
    assert "Add a gateway" not in page
    form = viewer.get(f"/projects/{project.slug}/gateways/{gw.pk}/").content.decode()
    assert 'id="send-test"' not in form and 'id="delete"' not in form
    assert gw.inbound_key not in form  # the webhook addresses carry the gateway's secret: owners only
    assert viewer.post(f"/projects/{project.slug}/gateways/{gw.pk}/test/", {"to": KE, "text": "x"}).status_code == 403
    assert viewer.post(f"/projects/{project.slug}/gateways/{gw.pk}/", {"delete": "1"}).status_code == 403
    assert viewer.post(f"/projects/{project.slug}/routes/", {"route_prefix": "*", "gateway": "mine"}).status_code == 403
    assert fake_http.requests() == [] and Gateway.objects.count() == 1 and not GatewayRoute.objects.exists()


# --- settings --------------------------------------------------------------------------------------
def settings_body(**over: str) -> dict[str, str]:
    return {
        "default_time_zone": "Africa/Nairobi",
        "default_language": "sw",
        "sms_languages": "en, sw",
        "quiet_hours_start": "21:00",
        "quiet_hours_end": "07:30",
        "consent_regions": "us pr",
        "block_shared_numbers": "on",
        "opt_in_interval_hours": "12",
        "opt_in_expiry_hours": "48",
        **over,
    }


def test_settings_saved_as_the_api_reads_them(owner, project, api):
    page = owner.get(f"/projects/{project.slug}/settings/").content.decode()
    assert 'value="en sw"' in page  # the project's languages
    r = owner.post(f"/projects/{project.slug}/settings/", settings_body())
    assert r.status_code == 302, errors_of(r)
    got = api.get("settings").json()
    assert got["default_time_zone"] == "Africa/Nairobi"
    assert got["default_language"] == "sw" and got["sms_languages"] == ["en", "sw"]
    assert got["quiet_hours"] == {"start": "21:00", "end": "07:30"}
    assert got["consent_regions"] == ["US", "PR"]
    assert got["block_shared_numbers"] is True and got["auto_opt_in"] is False
    assert (got["opt_in_interval_hours"], got["opt_in_expiry_hours"]) == (12, 48)
    # empty quiet hours: none
    owner.post(f"/projects/{project.slug}/settings/", settings_body(quiet_hours_start="", quiet_hours_end=""))
    assert api.get("settings").json()["quiet_hours"] is None


def test_settings_form_saved_unchanged_changes_nothing(owner, project, api):
    api.patch("settings", {"quiet_hours": {"start": "22:00", "end": "06:00"}, "auto_opt_in": True})
    before = api.get("settings").json()
    initial = owner.get(f"/projects/{project.slug}/settings/").context["form"].initial
    body = {k: ("on" if v is True else v) for k, v in initial.items() if v is not False}
    r = owner.post(f"/projects/{project.slug}/settings/", body)
    assert r.status_code == 302, errors_of(r)
    assert api.get("settings").json() == before


@pytest.mark.parametrize(
    ("over", "field", "api_body"),
    [
        ({"default_time_zone": "Mars/Base"}, "default_time_zone", {"default_time_zone": "Mars/Base"}),
        ({"default_language": "fr"}, "default_language", {"default_language": "fr", "sms_languages": ["en", "sw"]}),
        ({"sms_languages": "en, EN!"}, "sms_languages", {"sms_languages": ["en", "EN!"]}),
        ({"sms_languages": ""}, "sms_languages", None),
        ({"quiet_hours_end": ""}, "quiet_hours_end", {"quiet_hours": {"start": "21:00", "end": ""}}),
        ({"quiet_hours_start": "25:00"}, "quiet_hours_start", {"quiet_hours": {"start": "25:00", "end": "07:30"}}),
        ({"quiet_hours_end": "21:00"}, "quiet_hours_start", {"quiet_hours": {"start": "21:00", "end": "21:00"}}),
        ({"consent_regions": "US ZZ"}, "consent_regions", {"consent_regions": ["US", "ZZ"]}),
        ({"opt_in_expiry_hours": "0"}, "opt_in_expiry_hours", {"opt_in_expiry_hours": 0}),
        ({"opt_in_interval_hours": "soon"}, "opt_in_interval_hours", None),
    ],
)
def test_settings_bad_input_shows_the_api_sentence(owner, project, api, over, field, api_body):
    before = api.get("settings").json()
    r = owner.post(f"/projects/{project.slug}/settings/", settings_body(**over))
    assert r.status_code == 200
    errs = errors_of(r)
    assert field in errs, errs
    if api_body is not None:
        answer = api.patch("settings", api_body)
        assert answer.status_code == 422
        assert errs[field] == [answer.json()["error"]["message"]]  # one home for the rules
    assert api.get("settings").json() == before  # all or nothing
    assert Project.objects.get(pk=project.pk).default_time_zone == before["default_time_zone"]


def test_viewer_cannot_change_settings(viewer, project):
    page = viewer.get(f"/projects/{project.slug}/settings/").content.decode()
    assert 'id="save"' not in page
    assert viewer.post(f"/projects/{project.slug}/settings/", settings_body()).status_code == 403
    assert Project.objects.get(pk=project.pk).default_time_zone == "UTC"


# --- API keys --------------------------------------------------------------------------------------
def test_api_key_shown_once_then_listed_and_revocable(owner, project, api):
    url = f"/projects/{project.slug}/api-keys/"
    first = ApiKey.objects.get(project=project)
    page = owner.get(url).content.decode()
    assert first.prefix in page and "Revoke" in page

    r = owner.post(url, {"name": f"forwarder {XSS}", "scopes": ["read", "send"]})
    assert r.status_code == 200 and "no-store" in r["Cache-Control"]
    assert r.context["new_key"]["row"].scopes == ["read", "send"] and "(read, send)" in r.content.decode()
    plain = r.context["new_key"]["key"]
    body = r.content.decode()
    assert plain in body and XSS_ESCAPED in body and XSS not in body
    assert api.get("cases", key=plain).status_code == 200  # it works
    assert plain not in owner.get(url).content.decode()  # shown once

    row = ApiKey.objects.get(project=project, name=f"forwarder {XSS}")
    assert owner.post(url, {"revoke": str(row.pk)}).status_code == 302
    assert api.get("cases", key=plain).status_code == 401
    assert "revoked" in owner.get(url).content.decode()


def test_api_key_bad_input(owner, project, other_project):
    url = f"/projects/{project.slug}/api-keys/"
    r = owner.post(url, {"name": "x" * 101})
    assert "at most 100" in errors_of(r)["name"][0]
    theirs = ApiKey.objects.get(project=other_project)
    r = owner.post(url, {"revoke": str(theirs.pk)}, follow=True)
    assert "No API key" in r.content.decode()
    assert not ApiKey.objects.get(pk=theirs.pk).revoked
    r = owner.post(url, {"revoke": "abc"}, follow=True)
    assert r.status_code == 200 and "No API key" in r.content.decode()
    assert ApiKey.objects.filter(project=project).count() == 1


def test_viewer_cannot_see_api_keys(viewer, project):
    nav = viewer.get(f"/projects/{project.slug}/keywords/").content.decode()
    assert f"/projects/{project.slug}/settings/" in nav and f"/projects/{project.slug}/api-keys/" not in nav
    assert viewer.get(f"/projects/{project.slug}/api-keys/").status_code == 403
    assert viewer.post(f"/projects/{project.slug}/api-keys/", {"name": "x"}).status_code == 403
    assert ApiKey.objects.filter(project=project).count() == 1


def test_config_pages_link_from_the_project_nav(owner, project):
    page = owner.get(f"/projects/{project.slug}/keywords/").content.decode()
    for path in ("keywords/", "gateways/", "settings/", "api-keys/"):
        assert f'href="/projects/{project.slug}/{path}"' in page


def test_settings_page_sets_the_survey_skip_word(owner, project, api):
    r = owner.post(f"/projects/{project.slug}/settings/", settings_body(survey_skip_word="ruka"))
    assert r.status_code == 302, errors_of(r)
    assert api.get("settings").json()["survey_skip_word"] == "RUKA"
    r = owner.post(f"/projects/{project.slug}/settings/", settings_body(survey_skip_word="two words"))
    assert "one word" in errors_of(r)["survey_skip_word"][0]
    assert api.get("settings").json()["survey_skip_word"] == "RUKA"
