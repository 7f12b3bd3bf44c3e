"""Issue 26, finding 1: a local user who can reach the FastAGI port ends or charges a call.

The attack: read a live call id (`ivr calls active --json` showed it), then open FastAGI
sessions as Asterisk would for the `harassment` and `hangup` scripts. Without the call's token
(which only the dialplan has, from the inbound script) neither changes anything; with it, the
same sessions act as before.
"""

from __future__ import annotations

from typing import Any

import pytest

from ivr.db.models import blocklist_entries
from ivr.sim.fake_asterisk import CallerScript, Channel
from tests.support.inbound import row
from tests.support.service import Service, token_for

CALLER_CHANNEL = "PJSIP/trunk-00000001"
AGENT = "PJSIP/agent-00000002"


async def _routed(svc: Service) -> tuple[str, str]:
    rec = await svc.fake.call(
        Channel(callerid="0312345678", channel=CALLER_CHANNEL, uniqueid="1.1"),
        CallerScript(digits=["1"]),
    )
    await svc.app.journal.flush()
    return rec.variables["IVR_CALL_ID"], rec.variables["IVR_TOKEN"]


@pytest.mark.parametrize("token", [None, "", "0" * 32, "call0001"])
async def test_without_the_token_a_harassment_session_changes_nothing(
    make_service: Any, token: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    svc: Service = await make_service()
    call_id, _ = await _routed(svc)
    svc.fake.live_channels = {CALLER_CHANNEL}
    args = (call_id,) if token is None else (call_id, token)
    rec = await svc.fake.call(Channel(script="harassment", args=args, channel="Local/x-0;1"))
    assert rec.commands == []  # no redirect: the caller is still talking
    r = await row(svc, call_id)
    assert (r["legal_hold"], r["end_reason"]) == (False, None)
    async with svc.engine.connect() as conn:
        assert (await conn.execute(blocklist_entries.select())).all() == []
    assert f"harassment feature for call {call_id} without its token" in caplog.text


async def test_without_the_token_a_hangup_session_charges_nothing(make_service: Any) -> None:
    svc: Service = await make_service()
    call_id, token = await _routed(svc)
    # The reproduced attack: `hangup` with `<id>,86400,ANSWER`, and with a token guessed.
    for args in [(call_id, "86400", "ANSWER"), (call_id, "f" * 32, "86400", "ANSWER")]:
        rec = await svc.fake.call(Channel(script="hangup", args=args))
        assert rec.commands == []
    await svc.app.journal.flush()
    r = await row(svc, call_id)
    assert (r["talk_s"], r["ended_at"]) == (None, None)
    # The dialplan's own report, with the token it has, is counted.
    assert token == token_for(svc.cfg.data_dir, call_id)
    await svc.fake.call(Channel(script="hangup", args=(call_id, token, "95", "ANSWER")))
    await svc.app.journal.flush()
    assert (await row(svc, call_id))["talk_s"] == 95


async def test_a_token_is_the_calls_own(make_service: Any) -> None:
    """A token from the attacker's own call does not end someone else's."""
    svc: Service = await make_service()
    victim, _ = await _routed(svc)
    mine = await svc.fake.call(
        Channel(callerid="0399990000", uniqueid="2.1"), CallerScript(digits=["1"])
    )
    svc.fake.live_channels = {CALLER_CHANNEL}
    args = (victim, mine.variables["IVR_TOKEN"])
    rec = await svc.fake.call(Channel(script="harassment", args=args, channel=AGENT))
    assert rec.commands == []
    assert (await row(svc, victim))["legal_hold"] is False
