"""The one list of source types: type name → `SourceType` subclass. The API, the pages, the CLI, the sync
and the receivers read it from here.

Adding a source type:

1. One module, casemsg/sources/<type>.py: a `SourceType` subclass (casemsg/sources/base.py) declaring
   `type_name`, `title`, `config_schema` (`Field`s: `secret` for credentials, `url` for addresses casemsg
   calls), `pulls`/`receives`/`record_case_type`, and implementing `first` and `page` (reading) and/or
   `verify_post` and `parse_post` (a receiver).
2. One line in `SOURCE_TYPES` below (and its import), and its place in the area's order (pyproject.toml).
3. Its fake server in fakes/sources.py speaking the system's documented API (paging, auth, error shapes),
   and tests/sources/test_<type>.py syncing through it.
4. docs/sources.md: a worked example.
"""

from __future__ import annotations

from casemsg.core import errors
from casemsg.core.errors import InputError
from casemsg.sources.base import SourceType
from casemsg.sources.commcare import CommCareSource
from casemsg.sources.dhis2 import Dhis2Source
from casemsg.sources.odk_central import OdkCentralSource
from casemsg.sources.push import PushSource

SOURCE_TYPES: dict[str, type[SourceType]] = {
    t.type_name: t for t in (CommCareSource, OdkCentralSource, Dhis2Source, PushSource)
}


def type_of(type_name: str) -> type[SourceType]:
    t = SOURCE_TYPES.get(type_name)
    if t is None:
        raise InputError(
            errors.UNKNOWN_SOURCE_TYPE, f"Unknown source type '{type_name}'; use one of {', '.join(SOURCE_TYPES)}."
        )
    return t
