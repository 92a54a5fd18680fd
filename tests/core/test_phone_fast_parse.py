"""The fast path of core.phone's parsing gives exactly what phonenumbers.parse gives, for every country
code: the bulk import relies on it for speed, and a difference would change which numbers are valid."""

from __future__ import annotations

import random

import phonenumbers
import pytest
from phonenumbers import NumberParseException
from phonenumbers.phonenumberutil import COUNTRY_CODE_TO_REGION_CODE

from casemsg.core import phone


def _parse(digits: str) -> phonenumbers.PhoneNumber | str:
    try:
        return phonenumbers.parse("+" + digits, None)
    except NumberParseException as e:
        return f"error {e.error_type}"


def _fast(digits: str) -> phonenumbers.PhoneNumber | str:
    try:
        return phone._parse_international(digits)
    except NumberParseException as e:
        return f"error {e.error_type}"


def _samples() -> list[str]:
    rng = random.Random(11)
    out: list[str] = ["", "1", "12", "0", "00441234", "999123456"]
    for cc in COUNTRY_CODE_TO_REGION_CODE:
        for length in (1, 2, 4, 7, 9, 10, 12, 13):
            for lead in ("", "0", "00", "1", "9"):
                rest = lead + "".join(rng.choice("0123456789") for _ in range(length))
                out.append(f"{cc}{rest}"[:15])
        # examples of real numbers of each region, with and without a trunk prefix kept after the code
        for region in COUNTRY_CODE_TO_REGION_CODE[cc]:
            example = phonenumbers.example_number(region) if region != "001" else None
            if example is not None:
                national = str(example.national_number)
                out += [f"{cc}{national}", f"{cc}0{national}", f"{cc}{national}1"]
    return out


@pytest.mark.parametrize("chunk", range(4))
def test_fast_parse_equals_phonenumbers_parse(chunk: int) -> None:
    samples = _samples()
    part = samples[chunk::4]
    assert len(part) > 500
    for digits in part:
        assert _fast(digits) == _parse(digits), digits


def test_normalized_number_equals_the_full_check() -> None:
    """normalized_number stops once the number is decided (no region, no range warning): the number it
    gives is the full check's, for digits, written numbers and refused ones alike."""
    samples = _samples()[::7] + ["+1 206-617-1234", "1-206-617-1234", "0711 222 333", "9109812345678", "15551234567"]
    for value in samples:
        assert phone.normalized_number(value) == phone.check(value).number, value
