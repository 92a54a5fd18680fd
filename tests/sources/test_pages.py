"""The sources pages: list, a new source (type, then settings), its page (test read, mapping, sync now,
receiver URL for owners only, secrets never shown), runs with their progress and log; roles."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from casemsg.cases.models import Case
from casemsg.projects import services as projects
from casemsg.sources import services
from casemsg.sources.models import Source, SourceRun

pytestmark = pytest.mark.django_db


def member(project, name: str, role: str) -> Client:
    user = get_user_model().objects.create_user(name, f"{name}@example.org")  # no password: force_login
    projects.add_member(project, user, role)
    c = Client()
    c.force_login(user)
    return c


def test_owner_adds_tests_maps_and_syncs_a_source(project, fake_source):
    fake = fake_source("commcare")
    fake.add(7)
    owner = member(project, "olive", "owner")
    base = f"/projects/{project.slug}/sources/"
    assert "commcare" in owner.get(base + "new/").content.decode()
    form = owner.get(base + "new/?type=commcare").content.decode()
    assert 'name="cfg_api_key"' in form and 'type="password"' in form
    config = fake.config()
    post = {
        "type": "commcare",
        "name": "cchq",
        "case_type": "",
        "interval_minutes": "15",
        "keep_unmapped": "on",
        "active": "on",
        **{f"cfg_{k}": v for k, v in config.items()},
        "cfg_page_size": "3",
    }
    r = owner.post(base + "new/", post)
    assert r.status_code == 302, r.content.decode()[:2000]
    source = Source.objects.get(project=project, name="cchq")
    page = owner.get(r["Location"]).content.decode()
    assert fake.system.api_key not in page and "receiver-url" in page
    page = owner.post(r["Location"], {"action": "test"}).content.decode()
    assert 'id="test-result" data-ok="1"' in page and "<code>edd</code>" in page
    assert '<option value="contact_phone_number">' in page  # the fields read, offered for the mapping
    # save a mapping (the secret box left empty keeps the key)
    save = {
        **{k: v for k, v in post.items() if k not in ("type", "cfg_api_key")},
        "action": "save",
        "map_from": ["edd", "village", ""],
        "map_to": ["edd", "village_name", ""],
        "map_transform": ["date", "", ""],
        "map_option": ["%Y-%m-%d", "", ""],
    }
    r = owner.post(r["Location"], save)
    assert r.status_code == 302, r.content.decode()[:3000]
    source.refresh_from_db()
    assert source.config["api_key"] == fake.system.api_key
    assert source.mapping == [
        {"from": "edd", "to": "edd", "transform": {"type": "date", "format": "%Y-%m-%d"}},
        {"from": "village", "to": "village_name"},
    ]
    r = owner.post(f"{base}{source.pk}/", {"action": "sync"})
    assert r["Location"].endswith(f"/sources/{source.pk}/runs/")
    runs = owner.get(r["Location"]).content.decode()
    run = SourceRun.objects.get(source=source)
    assert f'data-run="{run.pk}" data-status="succeeded"' in runs and f'max="{run.total}"' in runs
    assert Case.objects.get(project=project, case_id="case-0000001").properties["village_name"] == "Village 1"
    assert "Nothing to note" in owner.get(f"{base}{source.pk}/runs/{run.pk}/").content.decode()
    listed = owner.get(base).content.decode()
    assert 'data-source="cchq"' in listed and "succeeded" in listed


def test_a_failing_source_shows_its_error_and_roles_limit_what_changes(project, fake_source):
    fake = fake_source("commcare")
    source = services.add_source(project, "bad", "commcare", fake.config(api_key="wrong-key"))
    editor, viewer = member(project, "eddie", "editor"), member(project, "vera", "viewer")
    page = f"/projects/{project.slug}/sources/{source.pk}/"
    assert editor.post(page, {"action": "sync"}).status_code == 302
    shown = viewer.get(page).content.decode()
    assert 'data-error="SOURCE_AUTH_FAILED"' in shown and "wrong-key" not in shown
    assert "receiver-url" not in shown and 'id="sync-now"' not in shown  # viewers: no URL, no buttons
    assert 'data-error="SOURCE_AUTH_FAILED"' in viewer.get(f"/projects/{project.slug}/sources/").content.decode()
    assert viewer.post(page, {"action": "sync"}).status_code == 403
    assert editor.post(page, {"action": "save", "name": "x"}).status_code == 403
    assert editor.post(page, {"action": "delete"}).status_code == 403
    assert "receiver-url" not in editor.get(page).content.decode()
    other = member(project, "ollie", "owner")
    assert other.post(page, {"action": "delete"}).status_code == 302
    assert not Source.objects.filter(pk=source.pk).exists()


def test_another_projects_source_is_404(project, other_project, fake_source):
    fake = fake_source("commcare")
    source = services.add_source(other_project, "theirs", "commcare", fake.config())
    owner = member(project, "olga", "owner")
    assert owner.get(f"/projects/{project.slug}/sources/{source.pk}/").status_code == 404
    assert owner.get(f"/projects/{project.slug}/sources/{source.pk}/runs/").status_code == 404
