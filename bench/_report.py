"""Shared by the benches: the load average, interleaved floors, and the verdicts a run ends with.

Every bench measures its floor in the same run, because the shared machines it runs on differ by 2–3×
from one hour to the next; and since a floor measured once can land in a quiet or a busy minute, it is
measured **interleaved**: before the subject and again after it, and the faster of the two is the floor
(the honest one: a slow floor would flatter the subject). Each goal is printed as met or MISSED, and the
run exits non-zero when any goal was missed, so a script or CI step can act on it.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")


def load() -> str:
    """The 1, 5 and 15 minute load averages, printed beside every figure."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def timed(fn: Callable[[], T]) -> tuple[float, T]:
    t = time.perf_counter()
    result = fn()
    return time.perf_counter() - t, result


def interleaved(floor: Callable[[], float], subject: Callable[[], T], rounds: int = 1) -> tuple[float, T]:
    """Runs floor, subject, floor (`rounds` times the subject) and returns the FASTEST floor's seconds with
    the last subject's result. `floor` returns its own elapsed seconds (it may time only its core)."""
    floors = [floor()]
    result: T
    for _ in range(rounds):
        result = subject()
        floors.append(floor())
    return min(floors), result


@dataclass
class Verdicts:
    """The goals of one run: `check` prints each as it is decided; `finish` prints the summary and exits 1
    when any was missed."""

    title: str
    results: list[tuple[str, bool, str]] = field(default_factory=list)

    def check(self, goal: str, met: bool, detail: str = "") -> bool:
        self.results.append((goal, met, detail))
        print(f"   {'met' if met else 'MISSED'}: {goal}{f' — {detail}' if detail else ''}", flush=True)
        return met

    def finish(self) -> None:
        missed = [goal for goal, met, _ in self.results if not met]
        print(
            f"\n{self.title}: {len(self.results) - len(missed)} of {len(self.results)} goals met; load average {load()}"
        )
        for goal in missed:
            print(f"   MISSED: {goal}")
        sys.stdout.flush()
        if missed:
            sys.exit(1)
