"""Which time zone names are accepted: IANA names only.

`ZoneInfo(name)` alone is not a check: it reads whatever file the name points to, so "America" (a
directory) or a 300-character name raise OSError, and "localtime" silently loads the server's own zone.
"""

from __future__ import annotations

from functools import lru_cache
from zoneinfo import ZoneInfo, available_timezones

# Present in the zoneinfo directory on many systems but not IANA zone names.
_NOT_ZONES = {"localtime", "posixrules"}


@lru_cache(maxsize=1)
def _names() -> frozenset[str]:
    return frozenset(available_timezones() - _NOT_ZONES)


def is_valid(name: str) -> bool:
    """Whether `name` is an IANA time zone name that loads."""
    if not name or name not in _names():
        return False
    try:
        ZoneInfo(name)
    except (KeyError, ValueError, OSError):
        return False
    return True
