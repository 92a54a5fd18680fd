"""`casemsg sources add|list|test|sync|runs|import` through Django's call_command."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from casemsg.cases.models import Case
from casemsg.sources.models import Source

pytestmark = pytest.mark.django_db


def cli(*args: str) -> str:
    out = StringIO()
    call_command("sources", *args, stdout=out)
    return out.getvalue()


def test_add_list_test_sync_and_runs(project, fake_source):
    fake = fake_source("commcare")
    fake.add(9)
    config = json.dumps({**fake.config(), "page_size": 4})
    out = cli("add", "cc", "--project", project.slug, "--type", "commcare", "--config", config, "--interval", "30")
    assert "Source" in out and "receiver URL" in out and fake.system.api_key not in out
    source = Source.objects.get(project=project, name="cc")
    assert "Fields: contact_phone_number" in cli("test", "cc", "--project", project.slug)
    out = cli("sync", "cc", "--project", project.slug)
    assert "[##############################] 100.0%  9/9 records, page 3" in out
    assert "succeeded" in out and "created 9" in out
    assert Case.objects.filter(project=project).count() == 9
    listed = cli("list", "--project", project.slug)
    assert f"{source.pk}\tcc\tcommcare\tok" in listed
    runs = json.loads(cli("runs", str(source.pk), "--project", project.slug, "--json"))
    assert [(r["kind"], r["status"], r["created"]) for r in runs] == [("full", "succeeded", 9)]
    log = cli("runs", "cc", "--project", project.slug, "--log", str(runs[0]["id"]))
    assert "watermark - →" in log


def test_a_failed_sync_exits_with_the_reason(project, fake_source):
    fake = fake_source("commcare")
    config = json.dumps(fake.config(api_key="wrong"))
    cli("add", "cc", "--project", project.slug, "--type", "commcare", "--config", config)
    with pytest.raises(CommandError, match="SOURCE_AUTH_FAILED"):
        cli("sync", "cc", "--project", project.slug, "--quiet")
    with pytest.raises(CommandError, match="INVALID_SOURCE_CONFIG"):
        cli("add", "x", "--project", project.slug, "--type", "commcare", "--config", "{}")


def test_the_config_may_come_from_standard_input(project, fake_source, monkeypatch):
    fake = fake_source("commcare")
    monkeypatch.setattr("sys.stdin", StringIO(json.dumps(fake.config())))
    cli("add", "piped", "--project", project.slug, "--type", "commcare", "--config", "-")
    assert Source.objects.get(project=project, name="piped").config["api_key"] == fake.system.api_key
