"""Forms for the operator pages. Filters validate their input so a bad query string shows a form error
instead of reaching the database (or a 500)."""

from __future__ import annotations

from django import forms

from casemsg.consent.models import ConsentRecord


def _blank(label: str, choices: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [("", label), *choices]


class SendForm(forms.Form):
    channel = forms.ChoiceField(choices=[("sms", "SMS"), ("email", "Email"), ("whatsapp", "WhatsApp")], initial="sms")
    subject = forms.CharField(required=False, max_length=255, help_text="email only")
    # WhatsApp only: what goes outside the 24-hour window (docs/whatsapp.md)
    whatsapp_template = forms.CharField(
        required=False, max_length=512, label="Template", help_text="WhatsApp, outside the 24-hour window"
    )
    whatsapp_variables = forms.CharField(
        required=False,
        max_length=1000,
        label="its variables",
        widget=forms.TextInput(attrs={"placeholder": "{case.name}, {case.edd}"}),
        help_text="{{1}}, {{2}} … in order, comma-separated",
    )
    fallback_sms = forms.BooleanField(required=False, label="else send as SMS")
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
