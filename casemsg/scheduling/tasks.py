"""The scheduler's beat, run by every `casemsg worker`'s ticker (and so by `casemsg serve` / `make run`).

`beat()` sends what is due (`tick.tick`, a bounded number of batches per beat so the ticker's other duties
keep their rhythm; the rest is taken at the next beat, a second later) and moves alert rule runs on
(`runner.continue_runs`, within a time budget). Workers on many machines may all beat at once: the tick's
claim (SKIP LOCKED) and the send keys keep every occurrence single.
"""

from __future__ import annotations

import logging

from casemsg.scheduling import runner, tick

log = logging.getLogger(__name__)

# 20 batches of 1,000 instances per beat: a large broadcast is queued at the pace the pipeline sends it
# anyway, while the beat stays short.
BATCHES_PER_BEAT = 20
RUN_BUDGET_SECONDS = 2.0


def beat() -> int:
    """One beat of the scheduler; returns how many instances were processed."""
    done = tick.tick(max_batches=BATCHES_PER_BEAT)
    runner.continue_runs(budget_seconds=RUN_BUDGET_SECONDS)
    return done
