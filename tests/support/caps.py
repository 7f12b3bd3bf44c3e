"""Time-cap settings and ending a routed call, for the caps tests and others."""

from __future__ import annotations

from typing import Any

from ivr.sim.fake_asterisk import Channel
from tests.support.service import Service, token_for

CAPS: dict[str, Any] = {
    "per_call_minutes": 60,
    "warning_lead_s": 60,
    "daily_budget_minutes": 60,
    "min_call_s": 60,
    "repeat_threshold": 0,
}


async def hang_up(svc: Service, call_id: str, talk: str, status: str = "ANSWER") -> None:
    """What the dialplan's hang-up handler sends:
    AGI(.../hangup,ID,TOKEN,ANSWEREDTIME,DIALSTATUS)."""
    token = token_for(svc.cfg.data_dir, call_id)
    rec = await svc.fake.call(Channel(script="hangup", args=(call_id, token, talk, status)))
    assert rec.commands == []  # the channel is dead: nothing is sent to it
    await svc.app.journal.flush()
