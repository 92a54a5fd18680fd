from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import time
from typing import Any

import phonenumbers
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.text import slugify

from casemsg.core import errors, timezones
from casemsg.core.errors import InputError
from casemsg.core.phone import DEFAULT_CONSENT_REGIONS
from casemsg.projects import signals
from casemsg.projects.models import ApiKey, Membership, Project


def create_project(
    slug: str, name: str, time_zone: str = "UTC", language: str = "en", languages: list[str] | None = None
) -> tuple[Project, str]:
    """A new project and its first API key (the plain key is returned once; only its hash is kept)."""
    if not slug or slugify(slug) != slug:
        raise InputError(
            errors.INVALID_SLUG, f"'{slug}' is not a valid slug: use lowercase letters, digits and dashes."
        )
    if not timezones.is_valid(time_zone):
        raise InputError(errors.INVALID_TIME_ZONE, f"'{time_zone}' is not an IANA time zone name.")
    if Project.objects.filter(slug=slug).exists():
        raise InputError(errors.PROJECT_EXISTS, f"A project '{slug}' already exists.", 409)
    langs = list(dict.fromkeys([language, *(languages or [])]))
    with transaction.atomic():
        project = Project.objects.create(
            slug=slug, name=name or slug, default_time_zone=time_zone, default_language=language, sms_languages=langs
        )
        key = ApiKey.issue(project)
    return project, key


# --- members and roles ---------------------------------------------------------------------------
# Lowest first: a role may do everything the roles before it may.
ROLES: tuple[str, ...] = (Membership.VIEWER, Membership.EDITOR, Membership.OWNER)


def role_rank(role: str | None) -> int:
    """0 for no role, then 1 viewer, 2 editor, 3 owner: compare with >=."""
    return ROLES.index(role) + 1 if role in ROLES else 0


def _checked_role(role: str) -> str:
    if role not in ROLES:
        raise InputError(errors.INVALID_ROLE, f"'{role}' is not a role; use {', '.join(ROLES)}.")
    return role


def role_of(user: AbstractBaseUser | AnonymousUser | None, project: Project) -> str | None:
    """The user's role in the project, None when they have none. A superuser is owner of every project;
    staff status alone gives no project (it is for the admin)."""
    if user is None or not user.is_authenticated or not user.is_active:
        return None
    if getattr(user, "is_superuser", False):
        return Membership.OWNER
    return Membership.objects.filter(project=project, user_id=user.pk).values_list("role", flat=True).first()


def projects_of(user: AbstractBaseUser | AnonymousUser) -> QuerySet[Project]:
    """The projects a user may open (every project for a superuser), by slug."""
    if not user.is_authenticated or not user.is_active:
        return Project.objects.none()
    if getattr(user, "is_superuser", False):
        return Project.objects.order_by("slug")
    return Project.objects.filter(memberships__user_id=user.pk).order_by("slug")


def roles_of(user: AbstractBaseUser | AnonymousUser) -> list[tuple[Project, str]]:
    """The user's projects with their role in each, by slug (every project as owner for a superuser)."""
    if getattr(user, "is_superuser", False) and user.is_active:
        return [(p, Membership.OWNER) for p in projects_of(user)]
    if not user.is_authenticated or not user.is_active:
        return []
    rows = Membership.objects.filter(user_id=user.pk).select_related("project").order_by("project__slug")
    return [(m.project, m.role) for m in rows]


def members(project: Project) -> QuerySet[Membership]:
    return Membership.objects.filter(project=project).select_related("user").order_by("user__username")


def add_member(project: Project, user: AbstractBaseUser, role: str) -> Membership:
    """Make the user a member with this role, or change the role of an existing member (one row per user
    and project). Demoting the last owner is refused (LAST_OWNER)."""
    _checked_role(role)
    with transaction.atomic():
        # locked: two changes at once cannot both demote "the other" owner
        rows = list(Membership.objects.select_for_update().filter(project=project).order_by("pk"))
        mine = next((m for m in rows if m.user_id == user.pk), None)
        if mine is None:
            return Membership.objects.create(project=project, user_id=user.pk, role=role)
        if mine.role == Membership.OWNER and role != Membership.OWNER:
            _keep_an_owner(rows, mine)
        if mine.role != role:
            mine.role = role
            mine.save(update_fields=["role"])
        return mine


def remove_member(project: Project, user: AbstractBaseUser) -> bool:
    """Remove the user from the project; False when they were not a member. The last owner stays."""
    with transaction.atomic():
        rows = list(Membership.objects.select_for_update().filter(project=project).order_by("pk"))
        mine = next((m for m in rows if m.user_id == user.pk), None)
        if mine is None:
            return False
        if mine.role == Membership.OWNER:
            _keep_an_owner(rows, mine)
        mine.delete()
        return True


def _keep_an_owner(rows: Sequence[Membership], leaving: Membership) -> None:
    if not any(m.role == Membership.OWNER and m.pk != leaving.pk for m in rows):
        raise InputError(errors.LAST_OWNER, "This is the project's only owner; make another member owner first.", 409)


def find_user(username_or_email: str) -> AbstractBaseUser:
    """The active account with this username, or else this email address (USER_NOT_FOUND otherwise; an
    email address that several accounts share names none of them)."""
    User = get_user_model()
    text = username_or_email.strip()
    found = list(User.objects.filter(Q(username=text) | Q(email__iexact=text), is_active=True)[:3])
    exact = [u for u in found if u.get_username() == text]
    if exact:
        return exact[0]
    if len(found) == 1 and text:
        return found[0]
    raise InputError(errors.USER_NOT_FOUND, f"No single user account has the username or email '{text}'.", 404)


# --- API keys ------------------------------------------------------------------------------------
_KEY_NAME_MAX = 100


def issue_key(project: Project, name: str = "") -> tuple[ApiKey, str]:
    """Another API key for the project; the plain key is returned once (only its hash is kept)."""
    name = name.strip()
    if len(name) > _KEY_NAME_MAX or "\x00" in name:
        raise InputError(errors.INVALID_VALUE, f"A key's name is at most {_KEY_NAME_MAX} characters, without NUL.")
    return ApiKey.issue_row(project, name)


def list_keys(project: Project) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(project=project).order_by("pk")


def revoke_key(project: Project, key_id: int) -> ApiKey:
    """Revoke one of the project's keys: it stops working at once. Revoking twice changes nothing."""
    row = ApiKey.objects.filter(project=project, pk=key_id).first()
    if row is None:
        raise InputError(errors.KEY_NOT_FOUND, f"No API key {key_id} in this project.", 404)
    if not row.revoked:
        row.revoked, row.revoked_on = True, timezone.now()
        row.save(update_fields=["revoked", "revoked_on"])
    return row


# --- settings ------------------------------------------------------------------------------------
# What GET/PATCH …/settings read and change. The compliance texts and extra keywords have their own rules
# (casemsg.consent.words) and are not here.
SETTINGS = (
    "default_time_zone",
    "default_language",
    "sms_languages",
    "quiet_hours",
    "consent_regions",
    "block_shared_numbers",
    "auto_normalize_phone_numbers",
    "opt_in_interval_hours",
    "opt_in_expiry_hours",
    "auto_opt_in",
)
_SWITCHES = ("block_shared_numbers", "auto_normalize_phone_numbers", "auto_opt_in")
# field: (least, most) in hours; a year at most. An interval of 0 lets the question be asked at any time.
_HOURS = {"opt_in_interval_hours": (0, 8760), "opt_in_expiry_hours": (1, 8760)}
# BCP 47-ish: a lowercase primary language ("sw", "fil") and optional subtags ("pt-BR", "zh-Hant"), at most
# 16 characters (the column of a message's and a project's language).
_LANGUAGE = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{1,8})*")
_LANGUAGE_MAX, _LANGUAGES_MAX = 16, 50
# The regions phonenumbers knows, and the default's US territories (UM has no numbering plan of its own).
_REGIONS = frozenset(phonenumbers.SUPPORTED_REGIONS) | frozenset(DEFAULT_CONSENT_REGIONS)
_HHMM = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")


def _hhmm(t: time) -> str:
    return f"{t.hour:02d}:{t.minute:02d}"


def get_settings(project: Project) -> dict[str, Any]:
    """The project's settings as GET …/settings answers them (quiet_hours null when there are none)."""
    start, end = project.quiet_hours_start, project.quiet_hours_end
    quiet = (
        {"start": _hhmm(start), "end": _hhmm(end)} if start is not None and end is not None and start != end else None
    )
    return {
        "default_time_zone": project.default_time_zone,
        "default_language": project.default_language,
        "sms_languages": list(project.sms_languages or []),
        "quiet_hours": quiet,
        "consent_regions": list(project.consent_regions or []),
        "block_shared_numbers": project.block_shared_numbers,
        "auto_normalize_phone_numbers": project.auto_normalize_phone_numbers,
        "opt_in_interval_hours": project.opt_in_interval_hours,
        "opt_in_expiry_hours": project.opt_in_expiry_hours,
        "auto_opt_in": project.auto_opt_in,
    }


def _invalid(field: str, sentence: str, code: str = errors.VALIDATION_ERROR) -> InputError:
    return InputError(code, f"{field}: {sentence}")


def _shown(value: object) -> str:
    """A wrong value as quoted in an error's sentence, cut short."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _language(field: str, value: object) -> str:
    if not isinstance(value, str) or len(value) > _LANGUAGE_MAX or not _LANGUAGE.fullmatch(value):
        raise _invalid(
            field,
            f"{_shown(value)} is not a language code: use a lowercase ISO 639 code with optional subtags, such as "
            f"'sw' or 'pt-BR' (at most {_LANGUAGE_MAX} characters).",
        )
    return value


def _quiet_time(field: str, value: object) -> time:
    m = _HHMM.fullmatch(value) if isinstance(value, str) else None
    if m is None:
        raise _invalid(field, f"{_shown(value)} is not a time of day: use HH:MM on a 24-hour clock, such as '21:00'.")
    return time(int(m.group(1)), int(m.group(2)))


def _quiet_hours(value: object) -> tuple[time | None, time | None]:
    if value is None:
        return None, None
    if not isinstance(value, dict) or set(value) != {"start", "end"}:
        raise _invalid("quiet_hours", 'give both start and end ({"start": "21:00", "end": "08:00"}), or null for none.')
    start, end = _quiet_time("quiet_hours.start", value["start"]), _quiet_time("quiet_hours.end", value["end"])
    if start == end:
        raise _invalid("quiet_hours", "start and end are the same time; send null for no quiet hours.")
    return start, end


def _string_list(field: str, value: object, most: int) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _invalid(field, "must be a list of strings.")
    if len(value) > most:
        raise _invalid(field, f"has {len(value)} entries; at most {most} are allowed.")
    return list(dict.fromkeys(value))  # the first of repeated entries, in the order given


def update_settings(project: Project, changes: dict[str, Any]) -> Project:
    """Change any subset of SETTINGS, all or nothing: every value is checked (the first wrong one is a 422
    naming its field) and written in one transaction.

    `quiet_hours` is {"start": "HH:MM", "end": "HH:MM"} (read on each recipient's clock; 21:00-08:00 crosses
    midnight) or None for none; `default_language` must be one of `sms_languages` (both as changed)."""
    with transaction.atomic():
        # locked: two changes at once cannot leave a default language outside the languages
        current = Project.objects.select_for_update().get(pk=project.pk)
        fields = _checked(current, changes)
        if fields:
            before = {name: getattr(current, name) for name in fields}
            for name, value in fields.items():
                setattr(current, name, value)
                setattr(project, name, value)
            current.save(update_fields=list(fields))
            changed = {name: old for name, old in before.items() if old != fields[name]}
            if changed:
                signals.settings_changed.send(sender=Project, project=current, changed=changed)
    return project


def _checked(project: Project, changes: dict[str, Any]) -> dict[str, Any]:
    """The model fields to write for these changes, each value checked."""
    unknown = sorted(set(changes) - set(SETTINGS))
    if unknown:
        raise _invalid(unknown[0], f"is not a project setting; the settings are {', '.join(SETTINGS)}.")
    for name, value in changes.items():
        if value is None and name != "quiet_hours":
            raise _invalid(name, "may not be null.")
    fields: dict[str, Any] = {}
    if "default_time_zone" in changes:
        tz = changes["default_time_zone"]
        if not isinstance(tz, str) or not timezones.is_valid(tz):
            raise _invalid(
                "default_time_zone",
                f"{_shown(tz)} is not an IANA time zone name, such as Africa/Nairobi.",
                errors.INVALID_TIME_ZONE,
            )
        fields["default_time_zone"] = tz
    if "sms_languages" in changes:
        langs = _string_list("sms_languages", changes["sms_languages"], _LANGUAGES_MAX)
        if not langs:
            raise _invalid("sms_languages", "needs at least one language.")
        fields["sms_languages"] = [_language(f"sms_languages[{i}]", v) for i, v in enumerate(langs)]
    if "default_language" in changes:
        fields["default_language"] = _language("default_language", changes["default_language"])
    default = fields.get("default_language", project.default_language)
    languages = fields.get("sms_languages", project.sms_languages or [])
    if ("default_language" in fields or "sms_languages" in fields) and default not in languages:
        raise _invalid(
            "default_language",
            f"'{default}' is not one of sms_languages ({', '.join(languages)}); add it there in the same change.",
        )
    if "quiet_hours" in changes:
        fields["quiet_hours_start"], fields["quiet_hours_end"] = _quiet_hours(changes["quiet_hours"])
    if "consent_regions" in changes:
        regions = _string_list("consent_regions", changes["consent_regions"], len(_REGIONS))
        for i, r in enumerate(regions):
            if r not in _REGIONS:
                sentence = f"{_shown(r)} is not an ISO 3166 region code with phone numbers, such as 'US' or 'KE'."
                raise _invalid(f"consent_regions[{i}]", sentence)
        fields["consent_regions"] = regions
    for name in _SWITCHES:
        if name in changes:
            if not isinstance(changes[name], bool):
                raise _invalid(name, "must be true or false.")
            fields[name] = changes[name]
    for name, (least, most) in _HOURS.items():
        if name in changes:
            hours = changes[name]
            if not isinstance(hours, int) or isinstance(hours, bool) or not least <= hours <= most:
                raise _invalid(name, f"must be a whole number of hours from {least} to {most}.")
            fields[name] = hours
    return fields
