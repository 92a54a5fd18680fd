"""Forms of the cases, mobile workers, import and send pages. They check the shape of the input; the
rules (lengths, names, phone numbers of workers) are the services', whose InputError the views turn
into form errors, so the pages, the API and the CLI refuse the same things with the same words."""

from __future__ import annotations

from django import forms

from casemsg.cases import services as case_services

# The contact properties a new case's form asks for by name (docs/contact-rules.md describes them).
CONTACT_FIELDS = {
    "contact_phone_number": "Phone number",
    "commcare_email_address": "Email address",
    "language_code": "Language code",
    "time_zone": "Time zone",
}


def _lines(text: str) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


class CaseForm(forms.Form):
    case_type = forms.CharField(max_length=64, label="Case type", widget=forms.TextInput(attrs={"list": "case-types"}))
    name = forms.CharField(max_length=255, required=False)
    case_id = forms.CharField(
        max_length=64, required=False, label="Case id", help_text="leave empty for a generated one"
    )
    contact_phone_number = forms.CharField(
        max_length=64,
        required=False,
        label="Phone number",
        help_text="country code first, digits only, e.g. 254712345678",
    )
    contact_phone_number_is_verified = forms.BooleanField(
        required=False,
        label="Number verified / consent recorded",
        help_text="sets contact_phone_number_is_verified = 1 (in the US this records opt-in consent)",
    )
    commcare_email_address = forms.CharField(max_length=254, required=False, label="Email address")
    language_code = forms.CharField(max_length=16, required=False, label="Language code")
    time_zone = forms.CharField(max_length=64, required=False, label="Time zone", help_text="e.g. Africa/Nairobi")
    other = forms.CharField(
        required=False,
        label="Other properties",
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "edd=2026-05-01"}),
        help_text="one per line, name=value",
    )

    def clean_other(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for line in _lines(self.cleaned_data.get("other", "")):
            key, sep, value = line.partition("=")
            if not sep or not key.strip():
                raise forms.ValidationError(f"'{line}' is not name=value.")
            out[key.strip()] = value.strip()
        return out

    def change(self) -> case_services.CaseChange:
        d = self.cleaned_data
        props: dict[str, object | None] = {k: d[k].strip() for k in CONTACT_FIELDS if d.get(k, "").strip()}
        if d.get("contact_phone_number_is_verified"):
            props["contact_phone_number_is_verified"] = "1"
        props.update(d.get("other") or {})
        return case_services.CaseChange(
            case_id=d.get("case_id", "").strip() or None,
            case_type=d["case_type"].strip(),
            name=d.get("name", "").strip(),
            properties=props,
        )


class WorkerForm(forms.Form):
    username = forms.CharField(max_length=150)
    name = forms.CharField(max_length=255, required=False)
    phone_numbers = forms.CharField(
        required=False,
        label="Phone numbers",
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "254722000001"}),
        help_text="one per line, country code first, digits only; the first verified one is used for SMS",
    )
    verified = forms.BooleanField(required=False, label="Numbers verified (two-way SMS)")
    email = forms.CharField(max_length=254, required=False)
    time_zone = forms.CharField(max_length=64, required=False, label="Time zone")
    language_code = forms.CharField(max_length=16, required=False, label="Language code")

    def numbers(self) -> list[dict[str, object]]:
        verified = bool(self.cleaned_data.get("verified"))
        return [{"number": n, "verified": verified} for n in _lines(self.cleaned_data.get("phone_numbers", ""))]


class ImportForm(forms.Form):
    file = forms.FileField(label="CSV file", help_text="UTF-8; the first line names the columns")
    case_type = forms.CharField(max_length=64, label="Case type", help_text="the type of the cases the file creates")


class MessagePreviewForm(forms.Form):
    """What the send form's live preview reads (any of it may be missing while the person types)."""

    channel = forms.ChoiceField(choices=[("sms", "SMS"), ("email", "Email"), ("whatsapp", "WhatsApp")], required=False)
    whatsapp_template = forms.CharField(required=False, max_length=512)
    subject = forms.CharField(required=False, max_length=255)
    text = forms.CharField(required=False, max_length=5000, strip=False)
