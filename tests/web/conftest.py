"""Fixtures the page tests share: the installation's sandbox gateway and a superuser's client."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from casemsg.gateways import services as gateways
from tests.web.clients import logged_in


@pytest.fixture
def sandbox(db):
    """A sandbox gateway routing every number."""
    gw = gateways.add_gateway("sandbox", "sandbox")
    gateways.map_prefix("*", "sandbox")
    return gw


@pytest.fixture
def admin(db) -> Client:
    """A superuser: owner of every project."""
    return logged_in(get_user_model().objects.create_superuser("boss", "boss@example.org", "pw-boss-1"))
