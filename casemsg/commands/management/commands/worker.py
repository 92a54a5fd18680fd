"""`casemsg worker`: a Huey consumer plus the ticker (due-row scan, the scheduler's beat and the case
sources' syncs every second, sweeper every 30 s, the reports' roll-up every minute).

Run as many as you like on as many machines as you like: claims are atomic, so the consumers never send a
message twice, and only one ticker at a time ticks — the one holding the `ticker` lease
(`casemsg.ops.leadership`); the others take it over within seconds when its worker is gone."""

from __future__ import annotations

import logging
import os
import threading
import time

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections
from huey.contrib.djhuey import HUEY
from prometheus_client import multiprocess

from casemsg.consent import services as consent
from casemsg.events import deliver as event_deliveries
from casemsg.gateways import services as gateway_services
from casemsg.inbound import router as inbound
from casemsg.inbound import tasks as inbound_tasks
from casemsg.messaging import pipeline, reports, tasks
from casemsg.ops import heartbeat, leadership
from casemsg.scheduling import tasks as scheduling_tasks
from casemsg.sources import tasks as source_tasks
from casemsg.surveys import tasks as survey_tasks

log = logging.getLogger("casemsg.worker")


def run_ticker(stop: threading.Event, workers: int, interval: float = 1.0) -> None:
    last_sweep = last_roll_up = 0.0
    # The lease is held (renewed, or tried for) by a thread of its own, so that a long beat does not let it
    # lapse; the beat checks it between its steps and stops as soon as another worker leads.
    lease = leadership.Leadership()
    keeper = threading.Thread(target=lease.keep, args=(stop,), daemon=True, name="ticker-lease")
    keeper.start()
    while not stop.is_set():
        try:
            close_old_connections()
            if not lease.leading:
                stop.wait(interval)  # another worker ticks
                continue
            tasks.tick(workers)
            inbound_tasks.tick()
            if lease.leading:
                scheduling_tasks.beat()  # broadcasts and alerts: queue what is due, move rule runs on
            if lease.leading:
                source_tasks.tick()  # case sources due for a sync: each runs in a thread of its own
            if lease.leading and time.monotonic() - last_sweep > 30:
                pipeline.sweep()
                pipeline.expire_stale()
                consent.expire_requests()
                survey_tasks.tick()  # survey reminders and expiry (minutes apart: this beat is enough)
                # inbound rows whose job was lost (a queue restart) are processed here
                inbound.process_due()
                last_sweep = time.monotonic()
            if lease.leading and time.monotonic() - last_roll_up > 60:
                # the reports' daily counts: the days that settled or went stale, a few per beat
                reports.roll_up_all(max_days=reports.DAYS_PER_BEAT)
                gateway_services.sync_whatsapp_templates_due()  # each WhatsApp gateway's templates, hourly
                last_roll_up = time.monotonic()
        except Exception:  # noqa: BLE001 — the ticker must survive a database hiccup
            log.exception("ticker failed; retrying")
        stop.wait(interval)
    keeper.join(5)  # it releases the lease: another worker ticks from its next second, not after it lapses


class Command(BaseCommand):
    help = "Run a worker: the job consumer and the ticker that finds due messages."

    def add_arguments(self, parser):
        # One thread by default: sending is CPU-bound Python between network waits, and measured on 2 cores,
        # more threads in one process lost to GIL contention (2,423 msg/s with 1 thread, 2,175 with 2);
        # scale with processes instead (`casemsg serve --workers N`, or more `casemsg worker`s).
        parser.add_argument("--workers", type=int, default=1, help="consumer threads (default 1)")
        parser.add_argument("--no-tick", action="store_true", help="do not scan for due rows")
        parser.add_argument("--no-events", action="store_true", help="do not post event webhook deliveries")

    def handle(self, *args, **o):
        # Every job type is registered with this consumer through the imports at the top (a job whose
        # task is unknown would be dropped).
        stop = threading.Event()
        ticker = threading.Thread(target=run_ticker, args=(stop, o["workers"]), daemon=True, name="ticker")
        if not o["no_tick"]:
            ticker.start()
        # The heartbeat /readyz looks for, and event webhooks posted from their own loop (a slow endpoint
        # never holds a sending thread).
        threading.Thread(target=heartbeat.run, args=(stop,), daemon=True, name="heartbeat").start()
        if not o["no_events"]:
            threading.Thread(target=event_deliveries.run, args=(stop,), daemon=True, name="events").start()
        poll = settings.CASEMSG_QUEUE_POLL_SECONDS
        consumer = HUEY.create_consumer(
            workers=o["workers"], worker_type="thread", periodic=False, initial_delay=poll, backoff=1.0, max_delay=poll
        )
        self.stdout.write(f"casemsg worker: {o['workers']} threads, queue {type(HUEY).__name__}")
        # the SMPP binds this process holds, bound now so that receipts and MO flow before anything is sent
        gateway_services.hold_binds()
        try:
            consumer.run()
        finally:
            stop.set()
            if ticker.is_alive():
                ticker.join(5)  # its beat ends, then it releases the ticker lease for another worker
            if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
                multiprocess.mark_process_dead(os.getpid())
