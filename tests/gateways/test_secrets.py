"""Gateway secrets are write-only, for every gateway type in the registry: a config field marked `secret`
(tokens, passwords, webhook secrets) and the values of an object marked `secret_values` (the http
gateway's headers and params) appear in no API response and no page, for a viewer, an editor or an owner
— and an owner's edit that leaves them as shown keeps the stored values."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django import forms
from django.contrib.auth import get_user_model
from django.test import Client

from casemsg.core.errors import InputError
from casemsg.gateways import services as gateways
from casemsg.gateways.base import SECRET_MASK, ConfigField, masked, unmasked
from casemsg.gateways.models import Gateway
from casemsg.gateways.registry import GATEWAY_TYPES
from casemsg.projects import services as projects
from casemsg.projects.models import Project
from casemsg.web.forms_config import CONFIG_PREFIX, GatewayForm
from tests.conftest import Api
from tests.web.clients import logged_in

pytestmark = pytest.mark.django_db

# Each type's required settings that are not secrets; everything marked secret is added by `secret_config`.
PLAIN = {
    "twilio": {"account_sid": "AC0123456789abcdef", "from_number": "+15550001111"},
    "telerivet": {"project_id": "PJ0123456789"},
    "africastalking": {"username": "sandbox"},
    "http": {"url": "http://127.0.0.1:9/send", "username": "casemsg"},
    "sandbox": {},
    "meta_cloud": {"phone_number_id": "106540352242922", "waba_id": "102290129340398"},
    "twilio_whatsapp": {"account_sid": "AC0123456789abcdef", "from_number": "+15550001111"},
    "smpp": {"host": "127.0.0.1", "port": 9, "system_id": "casemsg"},
}
UNREACHABLE = "http://127.0.0.1:9/"  # nothing listens: a test message fails at once


def secret_config(type_name: str) -> tuple[dict[str, Any], list[str]]:
    """A valid config of this type with a distinct secret in every secret field and secret value."""
    config: dict[str, Any] = dict(PLAIN.get(type_name, {}))
    secrets: list[str] = []
    for key, f in GATEWAY_TYPES[type_name].config_fields().items():
        if f.url and key not in config:
            config[key] = UNREACHABLE
        if not (f.secret or f.secret_values):
            continue
        value = f"S3cr3t{type_name}{key.replace('_', '')}Zq"
        secrets.append(value)
        if f.secret_values:
            config[key] = {"X-Api-Key": value, "to": "{to}", "text": "{text}"}
        elif f.type == "object":
            config[key] = {"header": "X-Hook-Secret", "value": value}
        else:
            config[key] = value
    GATEWAY_TYPES[type_name].validate_config(config)
    return config, secrets


def member(project: Project, role: str) -> Client:
    user = get_user_model().objects.create_user(f"{role}-{project.slug}", password="pw-long-enough-1")
    projects.add_member(project, user, role)
    return logged_in(user)


def assert_hidden(text: str, secrets: list[str], where: str) -> None:
    for s in secrets:
        assert s not in text, f"{where} shows the secret {s}"


def test_every_type_with_a_secret_is_covered() -> None:
    """The http gateway's headers and params hold secrets (an API key, a bearer token): their values are
    marked, so every type's secrets are known to the test below."""
    http = GATEWAY_TYPES["http"].config_fields()
    assert http["headers"].secret_values and http["params"].secret_values and http["inbound_secret"].secret
    for type_name in GATEWAY_TYPES:
        fields = GATEWAY_TYPES[type_name].config_fields().values()
        if type_name not in ("sandbox", "whatsapp_sandbox"):  # (they send nothing anywhere: no secret)
            assert any(f.secret or f.secret_values for f in fields), type_name


@pytest.mark.parametrize("type_name", sorted(GATEWAY_TYPES))
def test_no_secret_in_any_api_answer(project, api: Api, type_name: str) -> None:
    config, secrets = secret_config(type_name)
    r = api.post("gateways", {"name": f"gw-{type_name}", "type": type_name, "config": config})
    assert r.status_code == 201, r.content
    assert_hidden(r.content.decode(), secrets, "POST …/gateways")
    reader = Api(projects.issue_key(project, "reader", ["read"])[1], project.slug)
    for client in (api, reader):
        listed = client.get("gateways")
        assert listed.status_code == 200
        assert_hidden(listed.content.decode(), secrets, "GET …/gateways")
    gw = Gateway.objects.get(name=f"gw-{type_name}")
    # the webhook URLs carry the gateway's own secret key: a read-only key (like a viewer) does not see them
    assert gw.inbound_key in api.get("gateways").content.decode()
    assert gw.inbound_key not in reader.get("gateways").content.decode()
    assert api.post("routes", {"prefix": "254", "gateway": gw.name}).status_code == 201
    assert_hidden(api.get("routes").content.decode(), secrets, "GET …/routes")
    assert Gateway.objects.get(pk=gw.pk).config == config  # stored as given


@pytest.mark.parametrize("type_name", sorted(GATEWAY_TYPES))
def test_no_secret_on_any_page_for_any_role(project, type_name: str) -> None:
    config, secrets = secret_config(type_name)
    gw = gateways.add_gateway(f"gw-{type_name}", type_name, config, project=project)
    gateways.map_prefix("254", gw.name, project)
    base = f"/projects/{project.slug}"
    pages = [f"{base}/", f"{base}/gateways/", f"{base}/gateways/{gw.pk}/", f"{base}/routes/"]
    for role in ("viewer", "editor", "owner"):
        client = member(project, role)
        for url in pages:
            r = client.get(url)
            assert r.status_code == 200, (role, url)
            assert_hidden(r.content.decode(), secrets, f"{url} for a {role}")
    # what an owner's posts answer: a test message through it (it fails: nothing listens), a refused edit
    owner = Client()
    owner.force_login(get_user_model().objects.get(username=f"owner-{project.slug}"))
    r = owner.post(f"{base}/gateways/{gw.pk}/test/", {"to": "254712345678", "text": "hello"})
    assert r.status_code == 200
    assert_hidden(r.content.decode(), secrets, "the test message's page")
    r = owner.post(f"{base}/gateways/{gw.pk}/", {**form_as_shown(gw), "max_segments": "0"})
    assert r.status_code == 200  # refused: the form again
    assert_hidden(r.content.decode(), secrets, "a refused edit")
    assert Gateway.objects.get(pk=gw.pk).config == config


def form_as_shown(gw: Gateway) -> dict[str, Any]:
    """What a browser posts back when the owner saves the gateway's page without typing anything."""
    form = GatewayForm(gateway_type=GATEWAY_TYPES[gw.type], gateway=gw)
    data: dict[str, Any] = {}
    for name, field in form.fields.items():
        value = form[name].value()
        if isinstance(field, forms.BooleanField):
            if value:
                data[name] = "on"
            continue
        data[name] = "" if value is None else value
    return data


@pytest.mark.parametrize("type_name", sorted(GATEWAY_TYPES))
def test_saving_the_page_as_shown_keeps_every_secret(project, admin, type_name: str) -> None:
    config, _ = secret_config(type_name)
    gw = gateways.add_gateway(f"gw-{type_name}", type_name, config, project=project)
    r = admin.post(f"/projects/{project.slug}/gateways/{gw.pk}/", form_as_shown(gw))
    assert r.status_code == 302, r.content.decode()[:2000]
    assert Gateway.objects.get(pk=gw.pk).config == config


def test_headers_and_params_show_their_keys_and_keep_masked_values(project, admin) -> None:
    config = {
        "url": "http://127.0.0.1:9/send",
        "params": {"to": "{to}", "text": "{text}", "api_key": "k-123-secret", "sender": "CLINIC"},
        "headers": {"Authorization": "Bearer t-456-secret", "X-Request": "{message_id}"},
    }
    gw = gateways.add_gateway("agg", "http", config, project=project)
    url = f"/projects/{project.slug}/gateways/{gw.pk}/"
    page = admin.get(url).content.decode()
    assert "k-123-secret" not in page and "t-456-secret" not in page and "CLINIC" not in page
    shown = form_as_shown(gw)
    params, headers = json.loads(shown[CONFIG_PREFIX + "params"]), json.loads(shown[CONFIG_PREFIX + "headers"])
    assert params == {"to": "{to}", "text": "{text}", "api_key": SECRET_MASK, "sender": SECRET_MASK}
    assert headers == {"Authorization": SECRET_MASK, "X-Request": "{message_id}"}

    # change one value, remove one key, keep the rest as shown
    params.update(sender="HOSPITAL")
    del headers["X-Request"]
    body = {**shown, CONFIG_PREFIX + "params": json.dumps(params), CONFIG_PREFIX + "headers": json.dumps(headers)}
    assert admin.post(url, body).status_code == 302
    stored = Gateway.objects.get(pk=gw.pk).config
    assert stored["params"] == {**config["params"], "sender": "HOSPITAL"}
    assert stored["headers"] == {"Authorization": "Bearer t-456-secret"}

    # a mask where nothing is stored cannot stand for anything
    params["new_key"] = SECRET_MASK
    body[CONFIG_PREFIX + "params"] = json.dumps(params)
    r = admin.post(url, body)
    assert r.status_code == 200 and "new_key" in r.content.decode()
    assert Gateway.objects.get(pk=gw.pk).config["params"] == stored["params"]


def test_mask_and_unmask() -> None:
    f = ConfigField("object", secret_values=True)
    stored = {"a": "secret", "b": "{to}", "c": {"nested": "x"}}
    shown = masked(f, stored)
    assert shown == {"a": SECRET_MASK, "b": "{to}", "c": SECRET_MASK}
    assert unmasked("params", f, shown, stored) == stored
    with pytest.raises(InputError) as exc:
        unmasked("params", f, {"d": SECRET_MASK}, stored)
    assert exc.value.code == "INVALID_GATEWAY_CONFIG"
    assert masked(ConfigField(secret=True), "tok") is None
    assert masked(ConfigField(), "plain") == "plain"
