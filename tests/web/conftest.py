"""Fixtures and helpers the page tests share. From tests/conftest.py: `sandbox` (the installation's
sandbox gateway), `admin` (a superuser's client) and `editor` (an editor's client); here `staff` (an
editor with staff status), `viewer` and `owner`."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from casemsg.cases import services as cases
from casemsg.cases.models import Case
from casemsg.projects.services import add_member
from tests.web.clients import logged_in


@pytest.fixture
def staff(db, project) -> Client:
    """A logged-in editor of the project (staff status alone opens no project)."""
    user = get_user_model().objects.create_user("operator", password="pw-operator-1", is_staff=True)
    add_member(project, user, "editor")
    return logged_in(user)


@pytest.fixture
def viewer(project) -> Client:
    """A logged-in viewer of the project: reads every page, changes nothing."""
    user = get_user_model().objects.create_user("vera", password="pw-vera-1")
    add_member(project, user, "viewer")
    return logged_in(user)


@pytest.fixture
def owner(admin) -> Client:
    """The owner's pages: a superuser's client (owner of every project)."""
    return admin


def make_case(project, case_id: str, name: str = "Asha", **props: str) -> Case:
    """A case of type mother with these properties, through the one write path."""
    return cases.create_case(
        project, cases.CaseChange(case_id=case_id, case_type="mother", name=name, properties=dict(props))
    )


def case_url(project, case_id: str) -> str:
    return f"/projects/{project.slug}/cases/{case_id}/"
