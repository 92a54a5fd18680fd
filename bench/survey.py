"""SMS surveys under load: a real `casemsg serve` (gunicorn + worker) with thousands of open survey
sessions, answered through Twilio-format inbound webhooks signed with X-Twilio-Signature, posted from this
separate process at a fixed rate; each answer's next question goes out through the Twilio gateway to a
fake Twilio on 127.0.0.1.

    .venv/bin/python bench/survey.py                       # embedded: SQLite + SqliteHuey, 5,000 sessions
    .venv/bin/python bench/survey.py --sessions 1000 --rate 100
    .venv/bin/python bench/survey.py --form xlsform        # an XLSForm: calculate, groups, choice filters
    CASEMSG_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test \\
    CASEMSG_QUEUE_URL=redis://127.0.0.1:6379/0 .venv/bin/python bench/survey.py

Three phases in the same run, on the same server, at the same rate:

1. the floor: plain keyword replies ("CLINIC hours?") from contacts without a survey (and again after the
   survey, phase 3: the faster of the two is the floor, the machine being shared and noisy);
2. the survey: every session answers its questions (a select_one, an integer with a constraint, a date),
   round by round, so a contact's next answer comes `sessions / rate` seconds after its previous one;
   the last answer completes the session and writes the answers to the case.

`--form xlsform` asks an imported XLSForm instead of the plain JSON survey: an update form (its entity id
a hidden field) whose questions sit in two groups (the second with a `relevant`), with calculations on the
way (one saved through `save_to`, one a formatted date) and a cascading `choice_filter` (sub-counties of
the county answered) — five answers per session.

Printed: answers/s, webhook latency, webhook → next question sent (p50/p99), and the CPU (web + worker)
per answer beside the CPU per keyword reply: goal ≤ 2×, and the machine's load average before and after.
Then checks that every session completed with its answers on the case. Like bench/inbound.py, a ratio
measured in one run, not an absolute figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import defaultdict
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.inbound import cmdline, drive, free_port, pct, tree_cpu, wait_http  # noqa: E402

KEYWORD_REPLY = "The clinic is open 8:00-17:00, Monday to Saturday."
SURVEY = {
    "format": "casemsg-survey/1",
    "name": "Bench follow-up",
    "default_language": "en",
    "languages": ["en"],
    "settings": {"expire_after": 1440},
    "questions": [
        {"name": "visited", "type": "select_one", "label": {"en": "Did you attend your clinic visit?"},
         "choices": [{"name": "yes", "label": {"en": "Yes"}}, {"name": "no", "label": {"en": "No"}}],
         "required": True, "save_to": "anc_visited"},
        {"name": "weeks", "type": "integer", "label": {"en": "How many weeks pregnant are you?"}, "required": True,
         "constraint": ". >= 4 and . <= 42", "save_to": "gestational_weeks"},
        {"name": "visit_date", "type": "date", "label": {"en": "What was the date of the visit?"},
         "relevant": "${visited} = 'yes'", "constraint": ". <= today()", "save_to": "last_visit_date"},
    ],
}  # fmt: skip
ANSWERS = ["1", "32", "20240310"]
XLSFORM = """survey,type,name,label,relevant,constraint,calculation,choice_filter,appearance,save_to
,hidden,case,,,,,,,
,begin group,pregnancy,Pregnancy,,,,,field-list,
,select_one yes_no,visited,Did you attend your clinic visit?,,,,,,anc_visited
,integer,weeks,How many weeks pregnant are you?,,. >= 4 and . <= 42,,,,gestational_weeks
,calculate,ga_days,,,,${weeks} * 7,,,gestational_days
,end group,,,,,,,,
,begin group,visit,The visit,${visited} = 'yes',,,,,
,select_one county,county,Which county was the clinic in?,,,,,,clinic_county
,select_one subcounty,subcounty,Which sub-county?,,,,county = ${county},,clinic_subcounty
,date,visit_date,What was the date of the visit?,,. <= today(),,,,last_visit_date
,calculate,next_visit,,,,"format-date(date(decimal-date-time(${visit_date}) + 28), '%Y-%m-%d')",,,next_visit
,end group,,,,,,,,
choices,list_name,name,label,county
,yes_no,yes,Yes,
,yes_no,no,No,
,county,nairobi,Nairobi,
,county,kisumu,Kisumu,
,subcounty,westlands,Westlands,nairobi
,subcounty,langata,Lang'ata,nairobi
,subcounty,kisumu_east,Kisumu East,kisumu
,subcounty,nyando,Nyando,kisumu
,subcounty,muhoroni,Muhoroni,kisumu
settings,form_title,form_id
,Bench follow-up (XLSForm),bench_xlsform
entities,list_name,entity_id
,pregnancy,${case}
"""
XLSFORM_ANSWERS = ["1", "32", "2", "3", "20240310"]  # Kisumu, Muhoroni: the third of its sub-counties


def survey_number(i: int) -> str:
    return f"254711{i:06d}"


def keyword_number(i: int) -> str:
    return f"254722{i:06d}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=5000, help="concurrent survey sessions (default 5,000)")
    ap.add_argument("--rate", type=float, default=100.0, help="webhooks per second, both phases (default 100)")
    ap.add_argument("--keywords", type=int, default=0, help="keyword webhooks of the floor (default: = sessions)")
    ap.add_argument("--web-workers", type=int, default=2, help="gunicorn worker processes (default 2)")
    ap.add_argument("--drain-timeout", type=float, default=300.0)
    ap.add_argument("--keep", action="store_true", help="keep the temporary data directory")
    ap.add_argument(
        "--form",
        choices=["json", "xlsform"],
        default="json",
        help="the plain casemsg-survey/1 survey (default), or an XLSForm with calculate, groups and choice filters",
    )
    args = ap.parse_args()
    n, k = args.sessions, args.keywords or args.sessions
    answers = XLSFORM_ANSWERS if args.form == "xlsform" else ANSWERS
    load_before = os.getloadavg()

    env = os.environ.copy()
    tmp = tempfile.mkdtemp(prefix="casemsg-bench-survey-")
    env.update(
        CASEMSG_DATA_DIR=tmp,
        CASEMSG_QUEUE_IMMEDIATE="0",
        DJANGO_SETTINGS_MODULE="casemsg.settings",
        CASEMSG_GATEWAY_ALLOW_PRIVATE="1",  # the fake provider listens on 127.0.0.1
    )
    env.pop("PYTEST_VERSION", None)
    if env.get("CASEMSG_DATABASE_URL"):
        raise SystemExit("this bench runs on the embedded SQLite only (see bench/inbound.py for PostgreSQL setup)")
    os.environ.update(env)

    from fakes.gateways import FakeGatewayProcess

    fake = FakeGatewayProcess("twilio", lean=True).start()
    config = fake.gateway_config()

    def cli(*a: str) -> str:
        return subprocess.run(
            [sys.executable, "-m", "casemsg", *a], env=env, cwd=ROOT, check=True, capture_output=True, text=True
        ).stdout

    cli("migrate", "-v", "0")
    cli("project", "create", "bench", "--name", "Survey bench", "--json")
    cli("gateway", "add", "tw", "--type", "twilio", "--project", "bench", "--config", json.dumps(config))
    cli("gateway", "map", "*", "tw", "--project", "bench")
    import django

    django.setup()
    from django.db import connection

    from casemsg.cases import services as cases
    from casemsg.cases.models import Case
    from casemsg.gateways import services as gateways
    from casemsg.inbound.models import Keyword
    from casemsg.messaging.models import Message
    from casemsg.projects.models import Project
    from casemsg.surveys import engine
    from casemsg.surveys import services as surveys
    from casemsg.surveys.models import SurveySession

    project = Project.objects.get(slug="bench")
    gw = gateways.Gateway.objects.get(name="tw")
    Keyword.objects.create(project=project, keyword="CLINIC", reply={"en": KEYWORD_REPLY})
    t = time.perf_counter()
    numbers = [survey_number(i) for i in range(n)] + [keyword_number(i) for i in range(k)]
    for start in range(0, len(numbers), 1000):
        cases.bulk_upsert(
            project,
            [
                cases.CaseChange(
                    case_type="patient",
                    name=f"Patient {number}",
                    properties={"contact_phone_number": number, "contact_phone_number_is_verified": "1"},
                )
                for number in numbers[start : start + 1000]
            ],
        )
    if args.form == "xlsform":
        survey, _created = surveys.import_survey(project, XLSFORM.encode(), "bench.csv")
    else:
        survey = surveys.create_survey(project, SURVEY)
    by_number = {c.properties["contact_phone_number"]: c for c in Case.objects.filter(project=project)}
    for i in range(n):
        engine.start(project, survey, by_number[survey_number(i)], gateway=gw)
    print(f"setup: {len(numbers):,} verified cases, {n:,} survey sessions started in {time.perf_counter() - t:.1f} s")
    token = gw.config["auth_token"]
    connection.close()

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "casemsg", "serve", "--port", str(port), "--web-workers", str(args.web_workers)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    url = base + gateways.inbound_url(gw)
    from twilio.request_validator import RequestValidator

    validator = RequestValidator(token)

    def webhooks(items: list[tuple[str, str]]) -> tuple[list[bytes], list[str]]:
        bodies, sigs = [], []
        for number, text in items:
            sid = "SM" + uuid.uuid4().hex
            fields = {
                "SmsMessageSid": sid, "NumMedia": "0", "SmsSid": sid, "SmsStatus": "received", "Body": text,
                "To": "+254700000000", "NumSegments": "1", "MessageSid": sid, "AccountSid": config["account_sid"],
                "From": "+" + number, "ApiVersion": "2010-04-01",
            }  # fmt: skip
            bodies.append(urlencode(fields).encode())
            sigs.append(validator.compute_signature(url, fields))
        return bodies, sigs

    def settled(expected_out: int) -> bool:
        waiting = Message.objects.filter(direction="in", next_attempt_on__isnull=False).exists()
        unsent = Message.objects.filter(direction="out", status__in=["queued", "sending"]).exists()
        return not waiting and not unsent and Message.objects.filter(direction="out").count() >= expected_out

    def wait_settled(expected_out: int) -> float:
        t1 = time.perf_counter()
        while not settled(expected_out) and time.perf_counter() - t1 < args.drain_timeout:
            time.sleep(0.25)
        return time.perf_counter() - t1

    def phase(name: str, items: list[tuple[str, str]], expected_out: int) -> dict:
        bodies, sigs = webhooks(items)
        roots = [server.pid]
        cpu0 = tree_cpu(server.pid)
        t0 = time.perf_counter()
        latencies, errors, lag = asyncio.run(drive(url, bodies, sigs, args.rate))
        load_time = time.perf_counter() - t0
        drain = wait_settled(expected_out)
        cpu1 = {p: v for r in roots for p, v in tree_cpu(r).items()}
        web = sum(v - cpu0.get(p, 0.0) for p, v in cpu1.items() if "gunicorn" in cmdline(p))
        total = sum(v - cpu0.get(p, 0.0) for p, v in cpu1.items())
        ms = [x * 1000 for x in latencies]
        print(
            f"{name}: {len(items):,} webhooks in {load_time:.1f} s ({len(items) / load_time:,.0f}/s, client lag max "
            f"{lag * 1000:.0f} ms), errors {sum(errors.values())} {errors or ''}; webhook p50 {pct(ms, 50):.1f} ms, "
            f"p99 {pct(ms, 99):.1f} ms; settled {drain:.1f} s after the load; CPU {total / len(items) * 1000:.2f} ms "
            f"per message (web {web / len(items) * 1000:.2f})"
        )
        return {"cpu": total / len(items), "errors": sum(errors.values()), "time": load_time}

    try:
        wait_http(base + "/api/v1/errors")
        for _ in range(20):  # warm up every gunicorn worker (not counted)
            urllib.request.urlopen(base + "/api/v1/errors", timeout=5).read()
        print("sending the first questions ...")
        wait_settled(n)
        first_out = Message.objects.filter(direction="out").count()

        print(f"phase 1, the floor: {k:,} keyword replies at {args.rate:g}/s ...")
        floor = phase("keywords", [(keyword_number(i), "CLINIC hours?") for i in range(k)], first_out + k)
        received = dict(Message.objects.filter(direction="in").values_list("pk", "created_on"))
        floor_lags = [
            (sent - received[int(src)]).total_seconds() * 1000
            for src, sent in Message.objects.filter(direction="out", event__source="keyword").values_list(
                "event__source_id", "sent_on"
            )
            if sent is not None and src and int(src) in received
        ]
        since = Message.objects.order_by("-pk").values_list("pk", flat=True).first() or 0

        print(f"phase 2, the survey ({args.form}): {n:,} sessions × {len(answers)} answers at {args.rate:g}/s ...")
        items = [(survey_number(i), answer) for answer in answers for i in range(n)]
        answers_out = n * (len(answers) - 1)  # the last answer completes the session: no question follows
        load = phase("survey answers", items, first_out + k + answers_out)
        # the last answers send nothing, so "settled" can come before the worker has taken them: wait for the
        # sessions themselves (not counted in the CPU figures, which phase() has taken)
        t1 = last_change = time.perf_counter()
        still_open = SurveySession.objects.filter(status="open").count()
        while still_open and time.perf_counter() - t1 < args.drain_timeout and time.perf_counter() - last_change < 10:
            time.sleep(0.25)  # (a session whose answer was lost with its webhook never completes: 10 s without one)
            now_open = SurveySession.objects.filter(status="open").count()
            if now_open != still_open:
                still_open, last_change = now_open, time.perf_counter()

        # webhook (stored) → the next question sent, per session: answer j is followed by question j + 1
        inbound: dict[int, list] = defaultdict(list)
        outbound: dict[int, list] = defaultdict(list)
        for case_id, created in (
            Message.objects.filter(direction="in", pk__gt=since).order_by("pk").values_list("case_id", "created_on")
        ):
            inbound[case_id].append(created)
        for case_id, sent in (
            Message.objects.filter(direction="out", event__source="survey", pk__gt=since)
            .order_by("pk")
            .values_list("case_id", "sent_on")
        ):
            outbound[case_id].append(sent)
        lags = [
            (sent - received).total_seconds() * 1000
            for case_id, received_list in inbound.items()
            for received, sent in zip(received_list, outbound.get(case_id, []), strict=False)
            if sent is not None
        ]
        completed = SurveySession.objects.filter(status="completed").count()
        saved = Case.objects.filter(project=project, properties__gestational_weeks="32").count()
        failed = Message.objects.filter(direction="out", status="failed").count()

        # the floor again, after the survey (the machine is shared and noisy): the faster of the two is the floor
        print(f"phase 3, the floor again: {k:,} keyword replies at {args.rate:g}/s ...")
        out_now = Message.objects.filter(direction="out").count()
        floor_after = phase("keywords", [(keyword_number(i), "CLINIC hours?") for i in range(k)], out_now + k)
        floor_before = floor
        floor = min(floor_before, floor_after, key=lambda f: f["cpu"])
        floor = {**floor, "errors": floor_before["errors"] + floor_after["errors"]}
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        fake.stop()
        connection.close()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)

    print(
        f"\nSQLite + SqliteHuey; casemsg serve: gunicorn {args.web_workers} workers + 1 worker; {os.cpu_count()} CPUs; "
        f"survey: {args.form}; load average {load_before[0]:.2f} before, {os.getloadavg()[0]:.2f} after"
    )
    print(f"answers/s: {len(items) / load['time']:,.0f} (offered {args.rate:g}/s)")
    if lags:
        print(
            f"webhook → next question sent: p50 {pct(lags, 50):.0f} ms, p99 {pct(lags, 99):.0f} ms, "
            f"mean {statistics.fmean(lags):.0f} ms ({len(lags):,} questions)"
        )
    if floor_lags:
        print(
            f"(the floor) webhook → keyword reply sent: p50 {pct(floor_lags, 50):.0f} ms, "
            f"p99 {pct(floor_lags, 99):.0f} ms"
        )
    print(
        f"CPU per keyword reply: {floor_before['cpu'] * 1000:.2f} ms before the survey, "
        f"{floor_after['cpu'] * 1000:.2f} ms after (the floor: the faster)"
    )
    ratio = load["cpu"] / floor["cpu"] if floor["cpu"] else float("inf")
    print(
        f"CPU per answer {load['cpu'] * 1000:.2f} ms vs per keyword reply {floor['cpu'] * 1000:.2f} ms: "
        f"{ratio:.2f}× (goal ≤ 2×)"
    )
    print(
        f"sessions completed: {completed:,}/{n:,}; cases with the answers saved: {saved:,}; failed messages: {failed}"
    )
    if args.keep:
        print(f"data directory kept: {tmp}")
    good = ratio <= 2 and completed == n and saved == n and not failed and not (load["errors"] or floor["errors"])
    print("goal CPU ≤ 2× a keyword reply, every session completed and saved:", "MET" if good else "MISSED")
    sys.exit(0 if good else 1)


if __name__ == "__main__":
    main()
