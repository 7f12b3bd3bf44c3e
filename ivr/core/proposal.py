"""Turning what a supervisor typed into a valid proposal: pattern, expiry, action."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import phonenumbers

from ivr.core.caller import normalise

_DURATION = re.compile(r"^\s*(\d{1,5})\s*([dw])\s*$", re.IGNORECASE)
# After NFKC (full-width digits and signs become ASCII), the dashes people type in Japan.
_SEPARATORS = re.compile(r"[\s\-().\u2010-\u2015\u2212\u30fc]")
_ROUTE_ACTION = re.compile(r"^route:([a-z0-9][a-z0-9_-]{0,39})$")


def parse_days(text: str) -> timedelta:
    """`14d` or `2w` as a timedelta; ValueError otherwise."""
    m = _DURATION.match(text)
    if not m or int(m.group(1)) == 0:
        raise ValueError(f"{text!r} is not a duration like 14d or 2w")
    n = int(m.group(1))
    return timedelta(days=n * (7 if m.group(2).lower() == "w" else 1))


def parse_expiry(text: str, now: datetime, tz: ZoneInfo, max_days: int) -> datetime:
    """The expiry instant for `90d` (from now) or `YYYY-MM-DD` (the end of that day in `tz`)."""
    text = text.strip()
    if _DURATION.match(text):
        at = now + parse_days(text)
    else:
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise ValueError(
                f"expiry {text!r}: use a duration like 90d or a date YYYY-MM-DD"
            ) from None
        at = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
    if at <= now:
        raise ValueError(f"expiry {text!r} is in the past")
    if at > now + timedelta(days=max_days):
        raise ValueError(
            f"expiry {text!r} is more than {max_days} days away (blocklist.max_expiry_days)"
        )
    return at


def normalise_pattern(text: str, prefix: bool, region: str, min_prefix_len: int) -> str:
    """The E.164 number, or E.164 prefix, a supervisor means; ValueError saying what is wrong."""
    text = unicodedata.normalize("NFKC", text)
    if not prefix:
        e164 = normalise(_SEPARATORS.sub("", text), region)
        if e164 is None:
            raise ValueError(f"{text!r} is not a phone number (give it as 03-1234-5678 or +81...)")
        return e164
    digits = _SEPARATORS.sub("", text.strip())
    if not re.fullmatch(r"\+?[0-9]{1,15}", digits):
        raise ValueError(f"prefix {text!r} may hold only digits, '+' and separators")
    if digits.startswith("+"):
        pattern = digits
    elif digits.startswith("00"):
        pattern = "+" + digits[2:]
    elif digits.startswith("0"):
        pattern = f"+{phonenumbers.country_code_for_region(region)}{digits[1:]}"
    else:
        raise ValueError(f"prefix {text!r} must start with 0 (national), 00 or +")
    if len(pattern) < min_prefix_len:
        raise ValueError(
            f"prefix {pattern} is shorter than {min_prefix_len} characters "
            "(screening.blocklist_min_prefix_len)"
        )
    if len(pattern) > 16:
        raise ValueError(f"prefix {pattern} is longer than any phone number")
    return pattern


def parse_action(text: str, routes: Collection[str]) -> str:
    """`reject` or `route:NAME` with NAME a configured route."""
    text = text.strip()
    if text == "reject":
        return text
    m = _ROUTE_ACTION.match(text)
    if not m:
        raise ValueError(f"action {text!r}: use reject or route:NAME")
    if m.group(1) not in routes:
        raise ValueError(f"action {text!r}: no route {m.group(1)!r} in [routes]")
    return text
