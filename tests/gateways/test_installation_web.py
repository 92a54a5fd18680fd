"""The Installation pages through Django's test client: staff list, add, edit, remove and test the
installation's own gateways and set its routes (prefix → gateways in order); every change is in the
installation's audit log; anyone else gets 404 and changes nothing."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from casemsg.gateways import queries, services
from casemsg.gateways.models import Gateway, InstallationAuditEntry
from casemsg.messaging.models import Message
from casemsg.messaging.pipeline import MessageSpec, queue
from casemsg.projects.services import add_member
from fakes.gateways import Rule
from tests.web.clients import logged_in

pytestmark = pytest.mark.django_db
KE = "254712345678"


@pytest.fixture
def staff_user(db) -> Client:
    """Staff status alone (no project role): the Installation pages are theirs."""
    return logged_in(get_user_model().objects.create_user("ops", password="pw-ops-12345", is_staff=True))


def errors_of(response) -> dict[str, list[str]]:
    return {k: [str(e) for e in v] for k, v in response.context["form"].errors.items()}


def flashes(response) -> list[str]:
    """The messages the page shows (those of earlier unfollowed redirects too)."""
    return [str(m) for m in response.context["messages"]]


def gw_body(**over: str) -> dict[str, str]:
    return {"name": "tw", "rate_limit": "0", "max_segments": "10", "countries": "", **over}


def routes() -> dict[str, list[str]]:
    return {r.prefix: queries.route_chain(r) for r in queries.routes(None)}


def audit() -> list[tuple[str, str]]:
    return list(InstallationAuditEntry.objects.order_by("id").values_list("subject", "action"))


def urls(gw: Gateway) -> list[str]:
    return [
        "/installation/",
        "/installation/gateways/new/",
        "/installation/gateways/new/?type=twilio",
        f"/installation/gateways/{gw.pk}/",
        "/installation/routes/",
        "/installation/audit/",
    ]


def test_only_staff_see_or_change_anything(editor, project) -> None:
    gw = services.add_gateway("sandbox", "sandbox")
    services.map_prefix("*", "sandbox")
    before = audit()
    # a project member who is not staff (editor) and a superuser-less owner: 404 everywhere, GET and POST
    owner_user = get_user_model().objects.create_user("olga", password="pw-olga-12345")
    add_member(project, owner_user, "owner")
    for client in (editor, logged_in(owner_user)):
        for url in urls(gw):
            assert client.get(url).status_code == 404, url
        posts = {
            "/installation/gateways/new/": gw_body(type="sandbox", name="mine"),
            f"/installation/gateways/{gw.pk}/": gw_body(rate_limit="7"),
            f"/installation/gateways/{gw.pk}/remove/": {"unmap": "1"},
            f"/installation/gateways/{gw.pk}/test/": {"project": project.slug, "to": KE, "text": "x"},
            "/installation/routes/": {"remove": "*"},
        }
        for url, body in posts.items():
            assert client.post(url, body).status_code == 404, url
    # anonymous: the login page, then back
    r = Client().get("/installation/routes/")
    assert r.status_code == 302 and r["Location"].startswith("/accounts/login/?next=/installation/routes/")
    assert Client().post(f"/installation/gateways/{gw.pk}/remove/", {"unmap": "1"}).status_code == 302
    # nothing changed
    assert list(Gateway.objects.values_list("name", "rate_limit")) == [("sandbox", 0)]
    assert routes() == {"*": ["sandbox"]} and audit() == before and not Message.objects.exists()
    # the link is in the top bar for staff only
    assert "/installation/" not in editor.get("/").content.decode()


def test_staff_list_shows_type_status_routes_and_circuits(staff_user, admin, project) -> None:
    services.add_gateway("main", "sandbox")
    services.add_gateway("backup", "sandbox", rate_limit=5)
    services.add_gateway("own", "sandbox", project=project)  # a project's: not the installation's
    services.map_prefix("*", "main", then=["backup"])
    services.map_prefix("254", "backup")
    services.set_enabled("backup", None, False)
    for client in (staff_user, admin):
        r = client.get("/installation/")
        assert r.status_code == 200
        page = r.content.decode()
        assert 'data-gateway="main"' in page and 'data-gateway="backup"' in page and 'data-gateway="own"' not in page
        rows = {g.name: g for g in r.context["gateways"]}
        assert rows["main"].prefixes == ["*"] and rows["backup"].prefixes == ["* (#2)", "254"]
        assert rows["main"].circuit_state == "closed" and rows["backup"].circuit_state == "disabled"
        assert "Sandbox" in page and "5/s" in page
        assert 'href="/installation/"' in client.get("/").content.decode()  # the top bar's link


def test_add_edit_with_write_only_secrets_and_audit(staff_user, settings) -> None:
    page = staff_user.get("/installation/gateways/new/").content.decode()
    assert 'data-type="twilio"' in page and 'data-type="http"' in page
    form = staff_user.get("/installation/gateways/new/?type=twilio").content.decode()
    for key in ("account_sid", "auth_token", "from_number", "opt_out_keywords"):
        assert f'name="cfg_{key}"' in form
    assert 'type="password" name="cfg_auth_token"' in form

    body = gw_body(
        type="twilio",
        cfg_account_sid="AC123",
        cfg_auth_token="s3cret-token",
        cfg_from_number="+15550001111",
        countries="us ca",
    )
    r = staff_user.post("/installation/gateways/new/", body)
    assert r.status_code == 302, errors_of(r)
    gw = Gateway.objects.get(name="tw")
    assert gw.project_id is None and gw.type == "twilio" and gw.countries == ["US", "CA"]
    assert r["Location"] == f"/installation/gateways/{gw.pk}/"
    page = staff_user.get(r["Location"]).content.decode()
    assert "s3cret-token" not in page and "AC123" in page and gw.inbound_key in page

    # the same name again: a form error; a URL to an internal address: the netguard sentence on its field
    r = staff_user.post("/installation/gateways/new/", body)
    assert "The installation already has a gateway named 'tw'" in errors_of(r)["name"][0]
    settings.CASEMSG_GATEWAY_ALLOW_PRIVATE = False
    r = staff_user.post(
        "/installation/gateways/new/", gw_body(type="http", name="agg", cfg_url="http://127.0.0.1:6379/")
    )
    assert r.status_code == 200 and "127.0.0.1" in errors_of(r)["cfg_url"][0]
    r = staff_user.post("/installation/gateways/new/", gw_body(type="http", name="bad name", cfg_url=""))
    assert set(errors_of(r)) == {"cfg_url"}
    r = staff_user.post(
        "/installation/gateways/new/", gw_body(type="http", name="bad name", cfg_url="https://93.184.216.34/")
    )
    assert "letters, digits" in errors_of(r)["name"][0]
    assert Gateway.objects.count() == 1

    # edit: a blank secret keeps the stored one; a new one replaces it
    edit = {k: v for k, v in body.items() if k not in ("cfg_auth_token", "name", "type")}
    r = staff_user.post(f"/installation/gateways/{gw.pk}/", {**edit, "rate_limit": "9"})
    assert r.status_code == 302, errors_of(r)
    gw.refresh_from_db()
    assert (gw.rate_limit, gw.config["auth_token"]) == (9, "s3cret-token")
    r = staff_user.post(f"/installation/gateways/{gw.pk}/", {**edit, "rate_limit": "9", "cfg_auth_token": "new-token"})
    gw.refresh_from_db()
    assert gw.config["auth_token"] == "new-token"  # a secret alone changed: still an entry
    r = staff_user.post(f"/installation/gateways/{gw.pk}/", {**edit, "countries": "XX"})
    assert "XX" in errors_of(r)["countries"][0]

    # the audit log: added, changed twice (the rate limit, then the secret alone: recorded as changed, never
    # its value)
    entries = list(InstallationAuditEntry.objects.order_by("id"))
    assert [(e.subject, e.action, e.source, e.who) for e in entries] == [
        ("gateway tw", "added", "page", "user ops"),
        ("gateway tw", "changed", "page", "user ops"),
        ("gateway tw", "changed", "page", "user ops"),
    ]
    assert entries[1].before["rate_limit"] == 0 and entries[1].after["rate_limit"] == 9
    assert entries[0].after["config"]["auth_token"] == "<secret>"
    assert entries[2].before["config"]["auth_token"] == "<secret>"
    assert entries[2].after["config"]["auth_token"] == "<secret: changed>"
    assert entries[2].before["rate_limit"] == entries[2].after["rate_limit"] == 9
    dumped = json.dumps([[e.before, e.after] for e in entries])
    assert "s3cret-token" not in dumped and "new-token" not in dumped
    log = staff_user.get("/installation/audit/").content.decode()
    assert 'data-subject="gateway tw" data-action="added"' in log and "s3cret-token" not in log


def test_a_project_gateway_is_not_an_installation_page(staff_user, project) -> None:
    own = services.add_gateway("own", "sandbox", project=project)
    assert staff_user.get(f"/installation/gateways/{own.pk}/").status_code == 404
    assert staff_user.post(f"/installation/gateways/{own.pk}/remove/", {"unmap": "1"}).status_code == 404
    assert Gateway.objects.filter(pk=own.pk).exists()


def test_remove_refused_while_in_use_then_with_unmap(staff_user, project) -> None:
    main = services.add_gateway("main", "sandbox")
    services.add_gateway("backup", "sandbox")
    services.map_prefix("*", "main", then=["backup"])
    (waiting,) = queue(project, [MessageSpec(to=KE, text="waiting", gateway=main)], None)
    assert waiting.status == Message.QUEUED
    page = staff_user.get(f"/installation/gateways/{main.pk}/").content.decode()
    assert "the installation&#x27;s route * (main → backup)" in page and "1 message waiting to be sent" in page

    r = staff_user.post(f"/installation/gateways/{main.pk}/remove/", follow=True)
    (said,) = flashes(r)
    assert "Gateway 'main' is still used by the installation's route * (main → backup)" in said
    assert "1 message waiting to be sent" in said
    assert Gateway.objects.filter(pk=main.pk).exists() and routes() == {"*": ["main", "backup"]}

    r = staff_user.post(f"/installation/gateways/{main.pk}/remove/", {"unmap": "1"}, follow=True)
    assert r.redirect_chain[-1][0] == "/installation/"
    (said,) = flashes(r)
    assert said.startswith("Gateway main removed. It was taken out of the installation's route *")
    assert not Gateway.objects.filter(name="main").exists() and routes() == {"*": ["backup"]}
    waiting.refresh_from_db()
    assert waiting.gateway_id is None and waiting.status == Message.QUEUED  # routed again when it is sent
    assert audit()[-2:] == [("route *", "changed"), ("gateway main", "removed")]
    # an unused gateway goes at once
    unused = services.add_gateway("unused", "sandbox")
    assert staff_user.post(f"/installation/gateways/{unused.pk}/remove/").status_code == 302
    assert not Gateway.objects.filter(name="unused").exists()


def test_send_a_test_message_through_an_installation_gateway(staff_user, project, other_project, fake_http) -> None:
    gw = services.add_gateway("agg", "http", fake_http.gateway_config())
    url = f"/installation/gateways/{gw.pk}/test/"
    form = staff_user.get(f"/installation/gateways/{gw.pk}/").content.decode()
    assert f'value="{project.slug}"' in form and f'value="{other_project.slug}"' in form

    r = staff_user.post(url, {"project": other_project.slug, "to": "+254 712 345 678", "text": "Hi {x}"})
    assert r.status_code == 200
    page = r.content.decode()
    assert 'id="test-outcome" data-status="sent"' in page
    (got,) = fake_http.requests()
    assert (got.to, got.text) == (KE, "Hi {x}")
    msg = Message.objects.get(direction=Message.OUT)
    assert (msg.project_id, msg.gateway_id, msg.status) == (other_project.pk, gw.pk, "sent")
    assert msg.provider_id in page

    # a bad number, an unknown project: form errors, nothing sent; a provider's refusal is shown with its code
    r = staff_user.post(url, {"project": project.slug, "to": "12345", "text": "x"})
    assert "to" in r.context["test_form"].errors
    r = staff_user.post(url, {"project": "nope", "to": KE, "text": "x"})
    assert "project" in r.context["test_form"].errors
    assert Message.objects.count() == 1
    fake_http.add_rule(Rule(status=400, error="nope"))
    r = staff_user.post(url, {"project": project.slug, "to": KE, "text": "x"})
    assert 'data-status="failed"' in r.content.decode() and "GATEWAY_ERROR" in r.content.decode()
    assert staff_user.get(url).status_code == 405


def test_routes_map_with_failover_replace_take_out_and_remove(staff_user, project) -> None:
    for name in ("main", "backup", "spare"):
        services.add_gateway(name, "sandbox")
    services.add_gateway("own", "sandbox", project=project)
    url = "/installation/routes/"
    page = staff_user.get(url).content.decode()
    assert 'value="main"' in page and 'value="own"' not in page  # the installation's gateways only

    r = staff_user.post(url, {"route_prefix": "+1", "gateway": "main", "then_1": "backup", "then_2": "spare"})
    assert r.status_code == 302
    assert routes() == {"1": ["main", "backup", "spare"]}
    page = staff_user.get(url).content.decode()
    assert 'data-prefix="1"' in page and "main" in page
    # the same route as the CLI writes: `gateway list` prints it
    r = staff_user.post(url, {"route_prefix": "*", "gateway": "spare"})
    assert routes() == {"1": ["main", "backup", "spare"], "*": ["spare"]}
    r = staff_user.post(url, {"route_prefix": "1", "gateway": "backup"})  # replaces
    assert routes()["1"] == ["backup"]
    r = staff_user.post(url, {"route_prefix": "1", "gateway": "main", "then_1": "backup"}, follow=True)
    assert flashes(r)[-1] == "Numbers starting 1 now go through main → backup."

    # take one gateway out; then remove a whole route
    r = staff_user.post(url, {"remove": "1", "gateway_name": "main"}, follow=True)
    assert flashes(r) == ["Gateway main taken out of route 1: now backup."]
    assert routes()["1"] == ["backup"]
    r = staff_user.post(url, {"remove": "1"}, follow=True)
    assert flashes(r) == ["Route 1 removed."] and routes() == {"*": ["spare"]}
    r = staff_user.post(url, {"remove": "44"}, follow=True)
    assert flashes(r) == ["There was no route 44."]
    r = staff_user.post(url, {"remove": "*", "gateway_name": "main"}, follow=True)
    assert flashes(r) == ["Route * does not list gateway 'main' (spare)."]

    # bad input: form errors, nothing changed
    for body, field in (
        ({"route_prefix": "abc", "gateway": "main"}, "route_prefix"),
        ({"route_prefix": "254", "gateway": "own"}, "gateway"),
        ({"route_prefix": "254", "gateway": "main", "then_1": "main"}, "__all__"),
    ):
        r = staff_user.post(url, body)
        assert r.status_code == 200 and field in errors_of(r), errors_of(r)
    assert routes() == {"*": ["spare"]}
    assert [e for e in audit() if e[0].startswith("route")] == [
        ("route 1", "added"),
        ("route *", "added"),
        ("route 1", "changed"),
        ("route 1", "changed"),
        ("route 1", "changed"),
        ("route 1", "removed"),
    ]
    log = staff_user.get("/installation/audit/").content.decode()
    assert log.count('data-subject="route 1"') == 5 and "user ops" in log


def test_disable_and_enable_from_the_gateway_page(staff_user, editor) -> None:
    gw = services.add_gateway("main", "sandbox")
    url = f"/installation/gateways/{gw.pk}/"
    assert editor.post(url, {"switch": "disable"}).status_code == 404
    assert queries.circuits([gw])[gw.pk] == "closed"
    r = staff_user.post(url, {"switch": "disable"}, follow=True)
    assert flashes(r) == ["Gateway main disabled."] and 'id="enable"' in r.content.decode()
    assert queries.circuits([gw])[gw.pk] == "disabled"
    r = staff_user.post(url, {"switch": "enable"}, follow=True)
    assert queries.circuits([gw])[gw.pk] == "closed" and 'id="disable"' in r.content.decode()
    assert audit() == [("gateway main", "added"), ("gateway main", "disabled"), ("gateway main", "enabled")]


def test_the_audit_log_never_holds_a_header_value_but_says_it_changed() -> None:
    config = {"url": "https://93.184.216.34/send", "headers": {"X-Key": "first-value", "X-Plain": "{to}"}}
    gw = services.add_gateway("agg", "http", config)
    services.update_gateway(gw, {**config, "headers": {"X-Key": "second-value", "X-Plain": "{to}"}}, 0, [], 10)
    added, changed = InstallationAuditEntry.objects.order_by("id")
    assert changed.before["config"]["headers"] == {"X-Key": "<hidden>", "X-Plain": "{to}"}
    assert changed.after["config"]["headers"] == {"X-Key": "<secret: changed>", "X-Plain": "{to}"}
    assert "-value" not in json.dumps([added.after, changed.before, changed.after])
