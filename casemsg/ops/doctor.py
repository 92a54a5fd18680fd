"""`casemsg doctor`: what a production installation needs, checked one by one, with what to fix.

Each check answers ok, warn (works, but worth a look) or fail (must be fixed before going live); the
command exits 1 when any check fails. The checks read the settings as the processes will (from the
environment) and talk to the real database, job queue, SMTP server and each gateway's host."""

from __future__ import annotations

import os
import smtplib
import ssl
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from huey.contrib.djhuey import HUEY

from casemsg.core import netguard
from casemsg.core.errors import InputError
from casemsg.gateways.models import Gateway
from casemsg.gateways.registry import gateway_types
from casemsg.gateways.services import check_urls
from casemsg.ops import health

OK, WARN, FAIL = "ok", "warn", "fail"


@dataclass
class Finding:
    check: str
    level: str  # ok | warn | fail
    message: str
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def _secret_key() -> Iterator[Finding]:
    key = os.environ.get("CASEMSG_SECRET_KEY", "")
    if not key:
        yield Finding(
            "secret_key",
            FAIL,
            "CASEMSG_SECRET_KEY is not set: the key is generated into the data directory, so every machine "
            "(and every new data directory) has a different one and sessions and signatures break.",
            "Set CASEMSG_SECRET_KEY to 50 or more random characters, the same on every machine "
            "(python -c 'import secrets; print(secrets.token_urlsafe(50))').",
        )
    elif len(key) < 32:
        yield Finding("secret_key", FAIL, f"CASEMSG_SECRET_KEY is only {len(key)} characters.", "Use 50 or more.")
    else:
        yield Finding("secret_key", OK, "CASEMSG_SECRET_KEY is set from the environment.")


def _debug() -> Iterator[Finding]:
    if settings.DEBUG:
        yield Finding(
            "debug", FAIL, "CASEMSG_DEBUG=1: error pages show code and settings.", "Unset CASEMSG_DEBUG (or set 0)."
        )
    else:
        yield Finding("debug", OK, "Debug pages are off.")


def _allowed_hosts() -> Iterator[Finding]:
    hosts = [h for h in settings.ALLOWED_HOSTS if h != "testserver"]
    if "*" in hosts:
        yield Finding(
            "allowed_hosts",
            FAIL,
            "CASEMSG_ALLOWED_HOSTS contains '*': any Host header is accepted.",
            "List the host names the site is reached by.",
        )
    elif not os.environ.get("CASEMSG_ALLOWED_HOSTS") or set(hosts) <= {"127.0.0.1", "localhost", "::1"}:
        yield Finding(
            "allowed_hosts",
            FAIL,
            f"Only local host names are allowed ({', '.join(hosts)}): the site answers 400 to its real name.",
            "Set CASEMSG_ALLOWED_HOSTS to the public host name(s), comma-separated.",
        )
    else:
        yield Finding("allowed_hosts", OK, f"Allowed hosts: {', '.join(hosts)}.")


def _database() -> Iterator[Finding]:
    try:
        health.check_database()
    except Exception as exc:  # noqa: BLE001 — what went wrong is the finding
        yield Finding(
            "database",
            FAIL,
            f"The database does not answer: {netguard.excerpt(str(exc), 200)}",
            "Check CASEMSG_DATABASE_URL and that the server runs and accepts this machine.",
        )
        return
    vendor = connections[DEFAULT_DB_ALIAS].vendor
    if vendor == "sqlite":
        yield Finding(
            "database",
            WARN,
            "The database is SQLite: fine for one machine, but it cannot be shared by several.",
            "For more than one machine set CASEMSG_DATABASE_URL=postgresql://… (docs/scale-out.md).",
        )
    else:
        yield Finding("database", OK, f"The database ({vendor}) answers.")
    migrations = health.check_migrations()
    if migrations["ok"]:
        yield Finding("migrations", OK, "Every migration is applied.")
    else:
        yield Finding("migrations", FAIL, migrations["detail"], "Run `casemsg django-admin migrate`.")


def _queue() -> Iterator[Finding]:
    try:
        pending = HUEY.pending_count()
    except Exception as exc:  # noqa: BLE001
        yield Finding(
            "queue",
            FAIL,
            f"The job queue does not answer: {netguard.excerpt(str(exc), 200)}",
            "Check CASEMSG_QUEUE_URL and that Redis runs.",
        )
        return
    if type(HUEY).__name__.startswith("Sqlite"):
        yield Finding(
            "queue",
            WARN,
            f"The job queue is the embedded SQLite one ({pending} jobs waiting): one machine only.",
            "For workers on several machines set CASEMSG_QUEUE_URL=redis://… (docs/scale-out.md).",
        )
    else:
        yield Finding("queue", OK, f"The job queue ({type(HUEY).__name__}) answers; {pending} jobs waiting.")


def _gateways() -> Iterator[Finding]:
    types = gateway_types()
    rows = list(Gateway.objects.select_related("project").order_by("name"))
    if not rows:
        yield Finding("gateways", WARN, "No gateway is configured: no SMS can go out.", "Add one: `casemsg gateway`.")
        return
    for gw in rows:
        name = f"gateway {gw.name}" + (f" (project {gw.project.slug})" if gw.project is not None else "")
        gateway_type = types.get(gw.type)
        if gateway_type is None:
            yield Finding("gateway", FAIL, f"{name}: unknown type '{gw.type}'.", "Delete it or fix its type.")
            continue
        if gw.type == "sandbox" and not settings.CASEMSG_SANDBOX:
            yield Finding(
                "gateway",
                WARN,
                f"{name} is a sandbox gateway: its messages go nowhere.",
                "Route real numbers to a provider's gateway.",
            )
            continue
        try:
            gateway_type.validate_config(gw.config or {})
            check_urls(gateway_type, gw.config or {})
        except InputError as exc:
            yield Finding("gateway", FAIL, f"{name}: {exc.message}", f"Fix its config: `casemsg gateway` ({exc.code}).")
            continue
        yield Finding("gateway", OK, f"{name} ({gw.type}): config complete, URLs resolve to allowed addresses.")


def _smtp() -> Iterator[Finding]:
    if not settings.EMAIL_URL:
        yield Finding(
            "email",
            WARN,
            "No SMTP server: emails are printed to the console, not sent.",
            "Set CASEMSG_EMAIL_URL=smtp://user:pass@host:port (or smtp+tls://, smtps://) to send email.",
        )
        return
    where = f"{settings.EMAIL_HOST}:{settings.EMAIL_PORT}"
    try:
        smtp_class = smtplib.SMTP_SSL if settings.EMAIL_USE_SSL else smtplib.SMTP
        with smtp_class(settings.EMAIL_HOST, settings.EMAIL_PORT, timeout=10) as smtp:
            smtp.ehlo()
            if settings.EMAIL_USE_TLS:
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if settings.EMAIL_HOST_USER:
                smtp.login(settings.EMAIL_HOST_USER, settings.EMAIL_HOST_PASSWORD)
    except (OSError, smtplib.SMTPException) as exc:
        yield Finding(
            "email",
            FAIL,
            f"The SMTP server {where} cannot be used: {netguard.excerpt(str(exc) or type(exc).__name__, 200)}",
            "Check CASEMSG_EMAIL_URL (host, port, scheme, user name and password).",
        )
        return
    yield Finding(
        "email",
        OK,
        f"The SMTP server {where} answers" + (" and accepts the login." if settings.EMAIL_HOST_USER else "."),
    )


def _sandbox() -> Iterator[Finding]:
    if settings.CASEMSG_SANDBOX:
        yield Finding(
            "sandbox",
            FAIL,
            "The sandbox is on: anyone with a project key can simulate inbound messages.",
            "Set CASEMSG_SANDBOX=0 (docs/security.md).",
        )
    else:
        yield Finding("sandbox", OK, "The sandbox is off.")


def _network() -> Iterator[Finding]:
    if settings.CASEMSG_GATEWAY_ALLOW_PRIVATE:
        yield Finding(
            "private_addresses",
            WARN,
            "CASEMSG_GATEWAY_ALLOW_PRIVATE=1: projects' gateway and webhook URLs may reach this network.",
            "Unset it unless a gateway really lives on your own network.",
        )
    if not settings.CASEMSG_METRICS_TOKEN:
        yield Finding(
            "metrics",
            WARN,
            "CASEMSG_METRICS_TOKEN is not set: /metrics is off.",
            "Set it to a long random token and give it to Prometheus (docs/operations.md).",
        )


CHECKS: list[Callable[[], Iterator[Finding]]] = [
    _secret_key,
    _debug,
    _allowed_hosts,
    _sandbox,
    _database,
    _queue,
    _gateways,
    _smtp,
    _network,
]


def examine() -> list[Finding]:
    findings: list[Finding] = []
    for check in CHECKS:
        name = check.__name__.strip("_")
        if check is _gateways and any(f.check in ("database", "migrations") and f.level == FAIL for f in findings):
            findings.append(
                Finding("gateways", FAIL, "Not checked: the database is not ready.", "Fix the database first.")
            )
            continue
        try:
            findings.extend(check())
        except Exception as exc:  # noqa: BLE001 — a check that cannot run is a finding, not a traceback
            findings.append(Finding(name, FAIL, f"Could not check: {netguard.excerpt(str(exc), 200)}"))
    return findings
