"""SMS segment counting: GSM-7 160 characters (153 per part when concatenated), UCS-2 70 (67).

Rate limits and costs are counted in segments, since that is what providers count."""

from __future__ import annotations

import math

# The GSM 03.38 basic character set, and the extension table whose characters take two septets.
_GSM_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXT = set("^{}\\[~]|€\f")


def is_gsm7(text: str) -> bool:
    return all(ch in _GSM_BASIC or ch in _GSM_EXT for ch in text)


def count(text: str) -> int:
    """Number of SMS segments for this text (0 for an empty text)."""
    if not text:
        return 0
    if is_gsm7(text):
        n = sum(2 if ch in _GSM_EXT else 1 for ch in text)
        return 1 if n <= 160 else math.ceil(n / 153)
    # UCS-2 counts UTF-16 code units: characters outside the BMP (most emoji) take two.
    n = len(text.encode("utf-16-le")) // 2
    return 1 if n <= 70 else math.ceil(n / 67)


def encoding(text: str) -> str:
    """ "GSM-7" or "UCS-2": the alphabet the text is sent in."""
    return "GSM-7" if is_gsm7(text) else "UCS-2"


def length(text: str) -> int:
    """The text's length as providers count it: GSM-7 septets (an extension character takes two), or
    UTF-16 code units for UCS-2."""
    if is_gsm7(text):
        return sum(2 if ch in _GSM_EXT else 1 for ch in text)
    return len(text.encode("utf-16-le")) // 2


def limits(text: str) -> tuple[int, int]:
    """(characters in a single SMS, characters per part of a longer one) for this text's alphabet."""
    return (160, 153) if is_gsm7(text) else (70, 67)
