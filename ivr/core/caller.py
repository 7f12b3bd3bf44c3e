"""Caller classification: withheld, unavailable, or a number normalised to E.164."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

import phonenumbers

from ivr.core.text import kept

WITHHELD_WORDS = frozenset({"anonymous", "private", "restricted", "withheld", "prohibited"})
UNAVAILABLE_WORDS = frozenset({"", "unknown", "<unknown>", "unavailable", "none"})
# Only digits with the punctuation people and networks write numbers with; anything else
# (`1&PJSIP/x`, quotes, control bytes) is not a number at all and is never prefix-matched.
_NUMBERISH = re.compile(r"^\+?[0-9][0-9 ()\-.]{0,24}$")
# The two shapes nearly every Japanese caller ID takes: the national `0` and a number (not the
# international prefix 010), or E.164. For them `phonenumbers.parse` comes down to country code
# 81 and these digits (no international prefix, extension or carrier code to find), at a tenth
# of its cost (parse was about a tenth of a call's CPU), and whether it is possible comes down
# to its length (`_JP_POSSIBLE_LENGTHS`). test_core checks the shortcut and the library agree
# for every two leading digits and length.
_JP_PLAIN = re.compile(r"0((?!10)[1-9][0-9]{7,15})|\+81([1-9][0-9]{7,15})")
_PRES_MASK = 0x60
_PRES_RESTRICTED = 0x20
_PRES_UNAVAILABLE = 0x40
MAX_RAW_KEPT = 64


class CallerClass(StrEnum):
    NUMBER = "number"
    WITHHELD = "withheld"
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True)
class Caller:
    """What we know of the caller; `raw` is escaped and cut to `MAX_RAW_KEPT` for storage."""

    cls: CallerClass
    e164: str | None
    raw: str


def _presentation(pres: str) -> CallerClass | None:
    p = pres.strip().lower()
    if p.isdigit():
        value = int(p) & _PRES_MASK
        if value == _PRES_RESTRICTED:
            return CallerClass.WITHHELD
        if value == _PRES_UNAVAILABLE:
            return CallerClass.UNAVAILABLE
        return None
    if p.startswith("prohib"):
        return CallerClass.WITHHELD
    if p == "unavailable":
        return CallerClass.UNAVAILABLE
    return None


@lru_cache(maxsize=4096)  # the dialled numbers and a repeat caller's number recur
def normalise(number: str, region: str = "JP") -> str | None:
    """E.164 form of a dialled or presented number, or None when it is not a possible one."""
    text = number.strip()
    if not _NUMBERISH.match(text):
        return None
    plain = _JP_PLAIN.fullmatch(text) if region == "JP" else None
    if plain is not None:
        nsn = plain.group(1) or plain.group(2)
        return f"+81{nsn}" if len(nsn) in _JP_POSSIBLE_LENGTHS else None
    try:
        return e164_of(phonenumbers.parse(text, region))
    except phonenumbers.NumberParseException:
        return None


def e164_of(parsed: phonenumbers.PhoneNumber) -> str | None:
    """The E.164 text of a parsed number, or None when it is not a possible one."""
    if not phonenumbers.is_possible_number(parsed):
        return None
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))


# Whether a number of country code 81 is possible depends on its length alone
# (`is_possible_number` checks the length against the region's metadata), so the library is
# asked once per length the shortcut admits, and its E.164 form is +81 and the digits.
_JP_POSSIBLE_LENGTHS = frozenset(
    n
    for n in range(8, 17)
    if e164_of(phonenumbers.PhoneNumber(country_code=81, national_number=int("1" * n)))
)


def classify(number: str, presentation: str = "", region: str = "JP") -> Caller:
    """Classify a caller from the presented number and the presentation indicator."""
    raw = kept(number, MAX_RAW_KEPT)
    by_pres = _presentation(presentation)
    word = number.strip().lower()
    if by_pres is CallerClass.WITHHELD or word in WITHHELD_WORDS:
        return Caller(CallerClass.WITHHELD, None, raw)
    if by_pres is CallerClass.UNAVAILABLE or word in UNAVAILABLE_WORDS:
        return Caller(CallerClass.UNAVAILABLE, None, raw)
    e164 = normalise(number, region)
    if e164 is None:
        return Caller(CallerClass.UNAVAILABLE, None, raw)
    return Caller(CallerClass.NUMBER, e164, raw)
