"""The inbound screening decision: who is turned away before the menu, and why."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from ivr.core.blocklist import BlockEntry
from ivr.core.caller import Caller, CallerClass
from ivr.core.caps import Assessment, Outcome, RepeatAction
from ivr.core.hours import OpenState


class Policy(StrEnum):
    REJECT = "reject"
    ALLOW = "allow"


@dataclass(frozen=True)
class ScreeningPolicy:
    withheld: Policy = Policy.REJECT
    unavailable: Policy = Policy.ALLOW


def policy_for(
    dialled: str, default: ScreeningPolicy, by_dialled: Mapping[str, ScreeningPolicy]
) -> ScreeningPolicy:
    """The policy for the number the caller dialled (normalised by the caller of this)."""
    return by_dialled.get(dialled, default)


class Reason(StrEnum):
    WITHHELD = "withheld"
    UNAVAILABLE = "unavailable"
    BLOCKED = "blocked"
    AFTER_HOURS = "after-hours"
    HOLIDAY = "holiday"
    DAILY_LIMIT = "daily-limit"
    REPEAT = "repeat-calls"
    MENU = "menu"


@dataclass(frozen=True)
class Screen:
    """`proceed` → go on to the notices, then the menu (or, with `route`, play `prompt` and ring
    `route` without the menu); otherwise play `prompt` and end or route."""

    proceed: bool
    reason: Reason
    prompt: str | None = None
    route: str | None = None
    entry_id: int | None = None


@dataclass(frozen=True)
class ClosedPolicy:
    after_hours_prompt: str = "after-hours"
    holiday_prompt: str = "holiday"
    route: str | None = None


@dataclass(frozen=True)
class CapRouting:
    """Where callers stopped by the daily budget or the repeat limit go."""

    exhausted_route: str | None = None
    repeat_action: RepeatAction = RepeatAction.ROUTE
    repeat_route: str | None = None


def screen(
    caller: Caller,
    policy: ScreeningPolicy,
    block: BlockEntry | None,
    state: OpenState,
    closed: ClosedPolicy,
    caps: Assessment | None = None,
    cap_routing: CapRouting = CapRouting(),
) -> Screen:
    """Withheld, unavailable, blocklist, business hours, daily budget, then repeat calls."""
    if caller.cls is CallerClass.WITHHELD and policy.withheld is Policy.REJECT:
        return Screen(False, Reason.WITHHELD, prompt="anonymous-rejected")
    if caller.cls is CallerClass.UNAVAILABLE and policy.unavailable is Policy.REJECT:
        return Screen(False, Reason.UNAVAILABLE, prompt="unavailable-rejected")
    if block is not None:
        # A `route:NAME` entry sends the caller to a dedicated team without the refusal prompt.
        prompt = None if block.route else "blocked"
        return Screen(False, Reason.BLOCKED, prompt=prompt, route=block.route, entry_id=block.id)
    if state is OpenState.HOLIDAY:
        return Screen(False, Reason.HOLIDAY, prompt=closed.holiday_prompt, route=closed.route)
    if state is OpenState.AFTER_HOURS:
        return Screen(
            False, Reason.AFTER_HOURS, prompt=closed.after_hours_prompt, route=closed.route
        )
    if caps is not None and caps.outcome is Outcome.DAILY_LIMIT:
        r = cap_routing.exhausted_route
        return Screen(False, Reason.DAILY_LIMIT, prompt="daily-limit-reached", route=r)
    if caps is not None and caps.outcome is Outcome.REPEAT:
        if cap_routing.repeat_action is RepeatAction.ROUTE and cap_routing.repeat_route:
            return Screen(
                True, Reason.REPEAT, prompt="repeat-limit", route=cap_routing.repeat_route
            )
        return Screen(False, Reason.REPEAT, prompt="repeat-refused")
    return Screen(True, Reason.MENU)
