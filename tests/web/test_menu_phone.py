"""The project menu in Debian's Chromium: at 390 px it folds behind a "Menu" button (a checkbox and its label,
no script) and, opened, shows every section with nothing wider than the screen; at 1280 px every section
shows without a click and the button does not."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from casemsg.projects.services import add_member, create_project
from tests.web.browser import (
    CHROMIUM_MISSING,
    DESKTOP,
    PHONE,
    browser_session,
    csp_events,
    login,
    new_page,
    overflow,
    watch_csp_violations,
)

pytestmark = [CHROMIUM_MISSING, pytest.mark.django_db(transaction=True)]
pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')")

LINKS = "nav.project .sections a"


def _visible_inside(page, width: int) -> list[tuple[str, bool, float]]:
    """(text, visible, right edge) of every section link."""
    return page.evaluate(
        """(sel) => [...document.querySelectorAll(sel)].map(a => {
             const r = a.getBoundingClientRect();
             const shown = r.width > 0 && r.height > 0 && getComputedStyle(a).visibility !== 'hidden';
             return [a.textContent.trim(), shown, r.right];
           })""",
        LINKS,
    )


def test_the_menu_collapses_at_390_and_opens_to_every_section(live_server):
    # Every ORM call before Playwright starts: its sync API runs an event loop in this thread.
    project, _key = create_project(
        "menu", "A project whose name is rather long for a phone", time_zone="Africa/Nairobi"
    )
    user = get_user_model().objects.create_user("mo", password="pw-mo-1")
    add_member(project, user, "owner")  # an owner sees every section, API keys included
    with browser_session() as browser:
        page = new_page(browser, PHONE)
        csp = watch_csp_violations(page)
        login(page, live_server, "mo", "pw-mo-1")
        page.goto(f"{live_server.url}/projects/menu/")
        page.wait_for_load_state("load")
        assert page.is_visible("nav.project label.menu-button")
        links = _visible_inside(page, PHONE["width"])
        assert len(links) >= 15 and not any(v for _t, v, _r in links)  # folded: no strip cut at "Mo…"
        assert overflow(page)[0] <= PHONE["width"]

        page.click("nav.project label.menu-button")
        links = _visible_inside(page, PHONE["width"])
        hidden = [t for t, v, r in links if not v or r > PHONE["width"]]
        assert hidden == [], f"sections not reachable once the menu is open: {hidden}"
        assert {"Overview", "Messages", "Members", "Settings", "Inbox"} <= {t for t, _v, _r in links}
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

        page.click(f"{LINKS} >> text=Members")  # a section opens from the menu
        page.wait_for_url("**/projects/menu/members/")
        assert not page.is_visible(f"{LINKS} >> text=Messages")  # a new page starts folded
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

        page.set_viewport_size(DESKTOP)
        assert not page.is_visible("nav.project label.menu-button")
        links = _visible_inside(page, DESKTOP["width"])
        assert all(v and r <= DESKTOP["width"] for _t, v, r in links), links
        assert csp == [] and csp_events(page) == []
