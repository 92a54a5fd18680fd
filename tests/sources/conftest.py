"""Fixtures for the case sources: fake CommCare HQ, ODK Central and DHIS2 servers on 127.0.0.1
(fakes/sources.py), and sources of the test project reading them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from casemsg.sources import services
from casemsg.sources.models import Source
from fakes.sources import FakeSource
from tests.servers.fixtures import started_fakes

# The fakes listen on 127.0.0.1, which casemsg refuses to call unless the installation allows internal
# addresses: tests.servers.fixtures allows them for this process and the ones it starts.


@pytest.fixture
def fake_source() -> Iterator[Callable[..., FakeSource]]:
    yield from started_fakes(FakeSource)


@pytest.fixture
def make_source(project) -> Callable[..., Source]:
    def make(fake: FakeSource, name: str = "", **kw: Any) -> Source:
        config = {**fake.config(), **kw.pop("config", {})}
        kw.setdefault("case_type", "" if fake.kind != "dhis2" else "mother")
        kw.setdefault("interval_minutes", 15)
        return services.add_source(project, name or f"{fake.kind}-src", fake.kind, config, **kw)

    return make
