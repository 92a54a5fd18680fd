"""`casemsg smpp [--gateway NAME …]`: the one process that holds the bind of each `smpp` gateway with
`bind_per: process` (an operator that allows a single bind per account), submitting what every worker hands
it (docs/gateways.md, "SMPP"). Run exactly one per such gateway; stop it with SIGTERM or Ctrl-C (what is on
the wire gets its outcome stored first)."""

from __future__ import annotations

import signal
import threading

from django.core.management.base import BaseCommand, CommandError

from casemsg.core.errors import InputError
from casemsg.gateways import services as gateway_services


class Command(BaseCommand):
    help = "Hold the only SMPP bind of each bind_per: process gateway and submit for every worker."

    def add_arguments(self, parser):
        parser.add_argument(
            "--gateway", action="append", default=[], metavar="NAME", help="only this gateway (repeatable)"
        )

    def handle(self, *args, **o):
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        self.stdout.write("casemsg smpp: binding " + (", ".join(o["gateway"]) or "every bind_per: process gateway"))
        self.stdout.flush()
        try:
            held = gateway_services.serve_smpp(o["gateway"], stop)
        except InputError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from exc
        if not held:
            raise CommandError("No smpp gateway has bind_per: process: workers hold their own binds.")
