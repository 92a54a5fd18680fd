"""Fixtures the API tests share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.core import signals
from django.db import close_old_connections


@pytest.fixture
def keep_connection_open() -> Iterator[None]:
    """Requests run in-process, inside the test's transaction: like Django's test client, keep the
    connection open between them (Django closes it when a request finishes). The schemathesis modules use
    it for every test."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)
