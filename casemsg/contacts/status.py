"""Can this contact be messaged now, on which channel, and if not, why and how to fix it.

`statuses()` works on a batch (the send pipeline checks eligibility for many messages at once): it
loads registry entries, opt-outs and gateway names for the whole batch in a few queries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db.models import Q

from casemsg.cases.models import Case
from casemsg.contacts import registry
from casemsg.contacts import whatsapp as wa_windows
from casemsg.contacts.models import PhoneEntry
from casemsg.contacts.optouts import OptedOut
from casemsg.core import errors, phone, timezones
from casemsg.gateways import failover
from casemsg.gateways.models import Gateway
from casemsg.gateways.routing import Router
from casemsg.projects.models import Project
from casemsg.workers.models import MobileWorker

Contact = Case | MobileWorker


@dataclass
class Problem:
    code: str
    fix: str | None = None
    detail: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return errors.as_dict(self.code, fix=self.fix, detail=self.detail)


@dataclass
class ChannelStatus:
    error: Problem | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "error": self.error.as_dict() if self.error else None}


@dataclass
class ContactStatus:
    contact: Contact
    phone_number: str | None
    phone_check: phone.PhoneCheck | None
    verified: bool
    two_way: bool
    two_way_owner: PhoneEntry | None
    sms: ChannelStatus
    two_way_sms: ChannelStatus
    email: ChannelStatus
    email_address: str
    time_zone: str
    time_zone_source: str
    language_code: str
    language_source: str
    gateway: str | None
    needs_consent: bool
    warnings: list[Problem] = field(default_factory=list)
    # WhatsApp: the number (contact_whatsapp_number, else the phone number), its problem, and when the
    # 24-hour window of its latest message to one of the project's WhatsApp numbers closes.
    whatsapp: ChannelStatus = field(default_factory=ChannelStatus)
    whatsapp_number: str = ""
    # read on first use, for the whole batch in one query (lists and the send path never need it)
    windows: _Windows | None = None

    @property
    def window_open_until(self) -> datetime | None:
        if self.windows is None or not self.whatsapp_number:
            return None
        return self.windows.open_until(self.whatsapp_number, self.contact.project_id)

    def as_dict(self) -> dict[str, Any]:
        owner = None
        if self.two_way_owner is not None:
            owner = describe_holder(self.two_way_owner, self.contact.project_id)
        return {
            "phone_number": self.phone_number,
            "verified": self.verified,
            "two_way": self.two_way,
            "two_way_owner": owner,
            "needs_consent": self.needs_consent,
            "sms": self.sms.as_dict(),
            "two_way_sms": self.two_way_sms.as_dict(),
            "email": {**self.email.as_dict(), "address": self.email_address or None},
            "whatsapp": {
                **self.whatsapp.as_dict(),
                "number": self.whatsapp_number or None,
                "window_open_until": self.window_open_until.isoformat() if self.window_open_until else None,
            },
            "time_zone": self.time_zone,
            "time_zone_source": self.time_zone_source,
            "language_code": self.language_code,
            "language_source": self.language_source,
            "gateway": self.gateway,
            "warnings": [w.as_dict() for w in self.warnings],
        }


def describe_holder(entry: PhoneEntry, viewer_project_id: int) -> str:
    """Who holds a number, as far as the viewer may see: names only within the viewer's project."""
    if entry.project_id != viewer_project_id:
        return "a contact in another project"
    if entry.case is not None:
        c = entry.case
        return f"case {c.case_id}" + (f" ({c.name})" if c.name else "")
    return f"mobile worker {entry.worker.username}" if entry.worker is not None else "another contact"


def resolve_time_zone(value: str, project: Project) -> tuple[str, str, Problem | None]:
    """(zone, source, problem): the contact's IANA zone, else the project's default (UTC by default)."""
    value = (value or "").strip()
    if value:
        if timezones.is_valid(value):
            return value, "contact", None
        problem = Problem(
            errors.INVALID_TIME_ZONE,
            detail=f"time_zone '{value}' is not an IANA time zone; using {project.default_time_zone}.",
        )
        return project.default_time_zone, "project", problem
    return project.default_time_zone, "project", None


def resolve_language(value: str, project: Project) -> tuple[str, str, Problem | None]:
    value = (value or "").strip()
    if value:
        if value in (project.sms_languages or []):
            return value, "contact", None
        problem = Problem(
            errors.UNKNOWN_LANGUAGE_CODE,
            detail=f"language_code '{value}' is not one of the project's SMS languages "
            f"({', '.join(project.sms_languages or [])}); using {project.default_language}.",
        )
        return project.default_language, "project", problem
    return project.default_language, "project", None


@dataclass
class _Facts:
    raw_phone: str
    verified_flag: bool
    email: str
    time_zone: str
    language: str
    backend: str
    name: str
    active: bool
    is_case: bool
    whatsapp: str = ""  # contact_whatsapp_number, when it differs from the phone number


def _facts(contact: Contact) -> _Facts:
    if isinstance(contact, Case):
        p = contact.properties or {}
        return _Facts(
            raw_phone=p.get("contact_phone_number") or "",
            verified_flag=registry.is_verified_value(p.get("contact_phone_number_is_verified")),
            email=(p.get("commcare_email_address") or "").strip(),
            time_zone=p.get("time_zone") or "",
            language=p.get("language_code") or "",
            backend=(p.get("contact_backend_id") or "").strip(),
            name=contact.name,
            active=not contact.closed,
            is_case=True,
            whatsapp=str(p.get("contact_whatsapp_number") or "").strip(),
        )
    numbers = contact.phone_numbers or []
    # A worker's messaging number: the first verified one, else the first.
    first = next((n for n in numbers if n.get("verified")), numbers[0] if numbers else None)
    return _Facts(
        raw_phone=first["number"] if first else "",
        verified_flag=bool(first and first.get("verified")),
        email=contact.email or "",
        time_zone=contact.time_zone,
        language=contact.language_code,
        backend="",
        name=contact.name or contact.username,
        active=contact.active,
        is_case=False,
    )


def statuses(contacts: Sequence[Contact], routes: bool = True) -> list[ContactStatus]:
    """Each contact's status, read for the whole batch. Without `routes`, `gateway` is left as the contact's
    own contact_backend_id (or None): the send pipeline, which routes each message itself, skips reading
    the routes and circuits a second time (four queries per batch)."""
    facts = [_facts(c) for c in contacts]
    # With the project's default country, a local number stored before (0711 222 333) is refused with its
    # international form as the fix, which the case page offers to apply.
    checks = [
        phone.check(f.raw_phone, country=c.project.default_country) if f.raw_phone else None
        for c, f in zip(contacts, facts, strict=True)
    ]
    numbers = {c.number for c in checks if c is not None and c.number is not None and c.ok}
    entries = registry.entries_for_numbers(numbers, known=contacts) if numbers else {}
    wa_checks = [phone.check(f.whatsapp) if f.whatsapp else None for f in facts]
    wa_numbers = {c.number for c in wa_checks if c is not None and c.number is not None and c.ok}
    opted_out = OptedOut(numbers | wa_numbers)
    windows = _Windows(numbers | wa_numbers, {c.project_id for c in contacts})
    backends = {f.backend for f in facts if f.backend}
    gateways = {(g.name, g.project_id) for g in Gateway.objects.filter(name__in=backends).only("name", "project_id")}
    out: list[ContactStatus] = []
    for contact, f, chk, wa_check in zip(contacts, facts, checks, wa_checks, strict=True):
        st = _status(contact, f, chk, entries, opted_out, gateways)
        _whatsapp(st, f, wa_check, opted_out, windows)
        out.append(st)
    if routes:
        _gateways_now(out, checks)
    return out


def _gateways_now(out: list[ContactStatus], checks: Sequence[phone.PhoneCheck | None]) -> None:
    """The gateway an SMS to each contact would use now, for those without a contact_backend_id: its route's
    gateway, or the route's next one while that one is disabled or its circuit open (gateways.failover)."""
    todo = [(st, chk) for st, chk in zip(out, checks, strict=True) if not st.gateway and chk is not None and chk.number]
    if not todo:
        return
    router = Router({st.contact.project_id for st, _ in todo})
    chains: list[tuple[ContactStatus, list[Gateway], Gateway]] = []
    for st, chk in todo:
        assert chk.number is not None
        choice = router.choose(st.contact.project_id, chk.number, chk.region)
        if choice.gateway is not None:
            chains.append((st, router.chain(st.contact.project_id, chk.number, choice.gateway), choice.gateway))
    circuits = failover.Circuits({g.pk for _, chain, _ in chains for g in chain})
    for st, chain, first in chains:
        gw = circuits.peek(chain, first)
        st.gateway = gw.name if gw is not None else None


def status(contact: Contact) -> ContactStatus:
    return statuses([contact])[0]


def _status(
    contact: Contact,
    f: _Facts,
    chk: phone.PhoneCheck | None,
    entries: dict[str, list[PhoneEntry]],
    opted_out: OptedOut,
    gateways: set[tuple[str, int | None]],
) -> ContactStatus:
    project: Project = contact.project
    warnings: list[Problem] = []
    number = chk.number if chk is not None and chk.ok else None
    mine: PhoneEntry | None = None
    owner: PhoneEntry | None = None
    others: list[PhoneEntry] = []
    for e in entries.get(number, []) if number else []:
        is_mine = (e.case_id == contact.pk) if f.is_case else (e.worker_id == contact.pk)
        if is_mine:
            mine = e
        else:
            others.append(e)
        if e.two_way:
            owner = e
    needs_consent = phone.needs_consent(chk, project.consent_regions) if chk is not None else False

    # --- problems shared by both SMS channels, in the order a program officer should fix them
    phone_problem: Problem | None = None
    if not f.active:
        phone_problem = Problem(errors.CONTACT_IS_INACTIVE)
    elif chk is None:
        phone_problem = Problem(errors.NO_PHONE_NUMBER)
    elif not chk.ok:
        phone_problem = Problem(chk.error or errors.INVALID_PHONE_NUMBER, fix=chk.fix, detail=chk.message)
    elif opted_out(number, project.pk):
        phone_problem = Problem(errors.PHONE_OPTED_OUT, detail=f"{number} texted STOP.")

    gateway_problem = None
    if f.backend and (f.backend, None) not in gateways and (f.backend, project.pk) not in gateways:
        gateway_problem = Problem(
            errors.GATEWAY_NOT_FOUND, detail=f"contact_backend_id '{f.backend}' is not a configured gateway."
        )
        warnings.append(gateway_problem)

    in_use = None
    if number and others:
        holders = [describe_holder(e, project.pk) for e in others]
        holder = describe_holder(owner, project.pk) if owner and owner is not mine else holders[0]
        in_use = Problem(
            errors.PHONE_NUMBER_IN_USE,
            detail=f"{number} is also registered to {', '.join(dict.fromkeys(holders))}"
            + (f"; {holder} holds it for two-way SMS." if owner and owner is not mine else "."),
            fix=f"Close the other case or remove the number from the mobile worker ({holder}).",
        )
        warnings.append(in_use)

    # --- one-way SMS
    sms_problem = phone_problem
    if sms_problem is None and needs_consent and not f.verified_flag:
        region = (chk.region if chk else None) or "North American"
        sms_problem = Problem(errors.NO_CONSENT, detail=f"{number} is a {region} number with no recorded consent.")
    if sms_problem is None and project.block_shared_numbers and in_use is not None:
        sms_problem = in_use
    if sms_problem is None:
        sms_problem = gateway_problem

    # --- two-way SMS
    tw_problem = phone_problem
    if tw_problem is None and not f.verified_flag:
        tw_problem = Problem(errors.NO_TWO_WAY_PHONE_NUMBER)
    if tw_problem is None and owner is not None and owner is not mine:
        tw_problem = in_use
    if tw_problem is None and mine is not None and not mine.two_way:
        tw_problem = in_use or Problem(errors.PHONE_NUMBER_IN_USE)
    if tw_problem is None:
        tw_problem = gateway_problem

    # --- email
    email_problem = None
    if not f.active:
        email_problem = Problem(errors.CONTACT_IS_INACTIVE)
    elif not f.email:
        email_problem = Problem(errors.NO_EMAIL_ADDRESS)
    else:
        try:
            validate_email(f.email)
        except ValidationError:
            email_problem = Problem(errors.INVALID_EMAIL_ADDRESS, detail=f"'{f.email}' is not a valid email address.")

    tz, tz_source, tz_problem = resolve_time_zone(f.time_zone, project)
    lang, lang_source, lang_problem = resolve_language(f.language, project)
    warnings += [p for p in (tz_problem, lang_problem) if p]
    if f.is_case and not f.name.strip():
        warnings.append(Problem(errors.NO_CASE_NAME, detail="SMS surveys need the case's name."))
    if chk is not None and chk.ok and chk.warnings:
        warnings.append(Problem(errors.UNASSIGNED_PHONE_NUMBER, detail=" ".join(chk.warnings)))
    if phone_problem and phone_problem.code in (errors.INVALID_PHONE_NUMBER,):
        warnings.insert(0, phone_problem)

    return ContactStatus(
        contact=contact,
        phone_number=number or (chk.raw if chk is not None else None),
        phone_check=chk,
        verified=f.verified_flag,
        two_way=bool(mine is not None and mine.two_way),
        two_way_owner=owner,
        sms=ChannelStatus(sms_problem),
        two_way_sms=ChannelStatus(tw_problem),
        email=ChannelStatus(email_problem),
        email_address=f.email,
        time_zone=tz,
        time_zone_source=tz_source,
        language_code=lang,
        language_source=lang_source,
        gateway=f.backend or None,
        needs_consent=needs_consent,
        warnings=warnings,
    )


class _Windows:
    """The WhatsApp windows of a batch's numbers, read once, when a status first asks (contacts.whatsapp)."""

    def __init__(self, numbers: set[str], project_ids: set[int]) -> None:
        self.numbers, self.project_ids = numbers, project_ids
        self.by_key: dict[tuple[str, int | None], datetime] | None = None

    def open_until(self, number: str, project_id: int) -> datetime | None:
        if self.by_key is None:
            self.by_key = wa_windows.open_until_by_project(self.numbers, self.project_ids)
        own, shared = self.by_key.get((number, project_id)), self.by_key.get((number, None))
        return max((t for t in (own, shared) if t is not None), default=None)


def _whatsapp(
    st: ContactStatus,
    f: _Facts,
    wa_check: phone.PhoneCheck | None,
    opted_out: OptedOut,
    windows: _Windows,
) -> None:
    """The WhatsApp channel: the SMS number's problems (inactive, missing, invalid, opted out: STOP on
    either channel stops both), or those of contact_whatsapp_number when it is set; no consent question
    (WhatsApp's opt-in is the person writing, or the program's own, recorded in the ledger)."""
    project_id = st.contact.project_id
    if wa_check is None:
        number = st.phone_check.number if st.phone_check is not None and st.phone_check.ok else None
        problem = st.sms.error
        if problem is not None and problem.code in (
            errors.NO_CONSENT,  # (SMS consent; WhatsApp's opt-in is its own)
            errors.GATEWAY_NOT_FOUND,
            errors.PHONE_NUMBER_IN_USE,
        ):
            problem = None
    else:
        number = wa_check.number if wa_check.ok else None
        if not f.active:
            problem = Problem(errors.CONTACT_IS_INACTIVE)
        elif not wa_check.ok:
            problem = Problem(wa_check.error or errors.INVALID_PHONE_NUMBER, fix=wa_check.fix, detail=wa_check.message)
        elif number and opted_out(number, project_id):
            problem = Problem(errors.PHONE_OPTED_OUT, detail=f"{number} sent STOP.")
        else:
            problem = None
    st.whatsapp = ChannelStatus(problem)
    st.whatsapp_number = number or ""
    st.windows = windows


def number_statuses(items: Sequence[tuple[str, Project | None]]) -> list[ChannelStatus]:
    """One-way SMS to bare numbers (a reply to a sender who is none of the project's contacts), by the
    number's own rules, in the words of a contact's status: a valid number, not opted out for the project,
    and in a consent region, consent recorded for it in that project (a verified registry entry of the
    project's; for a message of no project, of any project). One query for the opt-outs, one for consent."""
    checks = [phone.check(n) for n, _p in items]
    numbers = {c.number for c in checks if c.ok and c.number}
    opted_out = OptedOut(numbers)
    verified: set[tuple[str, int]] = set()
    if numbers:
        rows = PhoneEntry.objects.filter(phone_number__in=numbers, verified=True).values_list(
            "phone_number", "project_id"
        )
        verified = set(rows)
    anywhere = {n for n, _p in verified}
    out: list[ChannelStatus] = []
    for (raw, project), chk in zip(items, checks, strict=True):
        number, pid = chk.number or raw, project.pk if project is not None else None
        problem: Problem | None = None
        if not chk.ok:
            problem = Problem(chk.error or errors.INVALID_PHONE_NUMBER, fix=chk.fix, detail=chk.message)
        elif opted_out(number, pid):
            problem = Problem(errors.PHONE_OPTED_OUT, detail=f"{number} texted STOP.")
        elif phone.needs_consent(chk, project.consent_regions if project is not None else None) and (
            (number, pid) not in verified if pid is not None else number not in anywhere
        ):
            problem = Problem(errors.NO_CONSENT, detail=f"{number} has no recorded consent.")
        out.append(ChannelStatus(problem))
    return out


def number_holders(number: str) -> list[PhoneEntry]:
    return list(PhoneEntry.objects.filter(Q(phone_number=number)).select_related("case", "worker"))
