"""What a call leaves behind: its journal rows and the dialplan's variables. No I/O."""

from __future__ import annotations

from datetime import datetime

from ivr import names
from ivr.config import Config
from ivr.core.decision import Action, Decision
from ivr.db.rows import CallOutcome, CallStart
from ivr.handlers.arrival import Arrival


def start_row(call_id: str, came: Arrival, now: datetime) -> CallStart:
    return CallStart(
        call_id=call_id,
        uniqueid=came.uniqueid,
        linkedid=came.linkedid,
        caller_raw=came.caller.raw,
        caller_name=came.caller_name,
        caller_e164=came.caller.e164,
        caller_class=str(came.caller.cls),
        dialled=came.dialled,
        started_at=now,
        channel=came.channel,
    )


def outcome(
    d: Decision | None,
    recording: str | None,
    failed_open: bool,
    hung_up: bool,
    started: datetime,
    now: datetime,
) -> CallOutcome:
    """The call's row once the script ends: a routed call stays open (its hang-up handler
    closes it); `d` is None when the script ended before deciding."""
    routed = d is not None and d.action is Action.ROUTE and not failed_open
    if hung_up:
        decision: str | None = "abandoned"
    elif failed_open:
        decision = names.DECISION_FAILOPEN
    else:
        decision = str(d.action) if d is not None and d.action is not Action.MENU else None
    ended = None if routed and not hung_up else now
    return CallOutcome(
        decision=decision,
        reason="deadline" if failed_open else (d.reason if d else None),
        route=d.route if d and not failed_open else None,
        blocklist_entry_id=d.entry_id if d else None,
        recording_path=recording,
        ended_at=ended,
        end_reason="caller-hangup" if hung_up else (None if routed else "ivr-ended"),
        duration_s=(ended - started).total_seconds() if ended else None,
        limit_s=d.limit_s if d and routed else None,
    )


def dialplan_variables(
    cfg: Config, call_id: str, token: str, d: Decision, recording: str | None
) -> list[tuple[str, str]]:
    """The decision as the dialplan reads it, `IVR_DECISION` last: set means complete."""
    route_cfg = cfg.routes.get(d.route or "")
    values = {
        names.VAR_CALL_ID: call_id,
        names.VAR_TOKEN: token,
        names.VAR_RECORDING: recording or "",
        names.VAR_LIMIT_MS: str(d.limit_s * 1000) if d.limit_s is not None else "",
        names.VAR_WARNING_MS: str(d.warning_s * 1000) if d.warning_s else "",
        names.VAR_SOUNDS: f"{cfg.prompts.sound_prefix}/{cfg.prompts.language}",
        names.VAR_ROUTE: d.route or "",
        names.VAR_DIAL: route_cfg.dial if route_cfg else "",
        names.VAR_DIAL_TIMEOUT: str(route_cfg.timeout_s) if route_cfg else "",
        names.VAR_REASON: d.reason,
        names.VAR_DECISION: str(d.action),
    }
    return [(var, values[var]) for var in names.DECISION_VARS]
