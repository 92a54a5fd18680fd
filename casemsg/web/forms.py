"""Forms for the operator pages. Filters validate their input so a bad query string shows a form error
instead of reaching the database (or a 500)."""

from __future__ import annotations

from django import forms

from casemsg.consent.models import ConsentRecord
from casemsg.core import errors
from casemsg.messaging.models import Message


def _blank(label: str, choices: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [("", label), *choices]


class CaseFilterForm(forms.Form):
    type = forms.CharField(required=False, max_length=64, label="Case type")
    state = forms.ChoiceField(
        required=False, choices=[("open", "Open"), ("closed", "Closed"), ("all", "Open and closed")], label="State"
    )
    q = forms.CharField(required=False, max_length=100, label="Search", help_text="case id or name")

    def __init__(self, *args, case_types: list[str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        # A select of the project's case types; the field stays a CharField so an unknown type simply
        # matches nothing rather than erroring.
        self.fields["type"].widget = forms.Select(choices=_blank("All types", [(t, t) for t in case_types or []]))


class WorkerFilterForm(forms.Form):
    state = forms.ChoiceField(
        required=False, choices=[("active", "Active"), ("inactive", "Inactive"), ("all", "All")], label="State"
    )
    q = forms.CharField(required=False, max_length=100, label="Search", help_text="username or name")


class MessageFilterForm(forms.Form):
    status = forms.ChoiceField(required=False, choices=_blank("Any status", [(s, s) for s in Message.STATUSES]))
    error = forms.ChoiceField(
        required=False,
        label="Error code",
        choices=_blank("Any error", [(e.code, f"{e.code} — {e.title}") for e in errors.of_kind("problem")]),
    )
    direction = forms.ChoiceField(
        required=False, choices=_blank("Both directions", [(Message.OUT, "Outbound"), (Message.IN, "Inbound")])
    )
    channel = forms.ChoiceField(required=False, choices=_blank("Any channel", [("sms", "SMS"), ("email", "Email")]))
    # Set by the "all messages" links of the case and worker pages.
    case = forms.CharField(required=False, max_length=64, widget=forms.HiddenInput)
    worker = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)


class SendForm(forms.Form):
    channel = forms.ChoiceField(choices=[("sms", "SMS"), ("email", "Email")], initial="sms")
    subject = forms.CharField(required=False, max_length=255, help_text="email only")
    # Not required here: an empty text goes to messaging.services, which answers with the catalogue's
    # MESSAGE_BLANK, the same words the API gives.
    text = forms.CharField(
        required=False,
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "Hello {case.name}"}),
        help_text="May use {case.name}, {case.<property>}, {recipient.name}.",
    )


class SimulatorForm(forms.Form):
    number = forms.CharField(
        required=False,
        max_length=32,
        label="Phone number",
        widget=forms.TextInput(attrs={"placeholder": "15551234567"}),
    )
    case = forms.CharField(required=False, max_length=64, label="or a case")


class ReplyForm(forms.Form):
    number = forms.CharField(max_length=32, widget=forms.HiddenInput)
    text = forms.CharField(
        max_length=1600,
        label="Reply",
        widget=forms.TextInput(
            attrs={"placeholder": "Type a reply, e.g. STOP", "autocomplete": "off", "aria-label": "Reply"}
        ),
    )


class ConsentFilterForm(forms.Form):
    kind = forms.ChoiceField(required=False, choices=_blank("Every kind", [(k, k) for k in ConsentRecord.KINDS]))
    phone_number = forms.CharField(required=False, max_length=32, label="Phone number")
