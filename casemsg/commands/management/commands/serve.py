"""`casemsg serve`: migrate, then web server + worker (with ticker) on one machine. Ctrl-C stops all.

On a web machine of a cluster: `casemsg serve --no-worker --no-migrate` (the web server only; workers run on
their own machines, and migrations once per release)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand


def _lower_priority() -> None:
    os.nice(10)


class Command(BaseCommand):
    help = "Migrate and run the web app, a worker and the scheduler on one machine."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--web-workers", type=int, default=2)
        # One worker by default: on one small machine the web's latency matters more than peak sending
        # rate (measured on 2 cores at 300 webhooks/s: p99 123 ms with one worker, 944 ms with two).
        # For more throughput add workers here or on other machines (docs/scale-out.md).
        parser.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
        parser.add_argument("--no-worker", action="store_true", help="serve the web app only")
        # Several web machines: migrations run once per release (`casemsg migrate` from the deploy step), not
        # by every web node at its start, where two would race to apply the same one (docs/scale-out.md).
        parser.add_argument("--no-migrate", action="store_true", help="do not apply migrations at the start")

    def handle(self, *args, **o):
        if not o["no_migrate"]:
            call_command("migrate", interactive=False, verbosity=0)
        env = os.environ.copy()
        # Metrics in multiprocess mode: every process (gunicorn's and the workers) writes its counters to
        # files here and /metrics adds them up; emptied at each start (the old processes are gone).
        metrics_dir = Path(env.setdefault("PROMETHEUS_MULTIPROC_DIR", str(settings.DATA_DIR / "metrics")))
        metrics_dir.mkdir(parents=True, exist_ok=True)
        for stale in metrics_dir.glob("*.db"):
            stale.unlink()
        gunicorn = [
            sys.executable,
            "-m",
            "gunicorn",
            "casemsg.wsgi:application",
            "--bind",
            f"{o['host']}:{o['port']}",
            "--workers",
            str(o["web_workers"]),
            "--threads",
            "4",
            "--log-level",
            "warning",
            # the access log on, gateway keys and phone numbers hidden in it; metrics of exited workers
            "--config",
            "python:casemsg.ops.gunicorn_conf",
        ]
        procs = [subprocess.Popen(gunicorn, env=env)]
        if not o["no_worker"]:
            for _ in range(max(1, o["workers"])):
                # Background work yields the CPU to web requests: a webhook must answer fast even while
                # a broadcast is being sent on the same machine.
                procs.append(
                    subprocess.Popen([sys.executable, "-m", "casemsg", "worker"], env=env, preexec_fn=_lower_priority)
                )
        self.stdout.write(f"casemsg is serving http://{o['host']}:{o['port']}/ (Ctrl-C to stop)")

        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            while not stopping and all(p.poll() is None for p in procs):
                time.sleep(0.3)
        finally:
            for p in procs:
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
            for p in procs:
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
        codes = [p.returncode for p in procs]
        if not stopping and any(codes):
            self.stderr.write(f"a casemsg process exited ({codes}); stopped the others")
            raise SystemExit(1)
