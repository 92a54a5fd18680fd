"""One rule for times on pages: every time a page shows is on the project's clock and labelled with the
zone ("2026-12-07 14:05 EAT"), through the one `{% when %}` tag (casemsg/web/templatetags/casemsg_web.py)
or, for cells built in Python, its `when_html`; the API stays UTC ISO 8601. Two checks: every template is
scanned for a time printed any other way (`|date` with a time format, `|time`, `{% timezone %}`, a raw
`{{ x.created_on }}`), and the pages are rendered with one known instant and must show it labelled."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.core.management import call_command

from casemsg.cases.services import CaseChange, create_case
from casemsg.messaging.models import Message
from casemsg.projects.services import create_project
from casemsg.scheduling import services as scheduling

TEMPLATES = Path(__file__).resolve().parents[2] / "casemsg" / "web" / "templates"
# Django's date-format characters that print a time of day or a zone; a format without them is a day
TIME_CHARS = set("aAbBcefgGhHiIOPrsTuUvZ")
DATE_FILTER = re.compile(r"""\|\s*date\s*:\s*["']([^"']*)["']|\|\s*date\s*(?=[|}\s])""")
RAW_TIME = re.compile(r"\{\{\s*[\w.]+(?:_on|_at|_utc|_until|\.at)\s*(?:\}\}|\|(?!\s*date))")
OTHER = re.compile(r"\|\s*time\b|\{%\s*timezone\b|\|\s*localtime\b|\|\s*utc\b|\|\s*naturaltime\b")


def offences(text: str) -> list[str]:
    found = []
    for m in DATE_FILTER.finditer(text):
        fmt = m.group(1)
        if fmt is None or set(fmt) & TIME_CHARS:  # a bare |date prints DATE_FORMAT; a time format needs the tag
            found.append(m.group(0))
    found += [m.group(0) for m in RAW_TIME.finditer(text)]
    found += [m.group(0) for m in OTHER.finditer(text)]
    return found


def test_the_scan_catches_each_way_around_the_tag():
    assert offences('{{ m.created_on|date:"Y-m-d H:i" }}') and offences("{{ m.created_on|date:'c' }}")
    assert offences("{{ m.created_on|date }}") and offences("{{ m.created_on }}") and offences("{{ e.at }}")
    assert (
        offences("{{ x|time:'H:i' }}")
        and offences("{% timezone zone %}")
        and offences("{{ s.next_due_utc|default:'—' }}")
    )
    assert not offences('{{ day|date:"Y-m-d" }}') and not offences("{% when m.created_on %}")


def test_no_template_prints_a_time_without_the_tag():
    bad = {}
    for path in sorted(TEMPLATES.rglob("*.html")):
        found = offences(path.read_text())
        if found:
            bad[str(path.relative_to(TEMPLATES))] = found
    assert bad == {}, f"print times with {{% when value %}} (casemsg_web), not: {bad}"


AT = datetime(2026, 12, 7, 11, 5, 42, tzinfo=UTC)  # 14:05 in Nairobi (EAT, UTC+3)
SHOWN, UNLABELLED_UTC = "2026-12-07 14:05", "2026-12-07 11:05"


@pytest.fixture
def nairobi(db, admin):
    p, _ = create_project("nbo", "Nairobi program", time_zone="Africa/Nairobi")
    case = create_case(
        p,
        CaseChange(case_id="m-1", case_type="mother", name="Asha", properties={"contact_phone_number": "254711000001"}),
    )
    for direction, status, text in (("out", Message.SENT, "hi"), ("in", Message.RECEIVED, "yo")):
        Message.objects.create(
            project=p,
            case=case,
            direction=direction,
            channel="sms",
            status=status,
            to="254711000001",
            text=text,
            created_on=AT,
        )
    b = scheduling.create_broadcast(
        p,
        {
            "name": "Tips",
            "content": {"text": "Hello"},
            "recipients": {"case_type": "mother"},
            "schedule": {"type": "once", "date": "2099-12-07", "time": "14:05", "time_zone": "Africa/Nairobi"},
        },
    )
    type(b).objects.filter(pk=b.pk).update(created_on=AT, modified_on=AT)
    return p, case, b


def test_every_page_shows_the_known_instant_on_the_project_clock_labelled(admin, nairobi):
    p, case, b = nairobi
    base = f"/projects/{p.slug}"
    for url in [
        f"{base}/messages/",
        f"{base}/cases/",
        f"{base}/cases/m-1/",
        f"{base}/broadcasts/",
        f"{base}/broadcasts/{b.pk}/",
        f"{base}/conversations/",
        f"{base}/conversations/case:m-1/",
    ]:
        r = admin.get(url)
        assert r.status_code == 200, url
        html = r.content.decode()
        assert UNLABELLED_UTC not in html, url  # never UTC without its label
        if url.endswith("/cases/"):  # the list shows each case's modified time, which is now
            assert "EAT" in html, url
        else:
            assert re.search(rf"{SHOWN}(:42)? EAT", html), url
    phone = admin.get(f"{base}/simulator/", {"number": "254711000001"}).content.decode()
    assert "14:05:42 EAT" in phone and ">11:05:42" not in phone  # the phone simulator's bubbles
    case_page = admin.get(f"{base}/cases/m-1/").content.decode()
    assert "2099-12-07 14:05 EAT" in case_page  # the coming send on the project's clock


def test_the_cli_message_listing_says_its_zone(nairobi):
    p, _case, _b = nairobi
    out = io.StringIO()
    call_command("messages", "--project", p.slug, stdout=out)
    text = out.getvalue()
    assert f"{SHOWN}:42 EAT" in text and UNLABELLED_UTC not in text


def test_the_cli_key_listing_says_its_zone(nairobi):
    p, _case, _b = nairobi
    out = io.StringIO()
    call_command("project", "keys", p.slug, stdout=out)
    created = out.getvalue().splitlines()[0].split("\t")[4]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d EAT", created), created


def test_no_view_or_table_formats_a_time_itself():
    """The cells and texts built in Python use when_html / wallclock.shown too (no strftime of their own)."""
    web = TEMPLATES.parent
    own = re.compile(r"\.strftime\(|DateTimeColumn|:%[HIMS]")
    bad = [
        f"{path.relative_to(web)}:{n}"
        for path in sorted(web.rglob("*.py"))
        for n, line in enumerate(path.read_text().splitlines(), start=1)
        if own.search(line)
    ]
    assert bad == []
