"""Accepting an invitation in a real Chromium, on a phone's screen: the link's page (every field labelled,
no sideways scroll, nothing the Content-Security-Policy refuses), the password chosen, the project opened."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from casemsg.projects import services as projects
from casemsg.projects.services import create_project
from tests.web.browser import (
    CHROMIUM_MISSING,
    PHONE,
    assert_every_field_labelled,
    assert_no_overflow,
    browser_session,
    new_page,
    watch_csp_violations,
)

pytestmark = CHROMIUM_MISSING
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')")
PASSWORD = "correct-Horse-9-battery"


@pytest.mark.django_db(transaction=True)
def test_accept_an_invitation_in_a_browser(live_server) -> None:
    project, _key = create_project("clinic", "Clinic program", "Africa/Nairobi")
    _row, token = projects.invite(project, "amina@example.org", "editor", None)
    with browser_session() as browser:
        page = new_page(browser, PHONE)
        violations = watch_csp_violations(page)
        page.goto(f"{live_server.url}/accounts/invitation/{token}/")
        assert "Join Clinic program" in page.inner_text("h1")
        assert_every_field_labelled(page)
        assert_no_overflow(page)
        assert page.input_value("#id_username") == "amina"
        page.fill("#id_password1", PASSWORD)
        page.fill("#id_password2", PASSWORD)
        page.click("#join")
        page.wait_for_url(f"{live_server.url}/projects/clinic/")
        assert "Welcome, amina: you are editor of Clinic program." in page.inner_text("main")
        # the link works no more
        page.goto(f"{live_server.url}/accounts/invitation/{token}/")
        assert "INVITATION_USED" in page.inner_text("#refused")
        assert violations == []
    amina = get_user_model().objects.get(username="amina")
    assert amina.check_password(PASSWORD) and projects.role_of(amina, project) == "editor"
