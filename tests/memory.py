"""How much memory and time a call costs this process: the resident set's peak growth, for the tests that
prove uploads and bodies are bounded (tests/surveys/test_upload_limits.py, tests/cases/test_import_limits.py).

Linux resets a process's peak resident set (VmHWM) when "5" is written to /proc/self/clear_refs: the peak
after the call minus the resident set before it is the extra memory the call made the process hold, C
allocations (zlib, expat, SQLite) included. Memory freed earlier but still held by the allocator would hide
part of a call's needs, so it is handed back to the system first (glibc's malloc_trim). Where
/proc/self/clear_refs cannot be written, tracemalloc's peak of Python's own allocations is the fallback
(not both at once: tracemalloc's own bookkeeping would swell the resident set).
"""

from __future__ import annotations

import ctypes
import gc
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_CLEAR_REFS = Path("/proc/self/clear_refs")
_STATUS = Path("/proc/self/status")


@dataclass
class Cost:
    result: Any
    extra_mb: float  # peak memory growth during the call
    seconds: float
    how: str  # "rss" (VmHWM) or "tracemalloc"

    def __str__(self) -> str:
        return f"+{self.extra_mb:.0f} MB ({self.how}), {self.seconds:.2f} s"


def _status_kb(key: str) -> int:
    for line in _STATUS.read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def _can_reset_peak() -> bool:
    try:
        _CLEAR_REFS.write_text("5")
        _status_kb("VmHWM")
    except (OSError, KeyError):
        return False
    return True


def _trim() -> None:
    """Collect garbage and give freed memory back to the system, so that what a call needs shows."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def measure(call: Callable[[], Any]) -> Cost:
    _trim()
    if _can_reset_peak():
        before = _status_kb("VmRSS")
        _CLEAR_REFS.write_text("5")  # VmHWM := VmRSS now
        start = time.monotonic()
        result = call()
        seconds = time.monotonic() - start
        return Cost(result, (_status_kb("VmHWM") - before) / 1024, seconds, "rss")
    tracemalloc.start()
    try:
        start = time.monotonic()
        result = call()
        seconds = time.monotonic() - start
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return Cost(result, peak / (1 << 20), seconds, "tracemalloc")
