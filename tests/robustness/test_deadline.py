"""A handler over its deadline sets the fail-open decision, and the dialplan's default applies."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from ivr.db.calls import get_call
from ivr.sim.fake_asterisk import CallerScript, Channel
from tests.conftest import Service
from tests.robustness.dialplan import walk

FAILOPEN = ("Goto", "ivr-guard-failopen,s,1")


def test_the_walker_follows_the_shipped_dialplan() -> None:
    routed = {
        "IVR_DECISION": "route",
        "IVR_DIAL": "PJSIP/sales",
        "IVR_DIAL_TIMEOUT": "30",
        "IVR_LIMIT_MS": "3600000",
        "IVR_WARNING_MS": "60000",
    }
    assert walk(routed) == ("Dial", "PJSIP/sales,30,L(3600000:60000)")
    assert walk({**routed, "IVR_WARNING_MS": ""}) == ("Dial", "PJSIP/sales,30,L(3600000)")
    assert walk({**routed, "IVR_LIMIT_MS": ""}) == ("Dial", "PJSIP/sales,30")
    assert walk({"IVR_DECISION": "hangup"}) == ("Hangup", "")
    assert walk({}) == FAILOPEN  # the service never set a decision
    assert walk(routed, agistatus="FAILURE") == FAILOPEN  # the service was not reachable


async def test_a_handler_over_its_deadline_fails_open(
    make_service: Any, caplog: pytest.LogCaptureFixture
) -> None:
    svc: Service = await make_service({"agi": {"handler_deadline_s": 0.5}})
    svc.fake.audio_delay = 0.2  # the notices take longer than the whole deadline
    with caplog.at_level(logging.ERROR):
        rec = await svc.fake.call(Channel(), CallerScript(digits=["1"]))
    # The command under way when the deadline passed got its reply before anything else went.
    assert rec.commands[-2].startswith("STREAM FILE") and rec.commands[-1] == (
        'EXEC MSet "IVR_REASON=deadline,IVR_DECISION=failopen"'
    )
    assert all(len(r) == 1 and r[0].startswith("200 ") for r in rec.replies)
    assert walk(rec.variables) == FAILOPEN
    assert "not decided within agi.handler_deadline_s (0.5 s): failing open" in caplog.text
    await svc.app.journal.flush()
    async with svc.engine.connect() as conn:
        r = await get_call(conn, "call0001")
    assert r is not None
    assert (r["decision"], r["reason"], r["end_reason"]) == ("failopen", "deadline", "ivr-ended")
    assert svc.app.agi.active_sessions == 0


async def test_a_hang_up_while_failing_open_is_an_abandoned_call(make_service: Any) -> None:
    svc: Service = await make_service({"agi": {"handler_deadline_s": 0.3}})
    svc.fake.audio_delay = 0.2
    rec = await svc.fake.call(Channel(), CallerScript(digits=["1"], hangup_after_commands=3))
    # The variables reached a dead channel (EXEC is allowed there), where no dialplan reads them.
    assert rec.hung_up and rec.replies[-1][0] == "HANGUP"
    await svc.app.journal.flush()
    async with svc.engine.connect() as conn:
        r = await get_call(conn, "call0001")
    assert r is not None and (r["decision"], r["end_reason"]) == ("abandoned", "caller-hangup")
