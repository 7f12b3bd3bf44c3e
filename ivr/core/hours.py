"""Business hours with Japanese public holidays and the centre's own closed dates."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from enum import StrEnum
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class OpenState(StrEnum):
    OPEN = "open"
    AFTER_HOURS = "after-hours"
    HOLIDAY = "holiday"


@dataclass(frozen=True)
class Interval:
    start: time
    end: time | None  # None: until midnight ("24:00")

    def contains(self, t: time) -> bool:
        return self.start <= t and (self.end is None or t < self.end)


def parse_interval(text: str) -> Interval:
    """`"09:00-18:00"` → Interval; `24:00` is accepted as an end."""
    try:
        a, b = (p.strip() for p in text.split("-"))
        start = time.fromisoformat(a)
        end = None if b == "24:00" else time.fromisoformat(b)
    except ValueError as exc:
        raise ValueError(f"not a time range HH:MM-HH:MM: {text!r}") from exc
    if start.microsecond or (end is not None and end.microsecond):
        raise ValueError(f"not a time range HH:MM-HH:MM (whole seconds at most): {text!r}")
    if end is not None and end <= start:
        raise ValueError(f"time range ends before it starts: {text!r}")
    return Interval(start, end)


@dataclass(frozen=True)
class Schedule:
    timezone: str = "Asia/Tokyo"
    weekly: Mapping[str, tuple[Interval, ...]] = field(default_factory=dict)
    public_holidays: bool = True
    closed_dates: frozenset[date] = frozenset()
    closed_every_year: frozenset[tuple[int, int]] = frozenset()  # (month, day)


@lru_cache(maxsize=64)
def _jp_holidays(year: int) -> holidays.HolidayBase:
    return holidays.country_holidays("JP", years=year)


def jp_holiday_name(d: date) -> str | None:
    """The name of the Japanese public holiday on `d`, if it is one."""
    name = _jp_holidays(d.year).get(d)
    return str(name) if name else None


def open_state(now: datetime, schedule: Schedule) -> OpenState:
    """Whether the centre is open at the aware instant `now`."""
    local = now.astimezone(ZoneInfo(schedule.timezone))
    day = local.date()
    if (
        day in schedule.closed_dates
        or (day.month, day.day) in schedule.closed_every_year
        or (schedule.public_holidays and jp_holiday_name(day) is not None)
    ):
        return OpenState.HOLIDAY
    intervals = schedule.weekly.get(WEEKDAYS[local.weekday()], ())
    t = local.time().replace(tzinfo=None)
    return OpenState.OPEN if any(i.contains(t) for i in intervals) else OpenState.AFTER_HOURS


class OpenStates:
    """`open_state` for one schedule, worked out once a second: interval bounds are whole
    seconds (and so are zone offsets), so the answer cannot change within one."""

    def __init__(self, schedule: Schedule) -> None:
        self._schedule = schedule
        self._second: datetime | None = None
        self._state = OpenState.OPEN

    def at(self, now: datetime) -> OpenState:
        second = now.replace(microsecond=0)
        if second != self._second:
            self._state = open_state(now, self._schedule)
            self._second = second
        return self._state
