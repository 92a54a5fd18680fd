"""Project roles: the membership services, and every page's access checks through the test client."""

from __future__ import annotations

import io
import json
import re

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client, RequestFactory
from django.urls import URLPattern, reverse

from casemsg.core import errors
from casemsg.core.errors import InputError
from casemsg.projects import services as projects
from casemsg.projects.models import Membership
from casemsg.web import access
from casemsg.web import urls as web_urls
from casemsg.web.views import common


def make_user(username: str, **extra):
    return get_user_model().objects.create_user(username, password=f"pw-{username}-1", **extra)


# --- services ------------------------------------------------------------------------------------
def test_add_change_and_remove_a_member(project):
    ann = make_user("ann")
    assert projects.role_of(ann, project) is None
    projects.add_member(project, ann, "viewer")
    assert projects.role_of(ann, project) == "viewer"
    projects.add_member(project, ann, "editor")  # a second add changes the role, no second row
    assert projects.role_of(ann, project) == "editor"
    assert Membership.objects.filter(project=project, user=ann).count() == 1
    assert projects.remove_member(project, ann) is True
    assert projects.role_of(ann, project) is None
    assert projects.remove_member(project, ann) is False


def test_unknown_role_is_refused(project):
    with pytest.raises(InputError) as e:
        projects.add_member(project, make_user("ann"), "admin")
    assert e.value.code == errors.INVALID_ROLE


def test_the_last_owner_stays(project):
    ann, bob = make_user("ann"), make_user("bob")
    projects.add_member(project, ann, "owner")
    for change in (lambda: projects.add_member(project, ann, "editor"), lambda: projects.remove_member(project, ann)):
        with pytest.raises(InputError) as e:
            change()
        assert e.value.code == errors.LAST_OWNER
    projects.add_member(project, bob, "owner")
    projects.add_member(project, ann, "viewer")  # bob still owns it
    assert projects.role_of(ann, project) == "viewer"


def test_superuser_owns_every_project_and_staff_alone_gives_nothing(project):
    root = get_user_model().objects.create_superuser("root", password="pw-root-1")
    staff = make_user("staffer", is_staff=True)
    assert projects.role_of(root, project) == "owner"
    assert projects.role_of(staff, project) is None
    assert list(projects.projects_of(root)) == [project]
    assert list(projects.projects_of(staff)) == []


def test_inactive_user_has_no_role(project):
    ann = make_user("ann")
    projects.add_member(project, ann, "owner")
    ann.is_active = False
    ann.save()
    assert projects.role_of(ann, project) is None


def test_find_user_by_username_or_email(db):
    ann = make_user("ann", email="ann@example.org")
    assert projects.find_user("ann") == ann
    assert projects.find_user("ANN@example.org") == ann
    with pytest.raises(InputError) as e:
        projects.find_user("nobody")
    assert e.value.code == errors.USER_NOT_FOUND


# --- pages through the test client ---------------------------------------------------------------
def project_patterns() -> list[tuple[str, str]]:
    """(URL name, URL) of every page under /projects/<slug>/ in casemsg.web.urls, its other parts filled
    with placeholders: the access check runs before the view, so they need not exist."""
    out = []
    for p in web_urls.urlpatterns:
        route = str(p.pattern)
        if "<slug:slug>" not in route or not isinstance(p, URLPattern):
            continue
        kwargs: dict[str, object] = {"slug": "SLUG"}
        for conv, name in re.findall(r"<(?:(\w+):)?(\w+)>", route):
            if name != "slug":
                kwargs[name] = 1 if conv == "int" else "x"
        out.append((p.name or "", reverse(f"web:{p.name}", kwargs=kwargs)))
    return out


def client_for(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


@pytest.fixture
def people(project, other_project):
    made = {role: make_user(role) for role in ("owner", "editor", "viewer")}
    for role, user in made.items():
        projects.add_member(project, user, role)
    projects.add_member(other_project, make_user("theirs"), "owner")
    made["stranger"] = make_user("stranger")
    return made


def test_the_table_names_real_pages_and_every_project_page_is_checked():
    names = {name for name, _ in project_patterns()}
    assert set(access.RULES) <= names, set(access.RULES) - names
    assert {"project", "cases", "messages", "members", "settings", "api_keys"} <= names


def test_anonymous_goes_to_the_login_page_for_every_project_page(client, project):
    for name, url in project_patterns():
        for method in ("get", "post"):
            r = getattr(client, method)(url.replace("SLUG", project.slug))
            assert r.status_code == 302, (name, method, r.status_code)
            assert r["Location"].startswith("/accounts/login/?next="), name


def test_viewer_reads_but_every_write_is_403(project, people):
    viewer = client_for(people["viewer"])
    for name, url in project_patterns():
        url = url.replace("SLUG", project.slug)
        for method in ("post", "put", "patch", "delete"):
            r = getattr(viewer, method)(url, {"name": "x", "text": "x", "action": "add"})
            assert r.status_code == 403, (name, method, r.status_code)
            assert b"You may not do this" in r.content and b"Traceback" not in r.content
    for path in ("", "cases/", "mobile-workers/", "messages/", "members/", "settings/", "gateways/", "routes/"):
        assert viewer.get(f"/projects/{project.slug}/{path}").status_code == 200, path
    assert viewer.get(f"/projects/{project.slug}/api-keys/").status_code == 403  # even the key list


def test_editor_writes_but_not_the_owners_pages(project, people):
    editor = client_for(people["editor"])
    for name, url in project_patterns():
        if access.RULES.get(name, access.DEFAULT)[1] == "owner":
            r = editor.post(url.replace("SLUG", project.slug), {"x": "1"})
            assert r.status_code == 403, name
    r = editor.post(f"/projects/{project.slug}/members/", {"action": "add", "user": "stranger", "role": "owner"})
    assert r.status_code == 403 and projects.role_of(people["stranger"], project) is None


def test_non_member_and_staff_see_no_project(project, people, other_project):
    staff = make_user("staffer", is_staff=True)
    for user in (people["stranger"], staff):
        c = client_for(user)
        for name, url in project_patterns():
            for method in ("get", "post"):
                r = getattr(c, method)(url.replace("SLUG", project.slug))
                assert r.status_code == 404, (name, method, r.status_code)
                assert b"Page not found" in r.content
    # a member of one project cannot see the other: the same 404 as a project that does not exist
    owner = client_for(people["owner"])
    assert owner.get(f"/projects/{other_project.slug}/").status_code == 404
    assert owner.get("/projects/no-such-project/").status_code == 404


def test_home_lists_only_the_users_projects(project, other_project, people):
    html = client_for(people["viewer"]).get("/").content.decode()
    assert f'href="/projects/{project.slug}/"' in html and f"/projects/{other_project.slug}/" not in html
    assert "viewer" in html
    assert f"/projects/{project.slug}/" not in client_for(people["stranger"]).get("/").content.decode()
    root = client_for(get_user_model().objects.create_superuser("root", password="pw-root-1"))
    html = root.get("/").content.decode()
    assert f"/projects/{project.slug}/" in html and f"/projects/{other_project.slug}/" in html
    assert root.post(f"/projects/{other_project.slug}/api-keys/", {"name": "x"}).status_code != 403


def test_templates_hide_what_the_role_cannot_use(project, people):
    viewer_html = client_for(people["viewer"]).get(f"/projects/{project.slug}/members/").content.decode()
    owner_html = client_for(people["owner"]).get(f"/projects/{project.slug}/members/").content.decode()
    assert 'name="action" value="add"' not in viewer_html and "role-viewer" in viewer_html
    assert 'name="action" value="add"' in owner_html and "role-owner" in owner_html


def test_owner_manages_members_on_the_members_page(project, people):
    owner = client_for(people["owner"])
    url = f"/projects/{project.slug}/members/"
    people["stranger"].email = "stranger@example.org"
    people["stranger"].save()
    r = owner.post(url, {"action": "add", "user": "STRANGER@example.org", "role": "editor"})
    assert r.status_code == 302 and projects.role_of(people["stranger"], project) == "editor"
    r = owner.post(url, {"action": "add", "user": "nobody-here", "role": "viewer"})
    assert r.status_code == 422 and errors.USER_NOT_FOUND in r.content.decode()
    r = owner.post(url, {"action": "change", "user_id": people["stranger"].pk, "role": "viewer"})
    assert r.status_code == 302 and projects.role_of(people["stranger"], project) == "viewer"
    r = owner.post(url, {"action": "remove", "user_id": people["stranger"].pk})
    assert projects.role_of(people["stranger"], project) is None
    # the last owner cannot demote themselves: a message, not a 500
    r = owner.post(url, {"action": "change", "user_id": people["owner"].pk, "role": "viewer"}, follow=True)
    assert r.status_code == 200 and errors.LAST_OWNER in r.content.decode()
    assert projects.role_of(people["owner"], project) == "owner"
    # a user of another project cannot be changed through this one
    theirs = get_user_model().objects.get(username="theirs")
    owner.post(url, {"action": "remove", "user_id": theirs.pk})
    assert Membership.objects.filter(user=theirs).count() == 1


# --- login, logout, password, lockout ------------------------------------------------------------
def test_login_logout_and_password_change(project, people):
    c = Client()
    r = c.get(f"/projects/{project.slug}/cases/")
    assert r.status_code == 302
    login_page = c.get(r["Location"])
    assert (
        login_page.status_code == 200 and b'id="login"' in login_page.content and b"/admin/" not in login_page.content
    )
    r = c.post(
        "/accounts/login/",
        {"username": "viewer", "password": "pw-viewer-1", "next": f"/projects/{project.slug}/cases/"},
    )
    assert r.status_code == 302 and r["Location"] == f"/projects/{project.slug}/cases/"
    assert c.get("/accounts/password/").status_code == 200
    r = c.post(
        "/accounts/password/",
        {"old_password": "pw-viewer-1", "new_password1": "a-new-Secret-42", "new_password2": "a-new-Secret-42"},
    )
    assert r.status_code == 302 and r["Location"] == "/accounts/password/done/"
    assert c.get(f"/projects/{project.slug}/").status_code == 200  # still logged in
    assert c.get("/accounts/logout/").status_code == 405  # a link cannot log anyone out
    r = c.post("/accounts/logout/")
    assert r.status_code == 302 and r["Location"] == "/accounts/login/"
    assert c.get(f"/projects/{project.slug}/").status_code == 302
    people["viewer"].refresh_from_db()
    assert people["viewer"].check_password("a-new-Secret-42")


def test_failed_logins_lock_out_with_a_styled_page(people, settings):
    c = Client(REMOTE_ADDR="10.0.0.7")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        r = c.post("/accounts/login/", {"username": "viewer", "password": "wrong"})
        assert r.status_code == 200 and b"Please enter a correct username and password" in r.content
    r = c.post("/accounts/login/", {"username": "viewer", "password": "wrong"})
    assert r.status_code == 429 and b"Too many failed logins" in r.content and b"casemsg.css" in r.content
    # now even the right password is refused, from this address, with the same page
    r = c.post("/accounts/login/", {"username": "viewer", "password": "pw-viewer-1"})
    assert r.status_code == 429 and b"Too many failed logins" in r.content


# --- error pages ---------------------------------------------------------------------------------
def test_404_and_500_pages_are_styled_and_show_no_detail(client, db):
    r = client.get("/no/such/page/")
    assert r.status_code == 404 and b"Page not found" in r.content and b"casemsg.css" in r.content
    r500 = common.server_error(RequestFactory().get("/"))
    assert r500.status_code == 500 and b"Something went wrong" in r500.content and b"Traceback" not in r500.content


def test_a_stale_form_gets_the_styled_403(project, people):
    c = Client(enforce_csrf_checks=True)
    c.force_login(people["owner"])
    r = c.post(f"/projects/{project.slug}/members/", {"action": "add", "user": "stranger", "role": "viewer"})
    assert r.status_code == 403 and b"Reload the page and try again" in r.content and b"casemsg.css" in r.content
    assert projects.role_of(people["stranger"], project) is None


# --- offline: Swagger from casemsg's own static files ---------------------------------------------
def test_api_docs_reference_no_external_url(client, db):
    r = client.get("/api/docs")
    assert r.status_code == 200
    html = r.content.decode()
    assert "/static/ninja/swagger-ui-bundle.js" in html
    assert not re.findall(r"""(?:src|href)=["']?(?:https?:)?//""", html), html
    for asset in ("/static/ninja/swagger-ui-bundle.js", "/static/ninja/swagger-ui.css"):
        assert client.get(asset).status_code == 200, asset


def test_chart_js_4_and_htmx_2_are_vendored(client, db):
    chart = b"".join(client.get("/static/web/chart.umd.min.js").streaming_content)
    assert re.search(rb"Chart\.js v4\.\d+\.\d+", chart[:200])
    htmx = b"".join(client.get("/static/web/htmx.min.js").streaming_content)
    assert re.search(rb'version:"2\.0\.\d+"', htmx)


# --- the CLI -------------------------------------------------------------------------------------
def test_cli_users_add_list_remove(project, monkeypatch):
    monkeypatch.setenv("ANN_PASSWORD", "correct-Horse-9")
    out = io.StringIO()
    call_command(
        "users",
        "add",
        "ann",
        "--project",
        project.slug,
        "--role",
        "editor",
        "--email",
        "ann@example.org",
        "--password-from-env",
        "ANN_PASSWORD",
        stdout=out,
    )
    assert "Created user ann is editor of alpha" in out.getvalue()
    ann = get_user_model().objects.get(username="ann")
    assert ann.check_password("correct-Horse-9") and ann.email == "ann@example.org" and not ann.is_staff
    assert projects.role_of(ann, project) == "editor"
    call_command("users", "add", "ann", "--project", project.slug, "--role", "owner", stdout=io.StringIO())
    assert projects.role_of(ann, project) == "owner" and ann.check_password("correct-Horse-9")
    call_command("users", "add", "bob", "--project", project.slug, "--role", "viewer", stdout=(out := io.StringIO()))
    assert "Set the password with this one-time link" in out.getvalue()
    assert not get_user_model().objects.get(username="bob").has_usable_password()
    listed = io.StringIO()
    call_command("users", "list", "--project", project.slug, "--json", stdout=listed)
    assert json.loads(listed.getvalue()) == [
        {"username": "ann", "email": "ann@example.org", "role": "owner"},
        {"username": "bob", "email": "", "role": "viewer"},
    ]
    # the new account logs in and sees the project
    c = Client()
    assert c.post("/accounts/login/", {"username": "ann", "password": "correct-Horse-9"}).status_code == 302
    assert c.get(f"/projects/{project.slug}/").status_code == 200
    call_command("users", "remove", "bob", "--project", project.slug, stdout=io.StringIO())
    assert projects.role_of(get_user_model().objects.get(username="bob"), project) is None


def test_cli_users_refuses_bad_input(project, monkeypatch):
    monkeypatch.delenv("NO_SUCH_VAR", raising=False)
    with pytest.raises(CommandError, match="NO_SUCH_VAR"):
        call_command(
            "users", "add", "ann", "--project", project.slug, "--role", "viewer", "--password-from-env", "NO_SUCH_VAR"
        )
    with pytest.raises(CommandError, match="No project 'nope'"):
        call_command("users", "add", "ann", "--project", "nope", "--role", "viewer")
    with pytest.raises(CommandError, match="not an email"):
        call_command("users", "add", "ann", "--project", project.slug, "--role", "viewer", "--email", "not-mail")
    with pytest.raises(CommandError, match="cannot be a username"):
        call_command("users", "add", "a b/c", "--project", project.slug, "--role", "viewer")
    with pytest.raises(CommandError):
        call_command("users", "add", "ann", "--project", project.slug, "--role", "admin")
    assert not get_user_model().objects.filter(username="ann").exists()
    projects.add_member(project, make_user("solo"), "owner")
    with pytest.raises(CommandError, match="LAST_OWNER"):
        call_command("users", "add", "solo", "--project", project.slug, "--role", "viewer")
