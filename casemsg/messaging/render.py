"""Message templates: `{case.name}`, `{case.<property>}`, `{case.parent.<property>}`, `{recipient.name}`.

An unknown value renders as `(?)` (the message still goes, and the reader sees something is missing);
a malformed template (an unclosed `{`, a placeholder of another form) is `CANNOT_RENDER_MESSAGE`.
`{{` and `}}` are literal braces.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from casemsg.cases.models import Case

UNKNOWN = "(?)"
_NAME = re.compile(r"^[A-Za-z0-9_\-]+$")


class RenderError(Exception):
    pass


@dataclass
class Context:
    case: Case | None = None
    parent: Case | None = None
    recipient_name: str = ""


def _case_value(case: Case | None, key: str) -> str:
    if case is None:
        return UNKNOWN
    if key == "name":
        return case.name or UNKNOWN
    if key in ("case_id", "external_id", "case_type", "owner_id"):
        return getattr(case, key) or UNKNOWN
    value = (case.properties or {}).get(key)
    return UNKNOWN if value in (None, "") else str(value)


def _lookup(expr: str, ctx: Context) -> str:
    parts = expr.strip().split(".")
    if not all(_NAME.match(p) for p in parts):
        raise RenderError(f"'{{{expr}}}' is not a placeholder")
    if parts[0] == "recipient" and len(parts) == 2:
        return ctx.recipient_name or UNKNOWN if parts[1] == "name" else UNKNOWN
    if parts[0] == "case" and len(parts) == 2:
        return _case_value(ctx.case, parts[1])
    if parts[0] == "case" and len(parts) == 3 and parts[1] == "parent":
        return _case_value(ctx.parent, parts[2])
    raise RenderError(
        f"'{{{expr}}}' is not a placeholder; use {{case.name}}, {{case.<property>}}, "
        "{case.parent.<property>} or {recipient.name}"
    )


def render(template: str, ctx: Context) -> str:
    out: list[str] = []
    i, n = 0, len(template)
    while i < n:
        ch = template[i]
        if ch == "{":
            if template.startswith("{{", i):
                out.append("{")
                i += 2
                continue
            end = template.find("}", i + 1)
            if end < 0:
                raise RenderError(f"unclosed '{{' at position {i + 1}")
            inner = template[i + 1 : end]
            if "{" in inner:
                raise RenderError(f"unclosed '{{' at position {i + 1}")
            out.append(_lookup(inner, ctx))
            i = end + 1
        elif ch == "}":
            if template.startswith("}}", i):
                out.append("}")
                i += 2
                continue
            raise RenderError(f"unmatched '}}' at position {i + 1}")
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def literal(text: str) -> str:
    """`text` as a template that renders to itself (its braces are not placeholders)."""
    return text.replace("{", "{{").replace("}", "}}")


def check_template(template: str, extra: tuple[str, ...] = ()) -> str | None:
    """A sentence saying what is wrong with this template, or None: used to refuse bad input early.
    `extra`: placeholders the caller fills in itself before rendering (a keyword's `{rest}`)."""
    for name in extra:
        template = template.replace("{" + name + "}", "")
    try:
        render(template, Context())
    except RenderError as exc:
        return str(exc)
    return None


def choose_text(content: dict[str, Any], chain: list[str]) -> tuple[str | None, str]:
    """Pick the text by the fallback chain: contact language → schedule default → project default →
    untranslated text. Returns (text or None, language used; "" for untranslated)."""
    translations = content.get("translations") or {}
    for lang in chain:
        if lang and (translations.get(lang) or "").strip():
            return translations[lang], lang
    text = content.get("text")
    if text is not None and str(text).strip():
        return str(text), ""
    return None, ""


_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


def unknown_fields(template: str, ctx: Context) -> list[str]:
    """The placeholders of a well-formed template that would render as `(?)` for this context, in order
    and once each (the send form flags them before anything is sent)."""
    found: list[str] = []
    bare = template.replace("{{", "").replace("}}", "")
    for expr in _PLACEHOLDER.findall(bare):
        placeholder = "{" + expr.strip() + "}"
        try:
            value = _lookup(expr, ctx)
        except RenderError:
            continue
        if value == UNKNOWN and placeholder not in found:
            found.append(placeholder)
    return found
