"""The worker's ticker starts the syncs that are due (a thread each, never twice at once), and a run that
ends is a `source.run` event, counted in /metrics with how far behind each source is."""

from __future__ import annotations

import time

import pytest
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from casemsg.events import services as events
from casemsg.events.models import SOURCE_RUN, Delivery
from casemsg.projects.services import create_project
from casemsg.sources import services, tasks
from casemsg.sources.models import Source, SourceRun


def wait_for_threads(deadline: float = 30.0) -> None:
    end = time.monotonic() + deadline
    while tasks.running() and time.monotonic() < end:
        time.sleep(0.05)
    assert tasks.running() == 0


def test_the_tick_runs_what_is_due_once_and_then_at_its_interval(transactional_db, fake_source):
    fake = fake_source("commcare")
    fake.add(8)
    fake.latency = 0.2
    project, _ = create_project("ticked", "Ticked")
    source = services.add_source(project, "cc", "commcare", fake.config(page_size=4), interval_minutes=30)
    assert source.next_sync_on is not None  # due at once
    assert tasks.tick() == 1
    assert tasks.tick() == 0  # held by the running sync: not started twice
    wait_for_threads()
    (run,) = SourceRun.objects.filter(source=source)
    assert (run.status, run.trigger, run.created) == ("succeeded", "schedule", 8)
    source.refresh_from_db()
    assert source.lease_token == "" and 29 * 60 < (source.next_sync_on - timezone.now()).total_seconds() <= 30 * 60
    assert tasks.tick() == 0  # not due before its interval
    services.request_sync(source, by="api")
    assert tasks.tick() == 1
    wait_for_threads()
    assert SourceRun.objects.filter(source=source).latest("started_on").trigger == "api"


@pytest.mark.django_db
def test_a_run_is_an_event_and_the_metrics_show_it(project, fake_source, make_source, settings):
    endpoint = events.create_endpoint(project, "http://127.0.0.1:9/hook", [SOURCE_RUN])
    fake = fake_source("commcare")
    fake.add(3)
    source = make_source(fake)
    run = tasks.sync_now(source)
    assert run is not None and run.status == "succeeded"
    (delivery,) = Delivery.objects.filter(endpoint=endpoint)
    assert delivery.event == SOURCE_RUN and delivery.subject == f"source:{source.pk}"
    assert (delivery.payload["run_id"], delivery.payload["created"], delivery.payload["status"]) == (
        run.pk,
        3,
        "succeeded",
    )
    settings.CASEMSG_METRICS_TOKEN = "t"
    body = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer t").content.decode()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
    }
    labels = (("project", project.slug), ("source", source.name), ("status", Source.OK), ("type", "commcare"))
    assert 0 <= samples[("casemsg_source_lag_seconds", labels)] < 60
    assert samples[("casemsg_source_runs_total", (("status", "succeeded"), ("type", "commcare")))] >= 1
