"""Time caps: this call's limit, the caller's daily budget, and the repeat-call limit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo


class RepeatAction(StrEnum):
    ROUTE = "route"  # play `repeat-limit`, then ring the repeat route instead of the menu
    REFUSE = "refuse"  # play `repeat-refused`, then hang up


class Outcome(StrEnum):
    OK = "ok"
    DAILY_LIMIT = "daily-limit"
    REPEAT = "repeat-calls"


@dataclass(frozen=True)
class CapPolicy:
    per_call_s: int
    warning_lead_s: int = 60
    daily_budget_s: int = 0  # 0: no daily budget
    min_call_s: int = 60  # less than this left of the day counts as nothing left
    repeat_threshold: int = 0  # 0: no repeat limit; else earlier calls in the window that trip it
    repeat_window_s: int = 24 * 3600
    repeat_action: RepeatAction = RepeatAction.ROUTE
    exempt_numbers: frozenset[str] = frozenset()
    exempt_prefixes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Usage:
    """What the database knows of the caller before this call."""

    talk_today_s: float  # talk time of today's calls (calendar day in the centre's time zone)
    calls_in_window: int  # calls started within the repeat window


@dataclass(frozen=True)
class Assessment:
    outcome: Outcome
    limit_s: int | None  # None: no limit (exempt)
    warning_s: int | None  # seconds before the end to play the warning; None: no warning
    exempt: bool = False
    used_s: float = 0.0
    calls_in_window: int = 0


def is_exempt(e164: str | None, p: CapPolicy) -> bool:
    if e164 is None:
        return False
    return e164 in p.exempt_numbers or any(e164.startswith(x) for x in p.exempt_prefixes)


def warning_for(limit_s: int, lead_s: int) -> int | None:
    """Seconds before the end to warn: the lead, or half the call when the call is shorter."""
    if lead_s <= 0:
        return None
    return min(lead_s, limit_s // 2) or None


def assess(e164: str | None, usage: Usage | None, p: CapPolicy) -> Assessment:
    """This call's limit and whether the budget or the repeat limit stops it.

    `usage` is None when the database did not answer: the per-call cap still applies (Asterisk
    enforces it) and the per-caller checks fail open.
    """
    if is_exempt(e164, p):
        return Assessment(Outcome.OK, None, None, exempt=True)
    limit = p.per_call_s
    if e164 is None or usage is None:
        return Assessment(Outcome.OK, limit, warning_for(limit, p.warning_lead_s))
    used, recent = usage.talk_today_s, usage.calls_in_window
    if p.daily_budget_s:
        left = int(p.daily_budget_s - used)
        if left < p.min_call_s:
            return Assessment(Outcome.DAILY_LIMIT, None, None, used_s=used, calls_in_window=recent)
        limit = min(limit, left)
    warning = warning_for(limit, p.warning_lead_s)
    if p.repeat_threshold and recent >= p.repeat_threshold:
        return Assessment(Outcome.REPEAT, limit, warning, used_s=used, calls_in_window=recent)
    return Assessment(Outcome.OK, limit, warning, used_s=used, calls_in_window=recent)


def day_start(now: datetime, zone: ZoneInfo) -> datetime:
    """Midnight of `now`'s calendar day in `zone` (the daily budget resets then)."""
    local = now.astimezone(zone)
    return datetime.combine(local.date(), time(0), tzinfo=zone)


def usage_since(now: datetime, zone: ZoneInfo, p: CapPolicy) -> tuple[datetime, datetime]:
    """(start of today, start of the repeat window): the two bounds the usage query needs."""
    return day_start(now, zone), now - timedelta(seconds=p.repeat_window_s)


def ended_at_cap(talk_s: float, limit_s: int | None) -> bool:
    """A call whose talk time reached its limit was ended by the cap (Asterisk rounds to 1 s)."""
    return limit_s is not None and talk_s >= limit_s - 1


def bridged_seconds(bridged_at: str | None, ended_at: str | None) -> float | None:
    """Talk time from the dialplan's two marks (epoch seconds as `STRFTIME(,,%s.%3q)` writes
    them): when the agent's leg answered and when the caller left the agent. None when the
    caller was never bridged or a mark is unreadable; a clock step backwards counts as 0."""
    start, end = _number(bridged_at, 10**11), _number(ended_at, 10**11)
    if not start or not end:  # 0 is no instant Asterisk writes
        return None
    return min(max(0.0, end - start), 10.0**7)


def talk_seconds(text: str | None) -> float | None:
    """A talk time as Asterisk reports it (`ANSWEREDTIME`, a Cdr's `BillableSeconds`); None when
    it is not a plausible number of seconds (empty when nobody answered)."""
    return _number(text, 10**7)


def _number(text: str | None, below: float) -> float | None:
    """`text` as a number in [0, below), or None."""
    try:
        value = float(text or "")
    except ValueError:
        return None
    return value if 0 <= value < below else None
