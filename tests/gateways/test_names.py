"""Gateway names are unique per project (and among the installation's own gateways), so a project never
learns the names of another project's gateways: creating one with a name another project uses simply
works, and every answer about a name another project uses is the answer about a name nobody uses."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from casemsg.api.webhooks import gateway_for_webhook
from casemsg.core.errors import InputError
from casemsg.gateways import services
from casemsg.gateways.models import Gateway
from tests.conftest import Api

pytestmark = pytest.mark.django_db


def answer(r) -> tuple[int, str, str]:
    body = r.json()["error"]
    return r.status_code, body["code"], body["message"]


def test_another_project_may_use_the_same_name(api: Api, other_api: Api, project, other_project) -> None:
    assert api.post("gateways", {"name": "sms", "type": "sandbox"}).status_code == 201
    r = other_api.post("gateways", {"name": "sms", "type": "sandbox"})
    assert r.status_code == 201, r.content
    assert r.json()["project"] == other_project.slug
    assert Gateway.objects.filter(name="sms").count() == 2
    # the same project twice: refused, naming only that project's own gateway
    code, err, message = answer(other_api.post("gateways", {"name": "sms", "type": "sandbox"}))
    assert (code, err) == (409, "GATEWAY_EXISTS") and "This project already has" in message
    # each lists its own only
    assert [g["project"] for g in api.get("gateways").json()["items"]] == [project.slug]
    assert [g["project"] for g in other_api.get("gateways").json()["items"]] == [other_project.slug]


def test_a_name_another_project_uses_answers_like_a_free_name(api: Api, other_api: Api) -> None:
    assert api.post("gateways", {"name": "alpha-secret-gw", "type": "sandbox"}).status_code == 201
    taken, free = "alpha-secret-gw", "nobody-has-this"
    r_taken = other_api.post("routes", {"prefix": "254", "gateway": taken})
    r_free = other_api.post("routes", {"prefix": "254", "gateway": free})
    assert answer(r_taken)[:2] == answer(r_free)[:2] == (404, "GATEWAY_NOT_FOUND")
    assert answer(r_taken)[2].replace(taken, "X") == answer(r_free)[2].replace(free, "X")
    d_taken, d_free = other_api.delete(f"gateways/{taken}"), other_api.delete(f"gateways/{free}")
    assert answer(d_taken)[:2] == answer(d_free)[:2] == (404, "GATEWAY_NOT_FOUND")
    assert answer(d_taken)[2].replace(taken, "X") == answer(d_free)[2].replace(free, "X")
    assert other_api.post("gateways", {"name": taken, "type": "sandbox"}).status_code == 201  # as any free name
    assert Gateway.objects.filter(name="alpha-secret-gw").count() == 2


def test_installation_names_are_unique_among_themselves_and_may_be_shadowed(api: Api, project) -> None:
    call_command("gateway", "add", "shared", "--type", "sandbox", stdout=StringIO())
    with pytest.raises(CommandError, match="GATEWAY_EXISTS"):
        call_command("gateway", "add", "shared", "--type", "sandbox", stdout=StringIO())
    # a project's own gateway may take an installation gateway's name: for that project, its own wins
    assert api.post("gateways", {"name": "shared", "type": "sandbox"}).status_code == 201
    own = Gateway.objects.get(name="shared", project=project)
    assert services.find_gateway("shared", project) == own
    assert services.find_gateway("shared", None) == Gateway.objects.get(name="shared", project__isnull=True)
    with pytest.raises(InputError) as exc:
        services.add_gateway("shared", "sandbox", project=project)
    assert exc.value.code == "GATEWAY_EXISTS"


def test_webhooks_find_the_gateway_by_its_secret_key(project, other_project) -> None:
    mine = services.add_gateway("sms", "sandbox", project=project)
    theirs = services.add_gateway("sms", "sandbox", project=other_project)
    assert gateway_for_webhook("sms", mine.inbound_key) == mine
    assert gateway_for_webhook("sms", theirs.inbound_key) == theirs
    services.add_gateway("other", "sandbox", project=other_project)
    with pytest.raises(InputError) as exc:
        gateway_for_webhook("other", mine.inbound_key)  # a name with another gateway's key
    assert (exc.value.code, exc.value.status) == ("FORBIDDEN", 403)
    assert services.inbound_url(mine) != services.inbound_url(theirs)
