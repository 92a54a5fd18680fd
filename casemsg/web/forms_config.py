"""Forms of the configuration pages: keywords, gateways and routes, project settings, API keys.

Each form only turns what was typed into the values the services take (`KeywordFields`, a gateway's config
dict, the settings API's body). The checks themselves live once, in the services the API and the CLI call
too: a refusal comes back as an `InputError` and is shown on the form (`show_refusal`) with the same words
the API answers with.
"""

from __future__ import annotations

import functools
import json
import math
import re
from typing import Any, cast
from zoneinfo import available_timezones

from django import forms

from casemsg.core import errors, phone, timezones
from casemsg.core.errors import InputError
from casemsg.core.fields import Param
from casemsg.gateways.base import ConfigField, GatewayType, masked, unmasked
from casemsg.gateways.models import Gateway
from casemsg.inbound.actions.base import KeywordAction
from casemsg.inbound.actions.registry import ACTIONS
from casemsg.inbound.models import Keyword
from casemsg.inbound.services import KeywordFields
from casemsg.projects.models import DEFAULT_SCOPES, SCOPES, Project

CONFIG_PREFIX = "cfg_"
REPLY_PREFIX = "reply_"
PARAM_PREFIX = "p_"
_SEPARATORS = re.compile(r"[\s,;]+")


def split_words(text: str) -> list[str]:
    """'KE, UG TZ' → ['KE', 'UG', 'TZ']: lists are typed as words separated by commas or spaces."""
    return [w for w in _SEPARATORS.split(text or "") if w]


def show_refusal(form: forms.Form, exc: InputError, fields: dict[str, str] | None = None) -> None:
    """Show a service's refusal on the form: on the field its sentence names ("quiet_hours.start: …") or
    its code stands for (`fields`: code or message prefix → form field), else above the form."""
    for key, field in (fields or {}).items():
        if (exc.code == key or exc.message.startswith(key)) and field in form.fields:
            form.add_error(field, exc.message)
            return
    form.add_error(None, exc.message)


# --- keywords ------------------------------------------------------------------------------------
def param_field_name(action: str, name: str) -> str:
    """The form field of one action's parameter: each action's parameters have their own fields."""
    return f"{PARAM_PREFIX}{action}__{name}"


def _param_field(action: KeywordAction, p: Param, project: Project) -> forms.Field:
    """The form field for one declared parameter. Not required here: the service refuses a missing one in
    the API's words, shown on this field."""
    if p.type == "choice":
        return forms.ChoiceField(
            required=False, label=p.label, help_text=p.help, choices=[("", "—"), *action.choices(project, p)]
        )
    return forms.CharField(
        required=False, max_length=p.max_length, label=p.label, help_text=p.help, initial=p.default or None
    )


class KeywordForm(forms.Form):
    """A keyword: its word, its action, and each action's parameters as its module declares them
    (`casemsg.inbound.actions`, as a gateway form is built from its type's config schema), and one reply
    box per project language. Only the chosen action's parameters are read."""

    keyword = forms.CharField(max_length=40, help_text="One word; matched case-insensitively as the first word.")
    action = forms.ChoiceField(choices=[(a.name, f"{a.name} — {a.description}") for a in ACTIONS.values()])
    description = forms.CharField(max_length=255, required=False)

    def __init__(self, *args: Any, project: Project, keyword: Keyword | None = None, **kwargs: Any):
        if keyword is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                "keyword": keyword.keyword,
                "action": keyword.action,
                "description": keyword.description,
                **{param_field_name(keyword.action, k): v for k, v in (keyword.params or {}).items()},
                **{REPLY_PREFIX + lang: text for lang, text in (keyword.reply or {}).items()},
            }
        super().__init__(*args, **kwargs)
        self.project = project
        for action in ACTIONS.values():
            for p in action.params:
                self.fields[param_field_name(action.name, p.name)] = _param_field(action, p, project)
        # one reply box per project language, plus any language an existing reply already has
        languages = list(dict.fromkeys([*(project.sms_languages or []), *((keyword.reply or {}) if keyword else {})]))
        self.languages = languages or ["en"]
        for lang in self.languages:
            self.fields[REPLY_PREFIX + lang] = forms.CharField(
                required=False,
                max_length=1600,
                label=f"Reply ({lang})",
                widget=forms.Textarea(attrs={"rows": 2}),
                help_text="May use {case.name}, {case.<property>}, {recipient.name} and {rest}.",
            )

    def main_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in ("keyword", "action", "description")]

    def param_groups(self) -> list[tuple[KeywordAction, list[tuple[forms.BoundField, Param]]]]:
        """Each action with parameters, and its fields with their declarations (the page shows the chosen
        action's)."""
        return [
            (a, [(self[param_field_name(a.name, p.name)], p) for p in a.params]) for a in ACTIONS.values() if a.params
        ]

    def reply_fields(self) -> list[forms.BoundField]:
        return [self[REPLY_PREFIX + lang] for lang in self.languages]

    def fields_for_service(self) -> KeywordFields:
        d = self.cleaned_data
        reply = {lang: d.get(REPLY_PREFIX + lang, "") for lang in self.languages}
        action = ACTIONS[d["action"]]
        return KeywordFields(
            keyword=d["keyword"],
            action=action.name,
            description=d["description"],
            reply={lang: text for lang, text in reply.items() if text.strip()},
            params={p.name: d.get(param_field_name(action.name, p.name)) or "" for p in action.params},
        )

    def show_refusal(self, exc: InputError) -> None:
        """A refusal on the field it is about: the keyword, or the chosen action's parameter it names."""
        action = ACTIONS.get(self.cleaned_data.get("action", ""))
        if action is not None:
            for p in action.params:
                if f"params.{p.name} " in exc.message or f"needs {p.name}" in exc.message:
                    self.add_error(param_field_name(action.name, p.name), exc.message)
                    return
        show_refusal(self, exc, KEYWORD_REFUSALS)


KEYWORD_REFUSALS = {errors.RESERVED_KEYWORD: "keyword", errors.KEYWORD_EXISTS: "keyword", "A keyword is": "keyword"}


# --- gateways ------------------------------------------------------------------------------------
def _config_field(key: str, f: ConfigField, has_value: bool) -> forms.Field:
    """The form field for one key of a gateway type's config schema."""
    help_text = f.help
    if f.secret:
        help_text += " Not shown again once saved; leave blank to keep the current value." if has_value else ""
    required = f.required and not (f.secret and has_value)
    label = key.replace("_", " ").capitalize()
    if f.type == "bool":
        return forms.BooleanField(required=False, label=label, help_text=help_text)
    if f.choices:
        return forms.ChoiceField(
            required=required, label=label, help_text=help_text, choices=[("", "—"), *((c, c) for c in f.choices)]
        )
    if f.type == "object":
        help_text += " (JSON)"
        if f.secret:
            return forms.CharField(required=required, label=label, help_text=help_text, widget=forms.PasswordInput)
        return forms.CharField(
            required=required, label=label, help_text=help_text, widget=forms.Textarea(attrs={"rows": 2})
        )
    if f.type == "list":
        help_text += " (words separated by commas, or a JSON list)"
    widget = forms.PasswordInput if f.secret else forms.TextInput
    return forms.CharField(required=required, label=label, help_text=help_text, widget=widget)


def _shown_value(f: ConfigField, value: Any) -> Any:
    """A stored config value as its form field shows it, to every role: never a secret's, and an object of
    secret values (an http gateway's headers, params) with its keys but each value masked."""
    value = masked(f, value)
    if value is None:
        return None
    if f.type == "bool":
        return bool(value)
    if f.type == "object":
        return json.dumps(value)
    if f.type == "list":
        return ", ".join(str(v) for v in value) if isinstance(value, list) else json.dumps(value)
    return str(value)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _config_value(key: str, f: ConfigField, raw: Any) -> Any:
    """What the typed text stands for: a number, an object, a list (None: absent). A value that is not
    what the schema wants is passed on as typed, so `validate_config` words the problem."""
    if f.type == "bool":
        return True if raw else None
    text = str(raw or "").strip()
    if not text:
        return None
    if f.type == "number":
        try:
            number = float(text)
        except ValueError:
            return text
        if not math.isfinite(number):  # JSON has no infinity: the database would refuse it
            raise InputError(errors.INVALID_GATEWAY_CONFIG, f"{key} must be a finite number.")
        return int(number) if number.is_integer() else number
    if f.type == "object" or (f.type == "list" and text.startswith("[")):
        try:
            value = json.loads(text, parse_constant=_no_constant)
        except ValueError as exc:
            raise InputError(errors.INVALID_GATEWAY_CONFIG, f"{key} is not valid JSON: {exc}.") from exc
        if "\\u0000" in json.dumps(value):  # a NUL character, which no database text holds
            raise InputError(errors.INVALID_GATEWAY_CONFIG, f"{key} contains a NUL character.")
        return value
    if f.type == "list":
        return [int(w) if w.isdigit() else w for w in split_words(text)]
    return text


class GatewayForm(forms.Form):
    """A gateway of one type: name (new gateways only), limits, and one field per key of the type's config
    schema (`cfg_<key>`). Secrets are never shown back; left blank they keep their stored value."""

    name = forms.CharField(max_length=64, help_text="Letters, digits, '.', '_' or '-'; unique in the project.")
    # (at most what the database column holds)
    rate_limit = forms.IntegerField(
        min_value=0,
        max_value=2**31 - 1,
        initial=0,
        label="Rate limit",
        help_text="Segments per second; 0 for no limit.",
    )
    max_segments = forms.IntegerField(
        min_value=1,
        max_value=2**31 - 1,
        initial=10,
        label="Most segments",
        help_text="Longer messages fail with MESSAGE_TOO_LONG.",
    )
    countries = forms.CharField(
        required=False, max_length=1000, help_text="ISO codes it sends to (e.g. KE UG); empty for everywhere."
    )

    def __init__(self, *args: Any, gateway_type: type[GatewayType], gateway: Gateway | None = None, **kwargs: Any):
        self.gateway_type, self.gateway = gateway_type, gateway
        stored: dict[str, Any] = dict(gateway.config or {}) if gateway is not None else {}
        schema = gateway_type.config_fields()
        if gateway is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                "name": gateway.name,
                "rate_limit": gateway.rate_limit,
                "max_segments": gateway.max_segments,
                "countries": " ".join(gateway.countries or []),
                **{CONFIG_PREFIX + k: _shown_value(f, stored.get(k)) for k, f in schema.items()},
            }
        super().__init__(*args, **kwargs)
        if gateway is not None:
            del self.fields["name"]  # a gateway's name is its identity (contact_backend_id names it)
        self.stored = stored
        # the type's own keys first, then the common ones (opt-out words…)
        ordered = {**gateway_type.config_schema, **schema}
        for key, f in ordered.items():
            self.fields[CONFIG_PREFIX + key] = _config_field(key, f, bool(stored.get(key)))
        self.config_keys = list(ordered)

    def config_fields(self) -> list[forms.BoundField]:
        return [self[CONFIG_PREFIX + k] for k in self.config_keys]

    def config(self) -> dict[str, Any]:
        """The config to save: the typed values; a blank secret keeps the stored one; keys outside the
        schema that the stored config holds are kept (validate_config keeps and ignores them too)."""
        schema = self.gateway_type.config_fields()
        config = {k: v for k, v in self.stored.items() if k not in schema}
        for key, f in schema.items():
            value = unmasked(
                key, f, _config_value(key, f, self.cleaned_data.get(CONFIG_PREFIX + key)), self.stored.get(key)
            )
            if value is None and f.secret and self.stored.get(key):
                value = self.stored[key]
            if value is not None:
                config[key] = value
        return config

    def countries_list(self) -> list[str]:
        return split_words(self.cleaned_data.get("countries", ""))


GATEWAY_REFUSALS = {
    errors.INVALID_GATEWAY_NAME: "name",
    errors.GATEWAY_EXISTS: "name",
    "Unknown country codes": "countries",
    "rate_limit": "rate_limit",
}


def refusal_field(form: GatewayForm, exc: InputError) -> str | None:
    """The config field a gateway refusal is about: the key its sentence names (URLs, missing keys)."""
    for key in form.config_keys:
        if f"'s {key} " in exc.message or f"needs {key} " in exc.message or exc.message.startswith(f"{key} "):
            return CONFIG_PREFIX + key
    if exc.code == errors.GATEWAY_URL_NOT_ALLOWED:
        urls = form.gateway_type.url_keys()
        named = [k for k in urls if k in exc.message]
        return CONFIG_PREFIX + (named[0] if named else urls[0]) if urls else None
    return None


class GatewayTestForm(forms.Form):
    to = forms.CharField(max_length=32, label="To", help_text="A phone number, country code first (e.g. 254712345678).")
    text = forms.CharField(max_length=1600, initial="A test message from casemsg.", label="Text")


class RouteForm(forms.Form):
    # (not `prefix`: a form's `prefix` is its field-name prefix)
    route_prefix = forms.CharField(
        max_length=16, label="Prefix", help_text="Digits, country code first (e.g. 254), or * for all numbers."
    )
    gateway = forms.ChoiceField()

    def __init__(self, *args: Any, gateways: list[Gateway], **kwargs: Any):
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["gateway"]).choices = [(g.name, f"{g.name} ({g.type})") for g in gateways]


# --- settings ------------------------------------------------------------------------------------
@functools.cache
def _zones() -> list[tuple[str, str]]:
    return [(z, z) for z in sorted(z for z in available_timezones() if timezones.is_valid(z))]


class SettingsForm(forms.Form):
    """The project settings of GET/PATCH …/settings; `changes()` is the PATCH body, checked by
    projects.services.update_settings (the API's one set of rules)."""

    default_time_zone = forms.CharField(label="Default time zone", help_text="For contacts without their own.")
    default_country = forms.CharField(
        required=False,
        max_length=2,
        label="Default country",
        help_text="A local number such as 0711 222 333 is stored as this country's (+254 711 222333 for Kenya).",
    )
    default_language = forms.CharField(
        max_length=16, label="Default language", help_text="One of the languages below, e.g. en."
    )
    sms_languages = forms.CharField(
        max_length=1000, label="Languages", help_text="The languages messages are written in, e.g. en sw."
    )
    quiet_hours_start = forms.CharField(
        required=False, max_length=5, label="Quiet hours from", help_text="HH:MM on each recipient's clock."
    )
    quiet_hours_end = forms.CharField(
        required=False, max_length=5, label="Quiet hours until", help_text="Leave both empty for no quiet hours."
    )
    consent_regions = forms.CharField(
        required=False,
        max_length=2000,
        label="Consent regions",
        help_text="ISO codes of countries whose numbers need recorded consent, e.g. US PR.",
    )
    block_shared_numbers = forms.BooleanField(
        required=False, label="Block shared numbers", help_text="A number two contacts share gets no messages."
    )
    auto_normalize_phone_numbers = forms.BooleanField(
        required=False, label="Normalise phone numbers", help_text="Store numbers in E.164 form (12066171234)."
    )
    auto_opt_in = forms.BooleanField(
        required=False, label="Ask for consent at once", help_text="Send the opt-in question on registration."
    )
    opt_in_interval_hours = forms.CharField(
        max_length=10, label="Ask again after (hours)", help_text="The least time between two opt-in questions."
    )
    opt_in_expiry_hours = forms.CharField(
        max_length=10, label="Answer awaited (hours)", help_text="How long a reply counts as the answer."
    )
    opt_out_keywords = forms.CharField(
        required=False,
        max_length=2000,
        label="Extra opt-out words",
        help_text="Besides STOP and the other standard words, e.g. SITISHA.",
    )
    opt_in_keywords = forms.CharField(
        required=False,
        max_length=2000,
        label="Extra opt-in words",
        help_text="Besides START and the other standard words, e.g. ANZA.",
    )
    survey_skip_word = forms.CharField(
        required=False,
        max_length=32,
        label="Survey skip word",
        help_text="The reply that skips a survey question (it keeps the value offered), e.g. #SKIP or RUKA.",
    )

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.fields["default_time_zone"].widget = forms.Select(choices=_zones())
        self.fields["default_country"].widget = forms.Select(choices=phone.country_choices())

    @staticmethod
    def initial_from(current: dict[str, Any]) -> dict[str, Any]:
        """The form's values for the settings as GET …/settings answers them."""
        quiet = current.get("quiet_hours") or {}
        lists = ("sms_languages", "consent_regions", "opt_out_keywords", "opt_in_keywords")
        return {
            **{k: current[k] for k in current if k not in (*lists, "quiet_hours")},
            **{k: " ".join(current[k]) for k in lists},
            "quiet_hours_start": quiet.get("start", ""),
            "quiet_hours_end": quiet.get("end", ""),
        }

    def changes(self) -> dict[str, Any]:
        d = self.cleaned_data
        start, end = d["quiet_hours_start"].strip(), d["quiet_hours_end"].strip()

        def hours(name: str) -> Any:
            text = d[name].strip()
            return int(text) if text.isdigit() else text  # anything else: the service words the problem

        return {
            "default_time_zone": d["default_time_zone"],
            "default_country": d["default_country"].strip().upper(),
            "default_language": d["default_language"].strip(),
            "sms_languages": split_words(d["sms_languages"]),
            # one of the two empty: passed on as typed, so the service says both are needed
            "quiet_hours": None if not start and not end else {"start": start, "end": end},
            "consent_regions": [r.upper() for r in split_words(d["consent_regions"])],
            "block_shared_numbers": d["block_shared_numbers"],
            "auto_normalize_phone_numbers": d["auto_normalize_phone_numbers"],
            "auto_opt_in": d["auto_opt_in"],
            "opt_in_interval_hours": hours("opt_in_interval_hours"),
            "opt_in_expiry_hours": hours("opt_in_expiry_hours"),
            "opt_out_keywords": split_words(d["opt_out_keywords"]),
            "opt_in_keywords": split_words(d["opt_in_keywords"]),
            # left empty: unchanged (the word is never empty)
            **({"survey_skip_word": d["survey_skip_word"].strip()} if d["survey_skip_word"].strip() else {}),
        }


SETTINGS_REFUSALS = {
    "quiet_hours.end": "quiet_hours_end",
    "quiet_hours": "quiet_hours_start",
    "sms_languages": "sms_languages",
    "consent_regions": "consent_regions",
    **{name: name for name in ("default_time_zone", "default_country", "default_language", "opt_in_interval_hours")},
    "opt_in_expiry_hours": "opt_in_expiry_hours",
    "opt_out_keywords": "opt_out_keywords",
    "opt_in_keywords": "opt_in_keywords",
    "survey_skip_word": "survey_skip_word",
}


# --- API keys ------------------------------------------------------------------------------------
SCOPE_HELP = {
    "read": "read everything (every GET)",
    "send": "send messages, opt-in requests and surveys; run broadcasts and alerts",
    "write": "create, change and delete cases, mobile workers, keywords, surveys, gateways, routes, webhooks, settings",
    "admin": "API keys, the audit log, and settings that weaken a legal rule",
}


class ApiKeyForm(forms.Form):
    name = forms.CharField(
        max_length=100, required=False, help_text="What the key is for (e.g. the CommCare forwarder)."
    )
    scopes = forms.MultipleChoiceField(
        choices=[(s, f"{s} — {SCOPE_HELP[s]}") for s in SCOPES],
        initial=list(DEFAULT_SCOPES),
        widget=forms.CheckboxSelectMultiple,
        help_text="What the key may do. A key with admin may also issue keys and weaken legal rules.",
    )
