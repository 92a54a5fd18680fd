from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from datetime import time, timedelta
from smtplib import SMTPException
from typing import Any, cast

import phonenumbers
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django.utils.text import slugify

from casemsg.core import actor, errors, phone, timezones
from casemsg.core.errors import InputError
from casemsg.core.phone import DEFAULT_CONSENT_REGIONS
from casemsg.projects import signals
from casemsg.projects.models import (
    DEFAULT_SCOPES,
    SCOPES,
    ApiKey,
    AuditEntry,
    Invitation,
    Membership,
    Project,
    hash_key,
)


def create_project(
    slug: str,
    name: str,
    time_zone: str = "UTC",
    language: str = "en",
    languages: list[str] | None = None,
    scopes: Sequence[str] = SCOPES,
    country: str | None = None,
) -> tuple[Project, str]:
    """A new project and its first API key (the plain key is returned once; only its hash is kept). The
        first key has every scope, admin included, unless `scopes` says otherwise: it is the one the
        installation hands to whoever sets the project up (keys issued later have DEFAULT_SCOPES). The default
    country (local phone numbers are read as its numbers) is the time zone's unless `country` is given ("" for
    none): Africa/Nairobi → KE, UTC → none."""
    scopes = checked_scopes(scopes)
    if not slug or slugify(slug) != slug:
        raise InputError(
            errors.INVALID_SLUG, f"'{slug}' is not a valid slug: use lowercase letters, digits and dashes."
        )
    if not timezones.is_valid(time_zone):
        raise InputError(errors.INVALID_TIME_ZONE, f"'{time_zone}' is not an IANA time zone name.")
    country = phone.country_of_zone(time_zone) if country is None else country.strip().upper()
    if country and not phone.is_country(country):
        raise InputError(
            errors.VALIDATION_ERROR, f"default_country: '{country[:8]}' is not an ISO 3166 country code, such as KE."
        )
    if Project.objects.filter(slug=slug).exists():
        raise InputError(errors.PROJECT_EXISTS, f"A project '{slug}' already exists.", 409)
    langs = list(dict.fromkeys([language, *(languages or [])]))
    with transaction.atomic():
        project = Project.objects.create(
            slug=slug,
            name=name or slug,
            default_time_zone=time_zone,
            default_country=country,
            default_language=language,
            sms_languages=langs,
        )
        key = ApiKey.issue(project, scopes=scopes)
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


# --- invitations and password links --------------------------------------------------------------
# How long an invitation link works; a password link (Django's token) works settings.PASSWORD_RESET_TIMEOUT.
INVITATION_DAYS = 7


def invite(
    project: Project, email: str, role: str, by: AbstractBaseUser | AnonymousUser | None
) -> tuple[Invitation, str]:
    """A one-time invitation of `email` to the project with `role`; returns the row and the token of its link
    (shown once: only its hash is kept). An address that already has an account is added by its username on
    the members page instead (USER_EXISTS would be a guess about someone else's account, so: VALIDATION_ERROR
    naming the form to use)."""
    _checked_role(role)
    address = (email or "").strip()
    try:
        validate_email(address)
    except ValidationError:
        raise InputError(errors.VALIDATION_ERROR, f"email: '{address[:80]}' is not an email address.") from None
    if get_user_model().objects.filter(email__iexact=address, is_active=True).exists():
        raise InputError(
            errors.VALIDATION_ERROR,
            f"An account with the email {address} exists already: add it with 'Add a member' (by its email).",
        )
    token = secrets.token_urlsafe(32)
    row = Invitation.objects.create(
        project=project,
        email=address,
        role=role,
        token_hash=hash_key(token),
        invited_by_id=by.pk if by is not None and by.is_authenticated else None,
        expires_on=timezone.now() + timedelta(days=INVITATION_DAYS),
    )
    return row, token


def open_invitation(token: str) -> Invitation:
    """The invitation of this link's token while it may still be used; INVITATION_NOT_FOUND (404),
    INVITATION_USED or INVITATION_EXPIRED (410) otherwise."""
    row = Invitation.objects.select_related("project").filter(token_hash=hash_key(token or "")).first()
    _usable(row)
    assert row is not None
    return row


def _usable(row: Invitation | None) -> None:
    if row is None:
        raise InputError(errors.INVITATION_NOT_FOUND, "This invitation link is not valid.", 404)
    if row.used_on is not None:
        raise InputError(
            errors.INVITATION_USED,
            f"This invitation was used on {row.used_on:%Y-%m-%d %H:%M} UTC: log in instead.",
            410,
        )
    if row.expires_on <= timezone.now():
        raise InputError(
            errors.INVITATION_EXPIRED,
            f"This invitation expired on {row.expires_on:%Y-%m-%d %H:%M} UTC; ask the project's owner for a new one.",
            410,
        )


def accept_invitation(token: str, username: str, password: str) -> AbstractBaseUser:
    """Use an invitation: a new account (this username, the invited email, this password) with the
    invitation's role in its project, all in one transaction; the link then works no more. The password is
    checked by the installation's validators (VALIDATION_ERROR with their sentences); a username taken is
    USERNAME_TAKEN."""
    User = get_user_model()
    with transaction.atomic():
        row = (
            Invitation.objects.select_for_update().select_related("project").filter(token_hash=hash_key(token)).first()
        )
        _usable(row)
        assert row is not None
        name = (username or "").strip()
        if not name:
            raise InputError(errors.USERNAME_REQUIRED, "Choose a username.")
        if User.objects.filter(username=name).exists():
            raise InputError(errors.USERNAME_TAKEN, f"The username '{name}' is taken; choose another.", 409)
        user = User(username=name, email=row.email)
        try:
            user.full_clean(exclude=["password"])
            validate_password(password, user)
        except ValidationError as e:
            raise InputError(errors.VALIDATION_ERROR, " ".join(e.messages)) from None
        user.set_password(password)
        user.save()
        add_member(row.project, user, row.role)
        row.used_on, row.user = timezone.now(), user
        row.save(update_fields=["used_on", "user"])
    return user


def email_invitation(row: Invitation, link: str) -> str | None:
    """Email the invitation's link through the installation's email backend (CASEMSG_EMAIL_URL); None when
    it was handed over, else why not (the page then says to pass the link on by hand)."""
    who = row.invited_by.get_username() if row.invited_by is not None else "The project's owner"
    body = (
        f"{who} invites you to the project '{row.project.name}' on casemsg, as {row.role}.\n\n"
        f"Open this link to choose a username and a password and join:\n{link}\n\n"
        f"The link works once, until {row.expires_on:%Y-%m-%d %H:%M} UTC."
    )
    try:
        send_mail(f"Invitation to {row.project.name} on casemsg", body, None, [row.email])
    except (OSError, SMTPException) as e:
        return str(e) or type(e).__name__
    return None


def pending_invitations(project: Project) -> QuerySet[Invitation]:
    """The project's invitations not used and not expired, newest first (the members page)."""
    return Invitation.objects.filter(project=project, used_on__isnull=True, expires_on__gt=timezone.now()).order_by(
        "-created_on", "-pk"
    )


def password_token(user: AbstractBaseUser) -> tuple[str, str]:
    """The (uidb64, token) of a one-time link setting the user's password, the page `web:password_reset_confirm`
    (the admin's 'Reset link' on the members page, `casemsg users add`): Django's password reset token, which
    works once — setting the password changes what it signs — and for settings.PASSWORD_RESET_TIMEOUT."""
    # (typed for auth.User; any user model with a password and last_login signs the same way)
    return urlsafe_base64_encode(force_bytes(user.pk)), default_token_generator.make_token(cast(Any, user))


# --- API keys ------------------------------------------------------------------------------------
_KEY_NAME_MAX = 100


def checked_scopes(scopes: Sequence[str] | None) -> list[str]:
    """The scopes as stored (in SCOPES' order, each once); INVALID_SCOPE for an unknown one or none."""
    given = [str(s).strip().lower() for s in scopes or []]
    unknown = [s for s in given if s not in SCOPES]
    if unknown or not given:
        what = f"'{unknown[0]}' is not a scope" if unknown else "A key needs at least one scope"
        raise InputError(errors.INVALID_SCOPE, f"{what}; the scopes are {', '.join(SCOPES)}.")
    return [s for s in SCOPES if s in given]


def _key_json(row: ApiKey) -> dict[str, Any]:
    """A key as the audit log shows it (never the key itself)."""
    return {"id": row.pk, "prefix": row.prefix, "name": row.name, "scopes": list(row.scopes or [])}


def issue_key(project: Project, name: str = "", scopes: Sequence[str] | None = None) -> tuple[ApiKey, str]:
    """Another API key for the project with these scopes (default DEFAULT_SCOPES: not admin); the plain
    key is returned once (only its hash is kept). Recorded in the audit log."""
    name = name.strip()
    if len(name) > _KEY_NAME_MAX or "\x00" in name:
        raise InputError(errors.INVALID_VALUE, f"A key's name is at most {_KEY_NAME_MAX} characters, without NUL.")
    chosen = checked_scopes(DEFAULT_SCOPES if scopes is None else scopes)
    with transaction.atomic():
        row, key = ApiKey.issue_row(project, name, chosen)
        _audit(project, [("api_key", None, _key_json(row), False)])
    return row, key


def list_keys(project: Project) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(project=project).order_by("pk")


# A key's last use is written at most this often: a key sending thousands of requests a minute costs one
# UPDATE a minute, not one per request.
KEY_USE_RESOLUTION = timedelta(minutes=1)


def note_key_used(row: ApiKey) -> None:
    """Record that the API accepted this key now (shown by `casemsg project keys`, the API keys page and
    GET …/keys), unless it was recorded less than KEY_USE_RESOLUTION ago."""
    now = timezone.now()
    if row.last_used_on is not None and now - row.last_used_on < KEY_USE_RESOLUTION:
        return
    ApiKey.objects.filter(pk=row.pk).update(last_used_on=now)
    row.last_used_on = now


def revoke_key(project: Project, key_id: int) -> ApiKey:
    """Revoke one of the project's keys: it stops working at once. Revoking twice changes nothing.
    Recorded in the audit log."""
    with transaction.atomic():
        row = ApiKey.objects.select_for_update().filter(project=project, pk=key_id).first()
        if row is None:
            raise InputError(errors.KEY_NOT_FOUND, f"No API key {key_id} in this project.", 404)
        if not row.revoked:
            row.revoked, row.revoked_on = True, timezone.now()
            row.save(update_fields=["revoked", "revoked_on"])
            shown = _key_json(row)
            _audit(project, [("api_key", {**shown, "revoked": False}, {**shown, "revoked": True}, False)])
    return row


# --- the audit log ---------------------------------------------------------------------------------
def _audit(project: Project, rows: Sequence[tuple[str, Any, Any, bool]]) -> None:
    """Write audit entries (setting, before, after, weakens) for one change, as the current actor, inside
    the caller's transaction."""
    who = actor.current()
    now = timezone.now()
    AuditEntry.objects.bulk_create(
        AuditEntry(
            project=project,
            at=now,
            source=who.source,
            who=who.who[:200],
            setting=setting,
            before=before,
            after=after,
            weakens=weakens,
        )
        for setting, before, after, weakens in rows
    )


# --- texts ---------------------------------------------------------------------------------------
def save_texts(
    project: Project, texts: dict[str, dict[str, str]], entries: Sequence[tuple[str, Any, Any, bool]]
) -> None:
    """Store the project's own translations of the texts casemsg sends, with their audit entries (setting,
    before, after, weakens), in the caller's transaction. casemsg.consent.texts checked them (the catalogue,
    the placeholders, the legal rules) and holds the project's row locked."""
    project.texts = texts
    project.save(update_fields=["texts"])
    _audit(project, entries)


# --- settings ------------------------------------------------------------------------------------
# What GET/PATCH …/settings read and change. The texts casemsg sends have their own rules and their own
# endpoints (casemsg.consent.texts, …/texts); the project's extra opt-out and opt-in words are here.
SETTINGS = (
    "default_time_zone",
    "default_country",
    "default_language",
    "sms_languages",
    "quiet_hours",
    "consent_regions",
    "block_shared_numbers",
    "auto_normalize_phone_numbers",
    "opt_in_interval_hours",
    "opt_in_expiry_hours",
    "auto_opt_in",
    "opt_out_keywords",
    "opt_in_keywords",
    "survey_skip_word",
)
# The settings that keep messaging lawful. Weakening one (see `weakenings`) needs the owner role on the
# pages or an API key with the admin scope (403 WEAKENS_LEGAL_RULE otherwise); every change of any setting
# is written to the audit log all the same.
LEGAL_RULES = ("consent_regions", "quiet_hours", "opt_out_keywords", "opt_in_keywords", "block_shared_numbers")
_WORDS = ("opt_out_keywords", "opt_in_keywords")
_WORD_MAX, _WORDS_MAX = 32, 50
_SWITCHES = ("block_shared_numbers", "auto_normalize_phone_numbers", "auto_opt_in")
# field: (least, most) in hours; a year at most. An interval of 0 lets the question be asked at any time.
_HOURS = {"opt_in_interval_hours": (0, 8760), "opt_in_expiry_hours": (1, 8760)}
# BCP 47-ish: a lowercase primary language ("sw", "fil") and optional subtags ("pt-BR", "zh-Hant"), at most
# 16 characters (the column of a message's and a project's language).
_LANGUAGE = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{1,8})*")
_LANGUAGE_MAX, _LANGUAGES_MAX = 16, 50
# The regions phonenumbers knows, and the default's US territories (UM has no numbering plan of its own).
_REGIONS = frozenset(phonenumbers.SUPPORTED_REGIONS) | frozenset(DEFAULT_CONSENT_REGIONS)
# The skip word: one word (replies are compared without case), not one a survey already reads otherwise
# (#STOP ends it; the opt-out and opt-in words are the router's; a number is a choice).
_SKIP_WORD = re.compile(r"[^\s\d][^\s]{0,31}")
_NOT_SKIP_WORDS = frozenset({"#STOP", "STOP", "START", "HELP", "YES", "NO", "OK"})
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
        "default_country": project.default_country,
        "default_language": project.default_language,
        "sms_languages": list(project.sms_languages or []),
        "quiet_hours": quiet,
        "consent_regions": list(project.consent_regions or []),
        "block_shared_numbers": project.block_shared_numbers,
        "auto_normalize_phone_numbers": project.auto_normalize_phone_numbers,
        "opt_in_interval_hours": project.opt_in_interval_hours,
        "opt_in_expiry_hours": project.opt_in_expiry_hours,
        "auto_opt_in": project.auto_opt_in,
        "opt_out_keywords": _words(project.opt_out_keywords),
        "opt_in_keywords": _words(project.opt_in_keywords),
        "survey_skip_word": project.survey_skip_word,
    }


def _words(stored: object) -> list[str]:
    """A stored word list as the settings show it: upper-case, each once, in order (older rows may hold
    lower-case or repeated words; consent.words reads them the same way)."""
    if not isinstance(stored, list):
        return []
    return list(dict.fromkeys(str(w).strip().upper() for w in stored if str(w).strip()))


def _quiet_minutes(quiet: dict[str, str] | None) -> set[int]:
    """The minutes of the day (0–1439) a quiet-hours window covers; 21:00–08:00 crosses midnight."""
    if not quiet:
        return set()
    start, end = (int(quiet[k][:2]) * 60 + int(quiet[k][3:]) for k in ("start", "end"))
    if start < end:
        return set(range(start, end))
    return set(range(start, 1440)) | set(range(0, end))


def weakenings(before: dict[str, Any], after: dict[str, Any]) -> dict[str, str]:
    """{setting: why} for each legal rule the change from `before` to `after` (both as get_settings shows
    them) weakens: a consent region removed, quiet hours switched off or narrowed (some minute that was
    quiet is not any more), an opt-out word removed, an opt-in word added, block_shared_numbers switched
    off. Strengthening, or changing nothing, is not weakening."""
    out: dict[str, str] = {}
    removed = [r for r in before["consent_regions"] if r not in after["consent_regions"]]
    if removed:
        out["consent_regions"] = f"removes {', '.join(removed)} from the consent regions"
    if not _quiet_minutes(before["quiet_hours"]) <= _quiet_minutes(after["quiet_hours"]):
        out["quiet_hours"] = "switches quiet hours off" if after["quiet_hours"] is None else "narrows quiet hours"
    dropped = [w for w in before["opt_out_keywords"] if w not in after["opt_out_keywords"]]
    if dropped:
        out["opt_out_keywords"] = f"removes the opt-out words {', '.join(dropped)}"
    added = [w for w in after["opt_in_keywords"] if w not in before["opt_in_keywords"]]
    if added:
        out["opt_in_keywords"] = f"adds the opt-in words {', '.join(added)}"
    if before["block_shared_numbers"] and not after["block_shared_numbers"]:
        out["block_shared_numbers"] = "switches block_shared_numbers off"
    return out


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


def update_settings(project: Project, changes: dict[str, Any], *, may_weaken: bool = False) -> Project:
    """Change any subset of SETTINGS, all or nothing: every value is checked (the first wrong one is a 422
    naming its field) and written in one transaction, with one audit-log entry per setting whose value
    changed (who: the current actor, casemsg.core.actor).

    `quiet_hours` is {"start": "HH:MM", "end": "HH:MM"} (read on each recipient's clock; 21:00-08:00 crosses
    midnight) or None for none; `default_language` must be one of `sms_languages` (both as changed).

    A change that weakens a legal rule (`weakenings`) is refused with 403 WEAKENS_LEGAL_RULE unless
    `may_weaken`: the caller passes True only for an owner on the pages, an API key with the admin scope
    or the installation's command line. Leaving it out refuses, so a new caller cannot forget the rule."""
    with transaction.atomic():
        # locked: two changes at once cannot leave a default language outside the languages
        current = Project.objects.select_for_update().get(pk=project.pk)
        fields = _checked(current, changes)
        if fields:
            shown_before = get_settings(current)
            before = {name: getattr(current, name) for name in fields}
            for name, value in fields.items():
                setattr(current, name, value)
            shown_after = get_settings(current)
            weak = weakenings(shown_before, shown_after)
            if weak and not may_weaken:
                raise InputError(
                    errors.WEAKENS_LEGAL_RULE,
                    f"{next(iter(weak))}: this change {'; '.join(weak.values())}, which weakens a legal rule: it "
                    "needs the owner role on the pages or an API key with the admin scope.",
                    403,
                )
            for name, value in fields.items():
                setattr(project, name, value)
            current.save(update_fields=list(fields))
            _audit(
                current,
                [
                    (name, shown_before[name], shown_after[name], name in weak)
                    for name in SETTINGS
                    if shown_before[name] != shown_after[name]
                ],
            )
            changed = {name: old for name, old in before.items() if old != fields[name]}
            if changed:
                signals.settings_changed.send(sender=Project, project=current, changed=changed)
    return project


def _word_list(field: str, value: object) -> list[str]:
    words = _string_list(field, value, _WORDS_MAX)
    out: list[str] = []
    for i, word in enumerate(words):
        w = word.strip().upper()
        if not w or len(w) > _WORD_MAX or any(c.isspace() for c in w) or not (w[0].isalnum() and w[-1].isalnum()):
            raise _invalid(
                f"{field}[{i}]",
                f"{_shown(word)} is not one word: use letters and digits (at most {_WORD_MAX} characters), "
                "such as 'SITISHA'; a message counts only as the whole word, punctuation around it ignored.",
            )
        out.append(w)
    return list(dict.fromkeys(out))


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
    if "default_country" in changes:
        code = changes["default_country"]
        code = code.strip().upper() if isinstance(code, str) else code
        if code != "" and not phone.is_country(code):
            raise _invalid(
                "default_country",
                f"{_shown(code)} is not an ISO 3166 country code with phone numbers, such as 'KE'; \"\" for none.",
            )
        fields["default_country"] = code
    if "survey_skip_word" in changes:
        word = changes["survey_skip_word"]
        word = word.strip().upper() if isinstance(word, str) else word
        if not isinstance(word, str) or not _SKIP_WORD.fullmatch(word):
            raise _invalid(
                "survey_skip_word", f"{_shown(word)} is not one word of at most 32 characters, such as #SKIP."
            )
        if word in _NOT_SKIP_WORDS:
            raise _invalid("survey_skip_word", f"'{word}' already means something else in a survey; choose another.")
        fields["survey_skip_word"] = word
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
    for name in _WORDS:
        if name in changes:
            fields[name] = _word_list(name, changes[name])
    out_words = set(fields.get("opt_out_keywords", _words(project.opt_out_keywords)))
    both = [w for w in fields.get("opt_in_keywords", _words(project.opt_in_keywords)) if w in out_words]
    if both and any(name in fields for name in _WORDS):
        raise _invalid("opt_in_keywords", f"{both[0]} is an opt-out word too; a word may be only one of the two.")
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
