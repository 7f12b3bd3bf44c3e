"""The pure caps arithmetic, table-driven."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from ivr.core.caps import (
    CapPolicy,
    Outcome,
    RepeatAction,
    Usage,
    assess,
    bridged_seconds,
    day_start,
    ended_at_cap,
    talk_seconds,
    warning_for,
)

P = CapPolicy(
    per_call_s=3600,
    warning_lead_s=60,
    daily_budget_s=3600,
    min_call_s=60,
    repeat_threshold=3,
    repeat_action=RepeatAction.ROUTE,
    exempt_numbers=frozenset({"+81300000000"}),
    exempt_prefixes=("+8150",),
)
N = "+81312345678"


@pytest.mark.parametrize(
    ("e164", "usage", "outcome", "limit", "warning"),
    [
        (N, Usage(0, 0), Outcome.OK, 3600, 60),
        (N, Usage(1500, 1), Outcome.OK, 2100, 60),
        (N, Usage(3500, 2), Outcome.OK, 100, 50),  # shorter than twice the lead: warn at half
        (N, Usage(3541, 2), Outcome.DAILY_LIMIT, None, None),  # 59 s left < min_call_s
        (N, Usage(3600, 0), Outcome.DAILY_LIMIT, None, None),
        (N, Usage(0, 2), Outcome.OK, 3600, 60),
        (N, Usage(0, 3), Outcome.REPEAT, 3600, 60),  # the 4th call
        (N, Usage(4000, 5), Outcome.DAILY_LIMIT, None, None),  # budget before repeats
        (None, None, Outcome.OK, 3600, 60),  # no number: the per-call cap only
        (N, None, Outcome.OK, 3600, 60),  # database away: fails open to the per-call cap
        ("+81300000000", Usage(9999, 9), Outcome.OK, None, None),  # exempt number
        ("+815012345678", Usage(9999, 9), Outcome.OK, None, None),  # exempt prefix
    ],
)
def test_assess(
    e164: str | None, usage: Usage | None, outcome: Outcome, limit: int | None, warning: int | None
) -> None:
    a = assess(e164, usage, P)
    assert (a.outcome, a.limit_s, a.warning_s) == (outcome, limit, warning)


def test_no_budget_and_no_repeat_limit() -> None:
    p = CapPolicy(per_call_s=1200, daily_budget_s=0, repeat_threshold=0)
    a = assess(N, Usage(10**6, 10**6), p)
    assert (a.outcome, a.limit_s) == (Outcome.OK, 1200)


def test_warning_for() -> None:
    assert warning_for(3600, 60) == 60
    assert warning_for(90, 60) == 45
    assert warning_for(1, 60) is None
    assert warning_for(3600, 0) is None


def test_the_day_is_the_calendar_day_in_the_centres_zone() -> None:
    tokyo = ZoneInfo("Asia/Tokyo")
    # 2026-11-24 14:59 UTC is 23:59 in Tokyo; 15:00 UTC is the next day there.
    assert day_start(datetime(2026, 11, 24, 14, 59, tzinfo=UTC), tokyo) == datetime(
        2026, 11, 24, tzinfo=tokyo
    )
    assert day_start(datetime(2026, 11, 24, 15, 0, tzinfo=UTC), tokyo) == datetime(
        2026, 11, 25, tzinfo=tokyo
    )


def test_ended_at_cap_allows_asterisks_rounding() -> None:
    assert ended_at_cap(1199, 1200) and ended_at_cap(1200, 1200)
    assert not ended_at_cap(1100, 1200) and not ended_at_cap(5000, None)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("95", 95.0), ("0", 0.0), ("12.5", 12.5), ("", None), (None, None), ("-1", None),
     ("1e9", None), ("nan", None), ("abc", None)],
)  # fmt: skip
def test_talk_seconds(text: str | None, seconds: float | None) -> None:
    assert talk_seconds(text) == seconds


@pytest.mark.parametrize(
    ("bridged_at", "ended_at", "seconds"),
    [("1796072375.100", "1796072383.600", 8.5),  # bridged, then the caller left
     ("", "1796072383.600", None),  # never bridged: no talk time
     ("1796072375.100", "", None), ("abc", "1796072383.6", None), ("0", "1796072383.6", None),
     ("1796072383.600", "1796072375.100", 0.0),  # a clock step backwards
     ("1e12", "1e12", None)],
)  # fmt: skip
def test_bridged_seconds(bridged_at: str, ended_at: str, seconds: float | None) -> None:
    got = bridged_seconds(bridged_at, ended_at)
    assert got == seconds if seconds is None else got == pytest.approx(seconds)
