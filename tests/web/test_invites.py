"""Members from the web: an owner invites someone by email with a one-time link (shown on the page and
emailed through the email backend); the link lets them choose a username and password and join, once, for 7
days. A forgotten password is reset by email; an administrator makes a member's one-time password link;
`casemsg users add` never makes an account without a password or a link that sets one. django-axes still
throttles the login page."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from casemsg.core import errors
from casemsg.projects import services as projects
from casemsg.projects.models import Invitation
from tests.web.clients import logged_in

pytestmark = pytest.mark.django_db
LINK = re.compile(r"https?://[^\s<\"]+/accounts/invitation/[\w-]+/")
RESET = re.compile(r"https?://[^\s<\"]+/accounts/reset/[\w-]+/[\w-]+/")
GOOD = "correct-Horse-9-battery"


def members_url(project) -> str:
    return f"/projects/{project.slug}/members/"


@pytest.fixture
def owner_client(project) -> Client:
    """An owner of the project who is no administrator."""
    user = get_user_model().objects.create_user("olga", "olga@example.org", "pw-olga-1")
    projects.add_member(project, user, "owner")
    return logged_in(user)


def invite(client: Client, project, email: str = "amina@example.org", role: str = "editor") -> str:
    r = client.post(members_url(project), {"action": "invite", "email": email, "role": role})
    assert r.status_code == 200, r.content.decode()[:3000]
    page = r.content.decode()
    (link,) = set(LINK.findall(page))
    assert "no-store" in r["Cache-Control"] or "max-age=0" in r["Cache-Control"]
    return link


def test_the_whole_invitation(project, owner_client) -> None:
    link = invite(owner_client, project)
    # emailed through the backend, with the same link
    (email,) = mail.outbox
    assert email.to == ["amina@example.org"] and LINK.findall(email.body) == [link]
    assert "as editor" in email.body and "works once" in email.body
    # listed as waiting; the token itself is not stored
    assert "amina@example.org — editor" in owner_client.get(members_url(project)).content.decode()
    token = link.rstrip("/").rsplit("/", 1)[1]
    assert not Invitation.objects.filter(token_hash=token).exists()

    guest = Client()
    path = link.split("testserver", 1)[1]
    page = guest.get(path)
    assert page.status_code == 200 and "Join Alpha program" in page.content.decode()
    assert page.context["form"].initial["username"] == "amina"
    # two different passwords, a weak one, a username taken: refused, nothing made
    r = guest.post(path, {"username": "amina", "password1": GOOD, "password2": GOOD + "x"})
    assert r.status_code == 422 and "The two passwords differ." in r.content.decode()
    r = guest.post(path, {"username": "amina", "password1": "123", "password2": "123"})
    assert r.status_code == 422 and "too short" in r.content.decode()
    r = guest.post(path, {"username": "olga", "password1": GOOD, "password2": GOOD})
    assert r.status_code == 422 and "taken" in r.content.decode()
    assert not get_user_model().objects.filter(username="amina").exists()

    r = guest.post(path, {"username": "amina", "password1": GOOD, "password2": GOOD})
    assert r.status_code == 302 and r["Location"] == f"/projects/{project.slug}/"
    amina = get_user_model().objects.get(username="amina")
    assert amina.email == "amina@example.org" and amina.check_password(GOOD)
    assert projects.role_of(amina, project) == "editor"
    assert guest.get(f"/projects/{project.slug}/").status_code == 200  # logged in
    # the link works once
    again = Client().get(path)
    assert again.status_code == 410 and errors.INVITATION_USED in again.content.decode()
    assert "log in instead" in again.content.decode()
    r = Client().post(path, {"username": "other", "password1": GOOD, "password2": GOOD})
    assert r.status_code == 410 and not get_user_model().objects.filter(username="other").exists()
    assert "amina@example.org — editor" not in owner_client.get(members_url(project)).content.decode()
    # and she logs in with it
    c = Client()
    assert c.post("/accounts/login/", {"username": "amina", "password": GOOD}).status_code == 302


def test_expired_and_unknown_links_are_refused(project, owner_client) -> None:
    link = invite(owner_client, project, "late@example.org")
    Invitation.objects.update(expires_on=timezone.now() - timedelta(minutes=1))
    r = Client().get(link.split("testserver", 1)[1])
    assert r.status_code == 410 and errors.INVITATION_EXPIRED in r.content.decode()
    assert "ask the project&#x27;s owner for a new one" in r.content.decode()
    r = Client().get("/accounts/invitation/not-a-real-token/")
    assert r.status_code == 404 and errors.INVITATION_NOT_FOUND in r.content.decode()


def test_who_may_invite_and_what(project, owner_client, viewer) -> None:
    assert (
        viewer.post(members_url(project), {"action": "invite", "email": "x@example.org", "role": "viewer"}).status_code
        == 403
    )
    assert not Invitation.objects.exists()
    r = owner_client.post(members_url(project), {"action": "invite", "email": "not-mail", "role": "viewer"})
    assert r.status_code == 422
    r = owner_client.post(members_url(project), {"action": "invite", "email": "olga@example.org", "role": "viewer"})
    assert r.status_code == 422 and "exists already" in r.content.decode()
    assert not Invitation.objects.exists() and mail.outbox == []


def test_the_email_backend_failing_still_shows_the_link(project, owner_client, settings) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 2  # nothing listens
    link = invite(owner_client, project, "offline@example.org")
    page = owner_client.get(members_url(project))
    assert link and "offline@example.org" in page.content.decode()


def test_forgot_password_by_email(project) -> None:
    user = get_user_model().objects.create_user("ann", "ann@example.org", "old-Password-1")
    projects.add_member(project, user, "viewer")
    assert "Forgot your password?" in Client().get("/accounts/login/").content.decode()
    c = Client()
    r = c.post("/accounts/password/reset/", {"email": "ann@example.org"})
    assert r.status_code == 302
    # the same answer for an address no account has (no one learns who has an account)
    assert Client().post("/accounts/password/reset/", {"email": "nobody@example.org"}).status_code == 302
    (email,) = mail.outbox
    (link,) = RESET.findall(email.body)
    path = link.split("testserver", 1)[1]
    form = c.get(path, follow=True)
    assert form.status_code == 200 and form.context["validlink"]
    set_url = form.redirect_chain[-1][0]
    r = c.post(set_url, {"new_password1": GOOD, "new_password2": GOOD})
    assert r.status_code == 302 and r["Location"] == "/accounts/reset/done/"
    user.refresh_from_db()
    assert user.check_password(GOOD)
    used = Client().get(path, follow=True)
    assert not used.context["validlink"] and "cannot be used" in used.content.decode()


def test_an_administrators_reset_link(project, admin, owner_client) -> None:
    member = get_user_model().objects.create_user("ben", "ben@example.org", "old-Password-1")
    projects.add_member(project, member, "viewer")
    # a project owner may not: the account may reach other projects
    r = owner_client.post(members_url(project), {"action": "reset_link", "user_id": member.pk})
    assert r.status_code == 403
    assert "Reset link" not in owner_client.get(members_url(project)).content.decode()
    page = admin.get(members_url(project)).content.decode()
    assert 'aria-label="Password link for ben"' in page
    r = admin.post(members_url(project), {"action": "reset_link", "user_id": member.pk})
    assert r.status_code == 200
    (link,) = set(RESET.findall(r.content.decode()))
    c = Client()
    form = c.get(link.split("testserver", 1)[1], follow=True)
    assert form.context["validlink"]
    c.post(form.redirect_chain[-1][0], {"new_password1": GOOD, "new_password2": GOOD})
    member.refresh_from_db()
    assert member.check_password(GOOD)
    assert admin.post(members_url(project), {"action": "reset_link", "user_id": "x"}).status_code == 302


def test_login_throttling_stays(project) -> None:
    user = get_user_model().objects.create_user("cat", "cat@example.org", "old-Password-1")
    projects.add_member(project, user, "viewer")
    c = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        c.post("/accounts/login/", {"username": "cat", "password": "wrong"})
    r = c.post("/accounts/login/", {"username": "cat", "password": "old-Password-1"})
    assert "Too many failed logins" in r.content.decode()
    # a new password from a reset link does not lift the lock either
    uid, token = projects.password_token(user)
    form = c.get(f"/accounts/reset/{uid}/{token}/", follow=True)
    c.post(form.redirect_chain[-1][0], {"new_password1": GOOD, "new_password2": GOOD})
    r = c.post("/accounts/login/", {"username": "cat", "password": GOOD})
    assert "Too many failed logins" in r.content.decode()


def test_cli_users_add_needs_a_password_or_a_link(project, monkeypatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(GOOD + "\n"))
    out = io.StringIO()
    call_command("users", "add", "dan", "--project", project.slug, "--role", "viewer", "--password-stdin", stdout=out)
    assert get_user_model().objects.get(username="dan").check_password(GOOD)
    assert "link" not in out.getvalue()
    # no terminal and no password: a one-time link, never an account nobody can open
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    out = io.StringIO()
    call_command(
        "users",
        "add",
        "eve",
        "--project",
        project.slug,
        "--role",
        "viewer",
        "--url",
        "https://sms.example.org/",
        stdout=out,
    )
    (link,) = RESET.findall(out.getvalue())
    assert link.startswith("https://sms.example.org/accounts/reset/")
    c = Client()
    form = c.get(link.split("sms.example.org", 1)[1], follow=True)
    c.post(form.redirect_chain[-1][0], {"new_password1": GOOD, "new_password2": GOOD})
    assert get_user_model().objects.get(username="eve").check_password(GOOD)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    with pytest.raises(CommandError, match="No password on stdin"):
        call_command("users", "add", "fay", "--project", project.slug, "--role", "viewer", "--password-stdin")
    assert not get_user_model().objects.filter(username="fay").exists()
