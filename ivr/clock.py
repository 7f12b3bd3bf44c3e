"""The clock, injected everywhere a decision depends on time.

One source for every process: `clock_from_env` reads `IVR_CLOCK`, so that `ivr serve` and the
supervisor's CLI agree on what "now" is (tests, and a rehearsal of a past or future day, set it).
"""

from __future__ import annotations

import time
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
    """Starts at `at` when created and runs at the real rate (monotonic, so never backwards)."""

    def __init__(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("ShiftedClock needs an aware datetime")
        self.at = at
        self._t0 = time.monotonic()

    def now(self) -> datetime:
        return self.at + timedelta(seconds=time.monotonic() - self._t0)


def parse_clock(spec: str) -> Clock:
    """`""` the system clock; `fixed:ISO` a clock that stands; `start:ISO` one that runs from ISO.

    ISO must carry its offset: a clock without a zone would be read differently by each process.
    """
    spec = spec.strip()
    if not spec:
        return SystemClock()
    kind, sep, text = spec.partition(":")
    if not sep or kind not in ("fixed", "start"):
        raise ValueError(f"{CLOCK_ENV}: expected 'fixed:ISO' or 'start:ISO', got {spec!r}")
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{CLOCK_ENV}: not an ISO date-time: {text!r}") from None
    if at.tzinfo is None:
        raise ValueError(f"{CLOCK_ENV}: the date-time needs an offset (+09:00 or Z): {text!r}")
    return FixedClock(at) if kind == "fixed" else ShiftedClock(at)


def clock_from_env(environ: Mapping[str, str]) -> Clock:
    """The clock every command uses: `IVR_CLOCK` when set, else the system clock."""
    return parse_clock(environ.get(CLOCK_ENV, ""))
