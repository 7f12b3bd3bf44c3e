"""The clock, injected everywhere a decision depends on time.

One source for every process: `clock_from_env` reads `IVR_CLOCK`, so that `ivr serve` and the
supervisor's CLI agree on what "now" is (tests, and a rehearsal of a past or future day, set it).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Protocol

CLOCK_ENV = "IVR_CLOCK"


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A clock that stays where it is set; tests and `ivr simulate --at` move it."""

    def __init__(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("FixedClock needs an aware datetime")
        self.at = at

    def now(self) -> datetime:
        return self.at


class ShiftedClock:
    """The system clock moved by a fixed offset: every process given the same offset agrees on
    "now" (a service and the CLI, or a rehearsal of another day)."""

    def __init__(self, offset_s: float) -> None:
        self.offset = timedelta(seconds=offset_s)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset


def parse_clock(spec: str) -> Clock:
    """`""` the system clock; `fixed:ISO` a clock that stands still at ISO (with its offset, so
    that every process reads it alike); `offset:SECONDS` the system clock moved by SECONDS."""
    spec = spec.strip()
    if not spec:
        return SystemClock()
    kind, sep, text = spec.partition(":")
    if kind == "offset" and sep:
        try:
            offset = float(text)
        except ValueError:
            raise ValueError(f"{CLOCK_ENV}: not a number of seconds: {text!r}") from None
        if not abs(offset) < 1e11:  # also refuses nan and inf
            raise ValueError(f"{CLOCK_ENV}: offset out of range: {text!r}")
        return ShiftedClock(offset)
    if kind != "fixed" or not sep:
        raise ValueError(f"{CLOCK_ENV}: expected 'fixed:ISO' or 'offset:SECONDS', got {spec!r}")
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{CLOCK_ENV}: not an ISO date-time: {text!r}") from None
    if at.tzinfo is None:
        raise ValueError(f"{CLOCK_ENV}: the date-time needs an offset (+09:00 or Z): {text!r}")
    return FixedClock(at)


def clock_from_env(environ: Mapping[str, str]) -> Clock:
    """The clock every command uses: `IVR_CLOCK` when set, else the system clock."""
    return parse_clock(environ.get(CLOCK_ENV, ""))
