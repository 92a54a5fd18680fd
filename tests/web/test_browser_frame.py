"""Every project page in Debian's Chromium at 1280×800 and 390×844: nothing is fetched from outside
127.0.0.1, no page scrolls sideways, every field has a label, the browser reports no Content-Security-Policy
violation, the dashboard draws its charts; and a viewer can change nothing and cannot see another project.
Set CASEMSG_SCREENSHOTS=/some/dir to keep screenshots."""

from __future__ import annotations

import json
import os
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from casemsg.cases import services as cases
from casemsg.cases.models import Case
from casemsg.consent.models import ConsentRecord
from casemsg.events import services as events
from casemsg.events.models import MESSAGE_STATUS
from casemsg.gateways import services as gateways
from casemsg.gateways.models import Gateway, GatewayRoute
from casemsg.groups import services as groups
from casemsg.inbound import services as inbound
from casemsg.inbound.models import Keyword
from casemsg.inbound.services import KeywordFields
from casemsg.messaging.models import Message
from casemsg.projects.models import ApiKey, Membership, Project
from casemsg.projects.services import add_member, create_project
from casemsg.scheduling import services as scheduling
from casemsg.scheduling.models import Broadcast, ConditionalAlert
from casemsg.sources import services as sources
from casemsg.sources.push import sign
from casemsg.sources.receive import receive
from casemsg.surveys import services as surveys
from casemsg.workers import services as workers
from casemsg.workers.models import MobileWorker
from tests.surveys.test_sessions import anc
from tests.web.browser import (
    CHROMIUM_MISSING,
    VIEWPORTS,
    assert_no_overflow,
    browser_session,
    csp_events,
    discover_pages,
    login,
    new_page,
    unlabelled_fields,
    watch_csp_violations,
    watch_external_requests,
)

pytestmark = [CHROMIUM_MISSING, pytest.mark.django_db(transaction=True)]
pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')")

KE = "254712345678"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"  # a download, as a CSV is
LONG = "x" * 140  # a long unbroken word, as pasted ids and URLs are: it must not widen the page


def seed() -> tuple[Project, Project]:
    """A project with one of everything its pages list (every page then has something to show), and
    another project the viewer must never see."""
    project, _key = create_project("frame", "Frame test")
    other, _key = create_project("secret-project", "Secret project")
    gateways.add_gateway("sandbox", "sandbox")
    gateways.map_prefix("*", "sandbox")
    gateways.add_gateway("frame-gw", "sandbox", project=project)
    props = {"contact_phone_number": KE, "time_zone": "Africa/Nairobi", "note": LONG, "status": "due"}
    cases.create_case(
        project, cases.CaseChange(case_id="ke-1", case_type="mother", name="Asha Njeri", properties=props)
    )
    cases.create_case(
        project,
        cases.CaseChange(case_id="bad-1", case_type="mother", name="Bad", properties={"contact_phone_number": "1-206"}),
    )
    cases.create_case(other, cases.CaseChange(case_id="hidden-1", case_type="mother", name="Hidden Person"))
    workers.create_worker(
        project, workers.WorkerChange(username="fw1", name="Field Worker", phone_numbers=["254722000001"])
    )
    case = Case.objects.get(project=project, case_id="ke-1")
    now = timezone.now()
    Message.objects.bulk_create(
        [
            Message(project=project, case=case, to=KE, text="Hello Asha", status=Message.DELIVERED, created_on=now),
            Message(
                project=project,
                case=case,
                to=KE,
                text=f"Failed {LONG}",
                status=Message.FAILED,
                error="NO_CONSENT",
                created_on=now - timedelta(days=3),
            ),
            Message(project=project, case=case, to=KE, text="Queued", status=Message.QUEUED, created_on=now),
            Message(
                project=project, direction=Message.IN, to=KE, text="HELLO", status=Message.RECEIVED, created_on=now
            ),
        ]
    )
    ConsentRecord.objects.create(
        phone_number=KE, project=project, case=case, kind="consent", source="page", created_on=now
    )
    scheduling.create_broadcast(
        project,
        {
            "name": "Clinic day",
            "content": {"text": "Hello {case.name}"},
            "recipients": {"case_type": "mother"},
            "schedule": {"type": "once", "date": (now + timedelta(days=3)).date().isoformat(), "time": "09:00"},
        },
    )
    scheduling.create_alert(
        project,
        {
            "name": "Due soon",
            "case_type": "mother",
            "criteria": [{"property": "status", "operator": "equal", "value": "due"}],
            "content": {"text": "Your visit, {case.name}"},
            "recipients": ["case"],
            "schedule": {"type": "offsets", "unit": "days", "offsets": [1]},
        },
    )
    surveys.create_survey(project, anc())
    groups.create_group(
        project,
        {
            "name": "North mothers",
            "kind": "dynamic",
            "case_type": "mother",
            "conditions": [{"property": "district", "operator": "equals", "value": "North"}],
        },
    )
    inbound.create_keyword(project, KeywordFields(keyword="HELLO", reply={"en": "Hi {case.name}"}))
    ApiKey.issue(project, "frame key")
    events.create_endpoint(project, "http://127.0.0.1:9/hook", [MESSAGE_STATUS], "frame hook")
    # a case source with a run (its system's post): its page, its runs, a run's log, the export import
    secret = "frame-signing-secret-0123"
    crm = sources.add_source(project, "crm", "push", {"signing_secret": secret}, case_type="mother")
    post = json.dumps({"cases": [{"case_id": "crm-1", "name": "From the CRM"}]}).encode()
    receive(crm.receive_key, post, {"X-Casemsg-Signature": sign(secret, int(time.time()), post)})
    User = get_user_model()
    add_member(project, User.objects.create_user("owner", password="pw-owner-1"), Membership.OWNER)
    add_member(project, User.objects.create_user("viewer", password="pw-viewer-1"), Membership.VIEWER)
    add_member(other, User.objects.create_user("other-owner", password="pw-other-1"), Membership.OWNER)
    return project, other


def snapshot() -> dict[str, object]:
    """Row counts, and the rows a form would edit, that any change made through a page would move."""
    models = [Case, MobileWorker, Message, ConsentRecord, Gateway, GatewayRoute, Keyword, Broadcast, ConditionalAlert]
    state: dict[str, object] = {m.__name__: m.objects.count() for m in models}
    state["members"] = sorted(Membership.objects.values_list("user_id", "role"))
    state["live keys"] = ApiKey.objects.filter(revoked=False).count()
    state["cases"] = sorted(map(repr, Case.objects.values_list("case_id", "name", "closed", "properties")))
    state["statuses"] = sorted(Message.objects.values_list("pk", "status"))
    state["project"] = repr(Project.objects.values().order_by("pk")[:10])
    return state


def test_every_page_offline_on_a_laptop_and_a_phone_and_a_viewer_changes_nothing(live_server):
    project, other = seed()
    owner = Client()
    owner.force_login(get_user_model().objects.get(username="owner"))
    pages, rest = discover_pages(owner, project.slug, {"case_id": "ke-1"})
    problems = {
        name: why for name, why in rest.items() if why not in ("POST only", "redirect", "fragment", "text/csv", XLSX)
    }
    assert not problems, f"project pages the test cannot open: {problems}"
    assert {"project", "cases", "case", "messages", "members", "settings", "gateways", "api_keys"} <= set(pages)
    before = snapshot()
    other_urls = [u.replace(f"/projects/{project.slug}/", f"/projects/{other.slug}/") for u in pages.values()]
    shots = os.environ.get("CASEMSG_SCREENSHOTS", "")

    overflow: list[str] = []
    violations: list[str] = []  # Content-Security-Policy: every page runs and styles only casemsg's own files
    unlabelled: dict[str, list[str]] = {}
    viewer_writes: list[str] = []
    with browser_session() as browser:
        for size_name, viewport in VIEWPORTS.items():
            page = new_page(browser, viewport)
            outside = watch_external_requests(page)
            reported = watch_csp_violations(page)
            login(page, live_server, "owner", "pw-owner-1")
            for name, url in pages.items():
                # "load", not "networkidle": the page, its styles and scripts are in; networkidle waited half a
                # second more on every page (and longer where htmx polls), a third of the suite's browser time
                page.goto(live_server.url + url, wait_until="load")
                assert page.title() and "Page not found" not in page.content(), url
                violations += csp_events(page)
                try:
                    assert_no_overflow(page)
                except AssertionError as e:
                    overflow.append(f"{size_name}: {e}")
                if size_name == "desktop":
                    missing = unlabelled_fields(page)
                    if missing:
                        unlabelled[name] = missing
                if shots:
                    page.screenshot(path=str(Path(shots) / f"casemsg-{size_name}-{name}.png"), full_page=True)
            # the first Tab reaches the skip link, which leads to the page's content
            page.keyboard.press("Tab")
            assert page.evaluate("document.activeElement.className") == "skip"
            page.keyboard.press("Enter")
            assert page.evaluate("document.activeElement.id") == "main"
            # the header's Log out stays on screen
            box = page.locator("header.top button", has_text="Log out").bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"], (size_name, box)
            # the dashboard drew its charts from the vendored Chart.js
            page.goto(live_server.url + pages["project"], wait_until="networkidle")
            assert page.evaluate("typeof Chart") == "function"
            assert page.evaluate("Object.keys(Chart.instances).length") == 3
            assert outside == [], f"requests left 127.0.0.1 at {size_name}: {outside}"
            violations += reported
            page.close()

        # a viewer: every page opens, but every form and htmx action that would change something is refused
        page = new_page(browser)
        outside = watch_external_requests(page)
        login(page, live_server, "viewer", "pw-viewer-1")
        for name, url in pages.items():
            page.goto(live_server.url + url, wait_until="load")
            if name in ("api_keys", "settings_audit"):  # owners only
                assert "You may not do this" in page.content()
                continue
            assert "You may not do this" not in page.content(), url
            results = page.evaluate(
                """async () => {
                    const out = [];
                    const targets = [...document.querySelectorAll('form')]
                        .filter(f => (f.getAttribute('method') || 'get').toLowerCase() === 'post')
                        // getAttribute: a field named "action" hides the form's .action property
                        .map(f => [new URL(f.getAttribute('action') || location.href, location.href).href, f])
                        .filter(([action, f]) => !action.endsWith('/accounts/logout/'))
                        .map(([action, f]) => [action, new FormData(f)]);
                    for (const el of document.querySelectorAll('[hx-post]')) {
                        targets.push([new URL(el.getAttribute('hx-post'), location.href).href, new FormData()]);
                    }
                    const token = document.cookie.match(/csrftoken=([^;]+)/);
                    for (const [action, data] of targets) {
                        const r = await fetch(action, {method: 'POST', body: data, redirect: 'manual',
                                                       headers: {'X-CSRFToken': token ? token[1] : ''}});
                        out.push([action, r.status]);
                    }
                    return out;
                }"""
            )
            viewer_writes += [f"{name}: POST {action} answered {status}" for action, status in results if status != 403]
        # the other project: not even its name shows
        for url in other_urls:
            page.goto(live_server.url + url)
            assert "Page not found" in page.content() and "Secret project" not in page.content(), url
        page.goto(live_server.url + "/")
        assert "Frame test" in page.content() and "secret-project" not in page.content()
        assert outside == [], outside
        page.close()

    assert not violations, "\n".join(violations)
    assert not overflow, "\n".join(overflow)
    assert not unlabelled, unlabelled
    assert not viewer_writes, "\n".join(viewer_writes)
    assert snapshot() == before
