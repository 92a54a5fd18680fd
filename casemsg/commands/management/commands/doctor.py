"""`casemsg doctor`: check what a production installation needs and say what to fix (exit 1 if anything
must be fixed)."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand

from casemsg.ops import doctor

_MARK = {doctor.OK: "ok  ", doctor.WARN: "warn", doctor.FAIL: "FAIL"}


class Command(BaseCommand):
    help = "Check the configuration a production installation needs and print what to fix."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="print the findings as JSON")

    def handle(self, *args, **o):
        findings = doctor.examine()
        failed = [f for f in findings if f.level == doctor.FAIL]
        if o["json"]:
            self.stdout.write(json.dumps({"ok": not failed, "findings": [f.as_dict() for f in findings]}, indent=2))
        else:
            for f in findings:
                self.stdout.write(f"[{_MARK[f.level]}] {f.check}: {f.message}")
                if f.fix and f.level != doctor.OK:
                    self.stdout.write(f"       fix: {f.fix}")
            warned = sum(f.level == doctor.WARN for f in findings)
            summary = f"{len(failed)} to fix, {warned} to look at." if failed or warned else "Ready for production."
            self.stdout.write(summary)
        if failed:
            raise SystemExit(1)
