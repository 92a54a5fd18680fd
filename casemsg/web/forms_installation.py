"""Forms of the Installation pages (staff only): a route of the installation with its gateways in order, and
the test message, which names the project it is sent for (every message belongs to a project).

A gateway's own form is the project pages' `GatewayForm` (casemsg.web.forms_config), built from its type's
config schema. The checks live in casemsg.gateways.services, as for the API and the CLI."""

from __future__ import annotations

from typing import Any, cast

from django import forms

from casemsg.gateways.models import Gateway
from casemsg.projects.models import Project
from casemsg.web.forms_config import GatewayTestForm

# A route's gateways on the page: its own and up to this many further ones (the CLI's --then takes more).
MOST_FURTHER = 3


class InstallationRouteForm(forms.Form):
    """Prefix → gateways in order: the first sends; a message it certainly did not take moves to the next
    (the same route `casemsg gateway map PREFIX NAME --then A,B` writes)."""

    route_prefix = forms.CharField(
        max_length=16, label="Prefix", help_text="Digits, country code first (e.g. 254), or * for all numbers."
    )
    gateway = forms.ChoiceField(label="Gateway")

    def __init__(self, *args: Any, gateways: list[Gateway], **kwargs: Any):
        super().__init__(*args, **kwargs)
        names = [(g.name, f"{g.name} ({g.type})") for g in gateways]
        cast(forms.ChoiceField, self.fields["gateway"]).choices = names
        for i in range(1, MOST_FURTHER + 1):
            self.fields[f"then_{i}"] = forms.ChoiceField(
                required=False, label=f"Then ({i + 1}.)", choices=[("", "—"), *names]
            )

    def further_fields(self) -> list[forms.BoundField]:
        return [self[f"then_{i}"] for i in range(1, MOST_FURTHER + 1)]

    def then(self) -> list[str]:
        """The further gateways in the order chosen (blanks skipped)."""
        picked = (self.cleaned_data.get(f"then_{i}") or "" for i in range(1, MOST_FURTHER + 1))
        return [name for name in picked if name]


class InstallationTestForm(GatewayTestForm):
    """A test message through an installation gateway, for one project (its log keeps the message; the
    project's rules apply: opt-out, consent, country)."""

    project = forms.ChoiceField(label="For the project", help_text="The message is in this project's log.")

    def __init__(self, *args: Any, projects: list[Project], **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.projects = {p.slug: p for p in projects}
        cast(forms.ChoiceField, self.fields["project"]).choices = [(p.slug, f"{p.slug} — {p.name}") for p in projects]

    def chosen_project(self) -> Project:
        return self.projects[self.cleaned_data["project"]]
