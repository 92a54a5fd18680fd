"""The surveys' share of the worker's ticker: reminders, expiry, and sessions of numbers that opted out.

No queue job is needed: the work is a few indexed scans of open sessions (`engine.remind_and_expire`),
run by every worker's ticker; the conditional updates there make concurrent tickers harmless.
"""

from __future__ import annotations

import logging

from casemsg.surveys import engine

log = logging.getLogger(__name__)


def tick() -> engine.Swept:
    swept = engine.remind_and_expire()
    if swept.reminded or swept.expired or swept.opted_out:
        log.info(
            "surveys: %d reminders, %d expired, %d ended by opt-out", swept.reminded, swept.expired, swept.opted_out
        )
    return swept
