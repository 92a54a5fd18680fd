"""The consent and opt-out report: the project's consent-ledger rows per day (the project's zone) by kind —
consents, refusals, opt-outs, opt-ins, questions asked and left unanswered — and by how they came in, beside
how many of its numbers are opted out now. Counted in a GROUP BY over the ledger's (project, created_on)
index: the ledger holds a row per answer, far fewer than messages."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db.models import Count
from django.db.models.functions import TruncDate

from casemsg.consent.models import ConsentRecord
from casemsg.contacts import queries as contact_queries
from casemsg.core import timezones
from casemsg.projects.models import Project

KINDS = ConsentRecord.KINDS  # consent, refusal, opt_out, opt_in, request, expired
KIND_LABELS = {
    "consent": "Consents",
    "refusal": "Refusals",
    "opt_out": "Opt-outs",
    "opt_in": "Opt-ins",
    "request": "Questions asked",
    "expired": "Unanswered (expired)",
}
COLUMNS = ["day", "kind", "source", "entries"]


@dataclass
class ConsentReport:
    since: date
    until: date
    zone: str
    days: list[date]
    by_day: dict[date, dict[str, int]]  # {day: {kind: n}}
    by_source: dict[str, dict[str, int]]  # {source: {kind: n}}
    totals: dict[str, int]  # {kind: n}
    opted_out_now: int
    rows: list[tuple[date, str, str, int]]  # (day, kind, source, n)


def _zone(project: Project) -> ZoneInfo:
    return ZoneInfo(project.default_time_zone if timezones.is_valid(project.default_time_zone) else "UTC")


def report(project: Project, since: date, until: date) -> ConsentReport:
    """The ledger of since…until (both included, the project's zone), counted by day, kind and source."""
    zone = _zone(project)
    start = datetime.combine(since, time(0), tzinfo=zone).astimezone(UTC)
    end = datetime.combine(until + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)
    counted = (
        ConsentRecord.objects.filter(project=project, created_on__gte=start, created_on__lt=end)
        .annotate(day=TruncDate("created_on", tzinfo=zone))
        .values_list("day", "kind", "source")
        .annotate(n=Count("pk"))
        .order_by("day", "kind", "source")
    )
    rows = [(d, k, s, n) for d, k, s, n in counted]
    days = [since + timedelta(days=i) for i in range((until - since).days + 1)]
    by_day: dict[date, dict[str, int]] = {d: dict.fromkeys(KINDS, 0) for d in days}
    by_source: dict[str, dict[str, int]] = {}
    totals = dict.fromkeys(KINDS, 0)
    for d, k, s, n in rows:
        by_day.setdefault(d, dict.fromkeys(KINDS, 0))[k] = by_day.get(d, {}).get(k, 0) + n
        by_source.setdefault(s, dict.fromkeys(KINDS, 0))
        by_source[s][k] = by_source[s].get(k, 0) + n
        totals[k] = totals.get(k, 0) + n
    return ConsentReport(
        since,
        until,
        zone.key,
        days,
        by_day,
        dict(sorted(by_source.items())),
        totals,
        contact_queries.opted_out_count(project),
        rows,
    )


def csv_rows(r: ConsentReport) -> Iterator[list[object]]:
    for d, k, s, n in r.rows:
        yield [d.isoformat(), k, s, n]
