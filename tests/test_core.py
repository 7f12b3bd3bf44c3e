"""Pure decisions, table-driven."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import phonenumbers
import pytest

from ivr.core import menu
from ivr.core.blocklist import BlockEntry, EntryStatus, candidate_patterns, match
from ivr.core.caller import CallerClass, classify, e164_of, normalise
from ivr.core.hours import OpenState, OpenStates, Schedule, open_state, parse_interval
from ivr.core.screening import ClosedPolicy, Policy, Reason, ScreeningPolicy, screen
from ivr.core.text import escape, kept

JST = ZoneInfo("Asia/Tokyo")
NOW = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("number", "pres", "cls", "e164"),
    [
        ("0312345678", "0", CallerClass.NUMBER, "+81312345678"),
        ("03-1234-5678", "0", CallerClass.NUMBER, "+81312345678"),
        ("+81312345678", "0", CallerClass.NUMBER, "+81312345678"),
        ("09012345678", "0", CallerClass.NUMBER, "+819012345678"),
        ("anonymous", "35", CallerClass.WITHHELD, None),
        ("0312345678", "35", CallerClass.WITHHELD, None),
        ("0312345678", "prohib_passed_screen", CallerClass.WITHHELD, None),
        ("Private", "0", CallerClass.WITHHELD, None),
        ("restricted", "0", CallerClass.WITHHELD, None),
        ("unknown", "67", CallerClass.UNAVAILABLE, None),
        ("", "0", CallerClass.UNAVAILABLE, None),
        ("unavailable", "0", CallerClass.UNAVAILABLE, None),
        ("0312345678", "67", CallerClass.UNAVAILABLE, None),
        ("1&PJSIP/x", "0", CallerClass.UNAVAILABLE, None),
        ("0312345678;x", "0", CallerClass.UNAVAILABLE, None),
        ("' OR 1=1--", "0", CallerClass.UNAVAILABLE, None),
        ("../x", "0", CallerClass.UNAVAILABLE, None),
        ("9" * 10000, "0", CallerClass.UNAVAILABLE, None),
        ("12", "0", CallerClass.UNAVAILABLE, None),
    ],
)
def test_classify(number: str, pres: str, cls: CallerClass, e164: str | None) -> None:
    c = classify(number, pres)
    assert (c.cls, c.e164) == (cls, e164)
    assert len(c.raw) <= 64


def _entry(
    i: int,
    pattern: str,
    prefix: bool = False,
    status: EntryStatus = EntryStatus.APPROVED,
    expires: datetime | None = None,
    action: str = "reject",
) -> BlockEntry:
    return BlockEntry(i, pattern, prefix, status, expires, action)


def _by_library(text: str) -> str | None:
    try:
        return e164_of(phonenumbers.parse(text, "JP"))
    except phonenumbers.NumberParseException:
        return None


@pytest.mark.parametrize("lead", range(10, 100))
def test_plain_jp_numbers_normalise_as_phonenumbers_parses_them(lead: int) -> None:
    """The shortcut for `0…` and `+81…` numbers agrees with phonenumbers.parse for every two
    leading digits (010 is the international prefix), every length, possible or not."""
    rnd = random.Random(lead)
    for length in range(6, 19):
        for _ in range(12):
            digits = f"{lead}" + "".join(rnd.choice("0123456789") for _ in range(length - 2))
            for text in (f"0{digits}", f"+81{digits}", f"00{digits}", f"010{digits}"):
                assert normalise.__wrapped__(text, "JP") == _by_library(text), text


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        ([], None),
        ([_entry(1, "+81312345678")], 1),
        ([_entry(1, "+8131234")], None),  # an exact entry never matches as a prefix
        ([_entry(1, "+8131234", prefix=True)], 1),
        ([_entry(1, "+813", prefix=True), _entry(2, "+8131234", prefix=True)], 2),
        ([_entry(2, "+8131234", prefix=True), _entry(1, "+81312345678")], 1),
        ([_entry(1, "+81312345678", status=EntryStatus.PENDING)], None),
        ([_entry(1, "+81312345678", status=EntryStatus.REJECTED)], None),
        ([_entry(1, "+81312345678", status=EntryStatus.REVOKED)], None),
        ([_entry(1, "+81312345678", expires=NOW)], None),  # stops at its expiry instant
        ([_entry(1, "+81312345678", expires=NOW + timedelta(seconds=1))], 1),
        ([_entry(1, "+81399", prefix=True)], None),
    ],
)
def test_blocklist_match(entries: list[BlockEntry], expected: int | None) -> None:
    got = match("+81312345678", entries, NOW)
    assert (got.id if got else None) == expected


def test_candidate_patterns() -> None:
    assert candidate_patterns("+81312345678", 10) == ["+81312345678", "+8131234567", "+813123456"]


WEEKDAY = {d: (parse_interval("09:00-18:00"),) for d in ("mon", "tue", "wed", "thu", "fri")}
SCHED = Schedule("Asia/Tokyo", WEEKDAY, True, frozenset(), frozenset({(12, 31)}))


@pytest.mark.parametrize(
    ("local", "state"),
    [
        (datetime(2026, 11, 24, 10, 0), OpenState.OPEN),  # Tuesday
        (datetime(2026, 11, 24, 8, 59), OpenState.AFTER_HOURS),
        (datetime(2026, 11, 24, 18, 0), OpenState.AFTER_HOURS),  # the end is exclusive
        (datetime(2026, 11, 28, 10, 0), OpenState.AFTER_HOURS),  # Saturday
        (datetime(2026, 11, 23, 10, 0), OpenState.HOLIDAY),  # Labour Thanksgiving Day
        (datetime(2027, 1, 11, 10, 0), OpenState.HOLIDAY),  # Coming of Age Day (2nd Monday)
        (datetime(2026, 12, 31, 10, 0), OpenState.HOLIDAY),  # the centre's own closed day
    ],
)
def test_open_state(local: datetime, state: OpenState) -> None:
    assert open_state(local.replace(tzinfo=JST), SCHED) is state


def test_open_states_answers_as_open_state_across_second_and_interval_bounds() -> None:
    weekly = {d: (parse_interval("09:00:30-18:00:15"),) for d in ("mon", "tue")}
    sched = Schedule("Asia/Tokyo", weekly, True, frozenset(), frozenset())
    states = OpenStates(sched)
    opening = datetime(2026, 11, 24, 9, 0, 30, tzinfo=JST)
    closing = datetime(2026, 11, 24, 18, 0, 15, tzinfo=JST)
    for edge in (opening, closing, datetime(2026, 11, 24, 0, 0, tzinfo=JST)):  # and a holiday's end
        for us in (-1_000_001, -999_999, -1, 0, 1, 999_999, 1_000_000, 1_500_000):
            now = edge + timedelta(microseconds=us)
            assert states.at(now) is open_state(now, sched), now
    assert states.at(opening - timedelta(microseconds=1)) is OpenState.AFTER_HOURS
    assert states.at(opening) is OpenState.OPEN


def test_hours_are_whole_seconds_at_most() -> None:
    assert parse_interval("09:00:30-18:00").start.second == 30
    with pytest.raises(ValueError, match="whole seconds"):
        parse_interval("09:00:00.5-18:00")


def test_open_state_uses_the_centres_zone_not_utc() -> None:
    # 2026-11-24 00:30 UTC is 09:30 in Tokyo.
    assert open_state(datetime(2026, 11, 24, 0, 30, tzinfo=UTC), SCHED) is OpenState.OPEN


SPEC = menu.MenuSpec("menu", {"1": "sales", "2": "support"}, retries=2)


@pytest.mark.parametrize(
    ("answers", "final"),
    [
        (["1"], menu.Routed("sales", "1")),
        (["9", "2"], menu.Routed("support", "2")),
        ([None, None, "1"], menu.Routed("sales", "1")),
        ([None, None, None], menu.GaveUp("goodbye", None, "timeout")),
        (["9", None, "8"], menu.GaveUp("goodbye", None, "invalid")),
    ],
)
def test_menu(answers: list[str | None], final: menu.Step) -> None:
    ask = menu.start()
    step: menu.Step = ask
    befores = []
    for a in answers:
        assert isinstance(step, menu.Ask)
        step = menu.step(SPEC, step, a)
        if isinstance(step, menu.Ask):
            befores.append(step.before)
    assert step == final
    expected_befores = [
        "no-input" if a is None else "invalid-input" for a in answers[: len(befores)]
    ]
    assert befores == expected_befores


@pytest.mark.parametrize(
    ("cls", "policy", "block", "state", "reason", "proceed"),
    [
        (CallerClass.WITHHELD, ScreeningPolicy(), None, OpenState.OPEN, Reason.WITHHELD, False),
        (
            CallerClass.WITHHELD,
            ScreeningPolicy(withheld=Policy.ALLOW),
            None,
            OpenState.OPEN,
            Reason.MENU,
            True,
        ),
        (CallerClass.UNAVAILABLE, ScreeningPolicy(), None, OpenState.OPEN, Reason.MENU, True),
        (
            CallerClass.UNAVAILABLE,
            ScreeningPolicy(unavailable=Policy.REJECT),
            None,
            OpenState.OPEN,
            Reason.UNAVAILABLE,
            False,
        ),
        (
            CallerClass.NUMBER,
            ScreeningPolicy(),
            _entry(5, "+81"),
            OpenState.OPEN,
            Reason.BLOCKED,
            False,
        ),
        (CallerClass.NUMBER, ScreeningPolicy(), None, OpenState.HOLIDAY, Reason.HOLIDAY, False),
        (
            CallerClass.NUMBER,
            ScreeningPolicy(),
            None,
            OpenState.AFTER_HOURS,
            Reason.AFTER_HOURS,
            False,
        ),
        (
            CallerClass.NUMBER,
            ScreeningPolicy(),
            _entry(5, "+81"),
            OpenState.AFTER_HOURS,
            Reason.BLOCKED,
            False,
        ),
    ],
)
def test_screen(
    cls: CallerClass,
    policy: ScreeningPolicy,
    block: BlockEntry | None,
    state: OpenState,
    reason: Reason,
    proceed: bool,
) -> None:
    from ivr.core.caller import Caller

    s = screen(
        Caller(cls, "+81312345678" if cls is CallerClass.NUMBER else None, "x"),
        policy,
        block,
        state,
        ClosedPolicy(),
    )
    assert (s.reason, s.proceed) == (reason, proceed)


def test_blocked_entry_with_route_routes_without_refusal_prompt() -> None:
    from ivr.core.caller import Caller

    s = screen(
        Caller(CallerClass.NUMBER, "+81312345678", "x"),
        ScreeningPolicy(),
        _entry(7, "+81312345678", action="route:escalation"),
        OpenState.OPEN,
        ClosedPolicy(),
    )
    assert (s.route, s.prompt, s.entry_id) == ("escalation", None, 7)


def test_caller_text_is_escaped_and_cut_between_escapes() -> None:
    assert escape("a\nb\x00\u202ec") == "a\\nb\\x00\\u202ec"
    assert kept("Taro", 64) == "Taro"
    assert kept("ab\x00cd", 4) == "ab"  # `\x00` would not fit whole
    assert kept("\u202e" * 100, 64) == "\\u202e" * 10
    assert classify("03\x0012345678").raw == "03\\x0012345678"
