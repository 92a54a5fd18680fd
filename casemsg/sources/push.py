"""`push`: any system posts its cases to the source's receiver URL, signed like casemsg's own event webhooks.

    POST /api/v1/sources/{receive_key}/receive
    Content-Type: application/json
    X-Casemsg-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" with the signing secret>

    {"cases": [{"case_id": "…", "case_type": "mother", "name": "…", "owner_id": "…", "external_id": "…",
                "parent_id": "…", "properties": {"edd": "2025-03-01", …}, "closed": false}]}

At most 1,000 cases a post. Only `case_id` is required (and `case_type` for a new case, unless the source
has one); a property set to null is removed. The signature must be fresh (5 minutes either way) and is
checked before anything is read; the URL's key finds the source, whose project is the only one the post
can write to. A case that cannot be applied is skipped and named in the answer; the others are applied.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any, ClassVar

from casemsg.core import errors
from casemsg.core.errors import InputError
from casemsg.sources.base import Field, Record, SourceType, parse_time

SIGNATURE_HEADER = "X-Casemsg-Signature"
TOLERANCE_SECONDS = 300
MAX_CASES = 1000
_FIELDS = (
    "case_id",
    "case_type",
    "name",
    "owner_id",
    "external_id",
    "parent_id",
    "properties",
    "closed",
    "modified_on",
)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header's value (what a sending system computes; the same as event webhooks')."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def record(item: Any, index: int) -> Record:
    if not isinstance(item, dict):
        return Record(id=f"#{index}", problem=(errors.INVALID_VALUE, f"Case {index} is not a JSON object."))
    case_id = item.get("case_id")
    rec = Record(
        id=str(case_id) if isinstance(case_id, str | int) and not isinstance(case_id, bool) else "",
        case_type=str(item.get("case_type") or ""),
        name=_text(item.get("name")),
        owner_id=_text(item.get("owner_id")),
        external_id=_text(item.get("external_id")),
        parent_id=_text(item.get("parent_id")),
        closed=bool(item["closed"]) if item.get("closed") is not None else None,
        modified=parse_time(item.get("modified_on")),
    )
    unknown = sorted(set(item) - set(_FIELDS))
    props = item.get("properties", {})
    if not rec.id:
        rec.id, rec.problem = f"#{index}", (errors.INVALID_CASE_ID, f"Case {index} has no case_id.")
    elif unknown:
        rec.problem = (errors.INVALID_VALUE, f"Unknown field '{unknown[0]}' (a case has {', '.join(_FIELDS)}).")
    elif not isinstance(props, dict):
        rec.problem = (errors.INVALID_PROPERTY, "properties must be a JSON object.")
    else:
        rec.fields = dict(props)
    return rec


class PushSource(SourceType):
    type_name = "push"
    title = "Push (any system)"
    description = "Any system posts its cases as signed JSON to the source's receiver URL."
    pulls = False
    receives = True
    record_case_type = True
    config_schema: ClassVar[dict[str, Field]] = {
        "signing_secret": Field(
            required=True, secret=True, help="The shared secret the sender signs each body with (HMAC-SHA256)."
        ),
    }

    @classmethod
    def check_config(cls, config: Any) -> None:
        if len(str(config.get("signing_secret") or "")) < 16:
            raise InputError(errors.INVALID_SOURCE_CONFIG, "signing_secret must be at least 16 characters.")

    def verify_post(self, body: bytes, headers: Mapping[str, str]) -> None:
        header = headers.get(SIGNATURE_HEADER.lower(), "")
        parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
        try:
            timestamp = int(parts.get("t", ""))
        except ValueError:
            timestamp = 0
        expected = sign(str(self.config.get("signing_secret") or ""), timestamp, body).split("v1=", 1)[1]
        fresh = abs(time.time() - timestamp) <= TOLERANCE_SECONDS
        if not (fresh and hmac.compare_digest(expected, parts.get("v1", ""))):
            raise InputError(
                errors.FORBIDDEN,
                f"Missing, stale or wrong {SIGNATURE_HEADER}: sign '<t>.<body>' with the source's signing secret.",
                403,
            )

    def parse_post(self, body: bytes, headers: Mapping[str, str]) -> list[Record]:
        try:
            doc = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InputError(errors.INVALID_WEBHOOK, f"The body is not JSON: {exc}", 400) from exc
        cases = doc.get("cases") if isinstance(doc, dict) else None
        if not isinstance(cases, list) or not cases:
            raise InputError(errors.INVALID_WEBHOOK, 'The body must be {"cases": [ … ]} with at least one case.', 400)
        if len(cases) > MAX_CASES:
            raise InputError(errors.TOO_MANY_CASES, f"At most {MAX_CASES} cases a post; got {len(cases)}.", 422)
        return [record(item, i) for i, item in enumerate(cases, start=1)]
