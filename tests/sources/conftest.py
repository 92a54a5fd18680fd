"""Fixtures for the case sources: fake CommCare HQ, ODK Central and DHIS2 servers on 127.0.0.1
(fakes/sources.py), and sources of the test project reading them."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from casemsg.sources import services
from casemsg.sources.models import Source
from fakes.sources import FakeSource

# The fakes listen on 127.0.0.1, which casemsg refuses to call unless the installation allows internal
# addresses (settings: on under pytest; subprocesses inherit this).
os.environ.setdefault("CASEMSG_GATEWAY_ALLOW_PRIVATE", "1")


@pytest.fixture
def fake_source() -> Iterator[Callable[..., FakeSource]]:
    started: list[FakeSource] = []

    def make(kind: str = "commcare", **options: Any) -> FakeSource:
        fake = FakeSource(kind, **options).start()
        started.append(fake)
        return fake

    yield make
    for fake in started:
        fake.stop()


@pytest.fixture
def make_source(project) -> Callable[..., Source]:
    def make(fake: FakeSource, name: str = "", **kw: Any) -> Source:
        config = {**fake.config(), **kw.pop("config", {})}
        kw.setdefault("case_type", "" if fake.kind != "dhis2" else "mother")
        kw.setdefault("interval_minutes", 15)
        return services.add_source(project, name or f"{fake.kind}-src", fake.kind, config, **kw)

    return make
