"""The whole inbound decision (`ivr.core.decision`), from facts to what the dialplan does."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from ivr.core import menu
from ivr.core.alerts import AlertType
from ivr.core.blocklist import BlockEntry, EntryStatus
from ivr.core.caller import Caller, CallerClass
from ivr.core.caps import CapPolicy, RepeatAction, Usage
from ivr.core.decision import Action, Facts, Rules, decide
from ivr.core.hours import OpenState
from ivr.core.screening import CapRouting, ClosedPolicy, Policy, Reason, ScreeningPolicy

NOW = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)
NUMBER = "+81312345678"
RULES = Rules(
    policy=ScreeningPolicy(),
    by_dialled={"+81120000000": ScreeningPolicy(withheld=Policy.ALLOW)},
    closed=ClosedPolicy(route=None),
    caps=CapPolicy(per_call_s=600, warning_lead_s=60, daily_budget_s=1800, repeat_threshold=3),
    cap_routing=CapRouting(exhausted_route=None, repeat_route="escalation"),
)
FACTS = Facts(
    call_id="c1",
    caller=Caller(CallerClass.NUMBER, NUMBER, "0312345678"),
    dialled="+81312340000",
    entries=(),
    usage=Usage(0.0, 0),
    hours=OpenState.OPEN,
    now=NOW,
)


def entry(action: str = "reject", status: EntryStatus = EntryStatus.APPROVED) -> BlockEntry:
    return BlockEntry(7, NUMBER, False, status, None, action)


def test_a_caller_in_hours_is_asked_the_menu_then_routed_with_the_cap() -> None:
    first = decide(FACTS, RULES)
    assert (first.action, first.record, first.alerts) == (Action.MENU, True, ())
    final = decide(FACTS, RULES, menu.Routed("sales", "1"))
    assert (final.action, final.route, final.reason, final.prompt) == (
        Action.ROUTE,
        "sales",
        "menu",
        "transferring",
    )
    assert (final.limit_s, final.warning_s, final.screened) == (600, 60, Reason.MENU)


def test_the_daily_budget_left_is_the_limit() -> None:
    d = decide(dataclasses.replace(FACTS, usage=Usage(1500.0, 1)), RULES, menu.Routed("s", "1"))
    assert (d.limit_s, d.warning_s) == (300, 60)


def test_giving_up_at_the_menu_hangs_up_without_a_limit() -> None:
    d = decide(FACTS, RULES, menu.GaveUp("goodbye", None, "timeout"))
    assert (d.action, d.reason, d.prompt, d.limit_s, d.warning_s) == (
        Action.HANGUP,
        "menu-timeout",
        "goodbye",
        None,
        None,
    )


def test_a_blocked_caller_is_refused_and_alerted_with_the_entry() -> None:
    d = decide(dataclasses.replace(FACTS, entries=[entry()]), RULES)
    assert (d.action, d.reason, d.prompt, d.record, d.entry_id) == (
        Action.HANGUP,
        "blocked",
        "blocked",
        False,
        7,
    )
    assert [(a.type, a.call_id, a.caller, a.details["entry_id"]) for a in d.alerts] == [
        (AlertType.BLOCKED, "c1", NUMBER, 7)
    ]


def test_a_pending_entry_does_not_block() -> None:
    d = decide(dataclasses.replace(FACTS, entries=[entry(status=EntryStatus.PENDING)]), RULES)
    assert d.action is Action.MENU


def test_a_route_entry_sends_the_caller_to_its_team_with_the_cap() -> None:
    d = decide(dataclasses.replace(FACTS, entries=[entry("route:legal")]), RULES)
    assert (d.action, d.route, d.prompt, d.limit_s) == (Action.ROUTE, "legal", None, 600)


@pytest.mark.parametrize(
    ("cls", "dialled", "action", "reason"),
    [
        (CallerClass.WITHHELD, "+81312340000", Action.HANGUP, "withheld"),
        (CallerClass.WITHHELD, "+81120000000", Action.MENU, "menu"),  # allowed on that number
        (CallerClass.UNAVAILABLE, "+81312340000", Action.MENU, "menu"),
    ],
)
def test_withheld_and_unavailable_follow_the_dialled_numbers_policy(
    cls: CallerClass, dialled: str, action: Action, reason: str
) -> None:
    facts = dataclasses.replace(FACTS, caller=Caller(cls, None, ""), dialled=dialled, usage=None)
    d = decide(facts, RULES)
    assert (d.action, d.reason) == (action, reason)
    assert [a.type for a in d.alerts] == ([AlertType.WITHHELD] if reason == "withheld" else [])


def test_after_hours_and_holidays_play_their_prompt_and_hang_up() -> None:
    for state, prompt in ((OpenState.AFTER_HOURS, "after-hours"), (OpenState.HOLIDAY, "holiday")):
        d = decide(dataclasses.replace(FACTS, hours=state), RULES)
        assert (d.action, d.prompt, d.alerts) == (Action.HANGUP, prompt, ())


def test_an_exhausted_budget_refuses_with_the_usage_in_the_alert() -> None:
    d = decide(dataclasses.replace(FACTS, usage=Usage(1790.0, 1)), RULES)
    assert (d.action, d.prompt, d.limit_s) == (Action.HANGUP, "daily-limit-reached", None)
    (alert,) = d.alerts
    assert (alert.type, alert.elapsed_s, alert.cap_s) == (AlertType.DAILY_LIMIT, 1790.0, 1800)


def test_an_exhausted_budget_with_a_route_gets_the_per_call_cap() -> None:
    rules = dataclasses.replace(RULES, cap_routing=CapRouting(exhausted_route="escalation"))
    d = decide(dataclasses.replace(FACTS, usage=Usage(1790.0, 1)), rules)
    assert (d.action, d.route, d.limit_s, d.warning_s) == (Action.ROUTE, "escalation", 600, 60)


def test_repeat_calls_skip_the_menu_to_the_repeat_route_or_are_refused() -> None:
    facts = dataclasses.replace(FACTS, usage=Usage(10.0, 3))
    d = decide(facts, RULES)
    assert (d.action, d.route, d.record, d.prompt) == (
        Action.ROUTE,
        "escalation",
        True,
        "repeat-limit",
    )
    assert d.alerts[0].details == {
        "route": "escalation",
        "calls_in_window": 3,
        "window_s": 86400,
        "action": "route",
    }
    refuse = dataclasses.replace(
        RULES,
        caps=dataclasses.replace(RULES.caps, repeat_action=RepeatAction.REFUSE),
        cap_routing=CapRouting(repeat_action=RepeatAction.REFUSE),
    )
    d = decide(facts, refuse)
    assert (d.action, d.prompt, d.record) == (Action.HANGUP, "repeat-refused", False)
    assert d.alerts[0].details["action"] == "refuse"


def test_the_decision_is_immutable() -> None:
    d = decide(FACTS, RULES)
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.route = "x"  # type: ignore[misc]
