"""The whole inbound decision, from the facts of one call to what the dialplan does with it.

`decide` is called once with the facts known when the call arrives. When the answer is
`Action.MENU` the handler runs the menu and calls `decide` again with its outcome; that second
answer is final. Nothing here does I/O or reads a clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from ivr.core import caps, menu
from ivr.core.alerts import Alert, AlertType
from ivr.core.blocklist import BlockEntry, match
from ivr.core.caller import Caller
from ivr.core.hours import OpenState
from ivr.core.screening import (
    CapRouting,
    ClosedPolicy,
    Reason,
    Screen,
    ScreeningPolicy,
    policy_for,
    screen,
)


class Action(StrEnum):
    """What the dialplan does next (`IVR_DECISION`), or `MENU`: ask the caller first."""

    ROUTE = "route"
    HANGUP = "hangup"
    MENU = "menu"


@dataclass(frozen=True)
class Rules:
    """The configuration's part of the decision, built once per service."""

    policy: ScreeningPolicy
    by_dialled: Mapping[str, ScreeningPolicy]
    closed: ClosedPolicy
    caps: caps.CapPolicy
    cap_routing: CapRouting


@dataclass(frozen=True)
class Facts:
    """What is known of one call when it arrives."""

    call_id: str
    caller: Caller
    dialled: str  # normalised, as `policy_for` looks it up
    entries: Sequence[BlockEntry]  # blocklist candidates for the caller's number
    usage: caps.Usage | None  # None: exempt, no number, or the database did not answer
    hours: OpenState
    now: datetime


@dataclass(frozen=True)
class Decision:
    """`record`: start the recording and play both notices; then `prompt`, if any."""

    action: Action
    reason: str
    screened: Reason  # the screening's own reason (metrics), also after the menu
    record: bool = False
    prompt: str | None = None
    route: str | None = None
    entry_id: int | None = None
    limit_s: int | None = None  # the per-call cap of a routed call
    warning_s: int | None = None  # seconds before the cap to warn
    alerts: tuple[Alert, ...] = field(default=())


_ALERT_FOR = {
    Reason.WITHHELD: AlertType.WITHHELD,
    Reason.UNAVAILABLE: AlertType.UNAVAILABLE,
    Reason.BLOCKED: AlertType.BLOCKED,
    Reason.DAILY_LIMIT: AlertType.DAILY_LIMIT,
    Reason.REPEAT: AlertType.REPEAT_LIMIT,
}


def decide(facts: Facts, rules: Rules, answer: menu.Routed | menu.GaveUp | None = None) -> Decision:
    """The decision for `facts`; `answer` is the menu's outcome, once it was asked."""
    e164 = facts.caller.e164
    block = match(e164, facts.entries, facts.now) if e164 else None
    assessment = caps.assess(e164, facts.usage, rules.caps)
    policy = policy_for(facts.dialled, rules.policy, rules.by_dialled)
    scr = screen(
        facts.caller, policy, block, facts.hours, rules.closed, assessment, rules.cap_routing
    )
    if scr.reason is Reason.DAILY_LIMIT and scr.route:
        limit: int | None = rules.caps.per_call_s  # the escalation team gets the per-call cap
    else:
        limit = assessment.limit_s
    warning = caps.warning_for(limit, rules.caps.warning_lead_s) if limit is not None else None
    base = Decision(
        Action.HANGUP,
        str(scr.reason),
        scr.reason,
        record=scr.proceed,
        entry_id=scr.entry_id,
        limit_s=limit,
        warning_s=warning,
    )
    if scr.proceed and scr.route is None:  # the menu decides the route
        if answer is None:
            return _with(base, Action.MENU, None, None)
        if isinstance(answer, menu.Routed):
            return _with(base, Action.ROUTE, answer.route, "transferring")
        return _with(base, None, answer.route, answer.prompt, reason=f"menu-{answer.last}")
    alerts = _alerts(facts, rules, scr, assessment)
    return _with(base, None, scr.route, scr.prompt, alerts=alerts)


def _with(
    base: Decision,
    action: Action | None,
    route: str | None,
    prompt: str | None,
    *,
    reason: str | None = None,
    alerts: tuple[Alert, ...] = (),
) -> Decision:
    """`base` with its route; `action` None: route when there is one, else hang up. Only a
    routed call keeps a limit."""
    if action is None:
        action = Action.ROUTE if route else Action.HANGUP
    routed = action is Action.ROUTE
    return Decision(
        action,
        reason or base.reason,
        base.screened,
        record=base.record,
        prompt=prompt,
        route=route,
        entry_id=base.entry_id,
        limit_s=base.limit_s if routed else None,
        warning_s=base.warning_s if routed and base.limit_s else None,
        alerts=alerts,
    )


def _alerts(facts: Facts, rules: Rules, scr: Screen, a: caps.Assessment) -> tuple[Alert, ...]:
    kind = _ALERT_FOR.get(scr.reason)
    if kind is None:
        return ()
    details: dict[str, str | int | float | None] = {"route": scr.route}
    elapsed: float | None = None
    cap: int | None = None
    if kind is AlertType.BLOCKED:
        details["entry_id"] = scr.entry_id
    elif kind is AlertType.DAILY_LIMIT:
        elapsed, cap = a.used_s, rules.caps.daily_budget_s
    elif kind is AlertType.REPEAT_LIMIT:
        details["calls_in_window"] = a.calls_in_window
        details["window_s"] = rules.caps.repeat_window_s
        details["action"] = "route" if scr.proceed else "refuse"
    alert = Alert(kind, facts.call_id, facts.caller.e164, facts.now, elapsed, cap, details)
    return (alert,)
