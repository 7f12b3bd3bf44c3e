"""Ending a call on a real Asterisk: harassment end by a supervisor or the agent's *0, a plain
end, the caller's own *0, and the AMI fallback for the talk time."""

from __future__ import annotations

import asyncio
import json

from tests.support.asterisk import RealAsterisk
from tests.support.calls import Call, Calls
from tests.support.guard import Guard, StartGuard

# A cap that would warn 4 s into the call: a harassment end at 2 s must silence it.
SHORT_CAP = {"caps": {"per_call_minutes": 0.15, "warning_lead_s": 5}}


async def _assert_harassment_end(g: Guard, call: Call, asterisk: RealAsterisk) -> None:
    talked = await call.left_bridge()
    await call.ended()
    row = await g.call_row(call.linkedid, "talk_s")
    # The talk time up to the redirect is charged to the caller's day.
    assert abs(row["talk_s"] - talked) <= 1.0, (row["talk_s"], talked)
    assert row["end_reason"] == "harassment" and row["legal_hold"] == 1
    [entry] = g.rows("SELECT * FROM blocklist_entries")
    assert (entry["pattern"], entry["status"]) == ("+81312345678", "pending")
    assert "ivr-guard/ja/harassment-end" in asterisk.output()
    # The cap's warning would have come 4 s into the call: none after the end.
    await asyncio.sleep(max(0.0, 4.5 - talked))
    assert "alert cap-" not in g.output()


async def test_supervisor_ends_a_call_for_harassment(
    guard: StartGuard, calls: Calls, asterisk: RealAsterisk
) -> None:
    g = await guard(SHORT_CAP)
    call = await calls.routed()
    await asyncio.sleep(2)
    row = await g.call_row(call.linkedid, "decision")
    code, out, err = await g.ivr(
        "calls", "end", row["call_id"], "--harassment", "--category", "threats",
        "--note", "threatened the agent",
    )  # fmt: skip
    assert code == 0, out + err
    await _assert_harassment_end(g, call, asterisk)


async def test_agent_ends_a_call_with_star_zero(
    guard: StartGuard, calls: Calls, asterisk: RealAsterisk
) -> None:
    g = await guard(SHORT_CAP)
    call = await calls.routed()
    await asyncio.sleep(2)
    await call.agent_presses("*0")
    await _assert_harassment_end(g, call, asterisk)
    [entry] = g.rows("SELECT * FROM blocklist_entries")
    assert "test-agents" in entry["note"], entry


async def test_the_callers_star_zero_triggers_nothing(guard: StartGuard, calls: Calls) -> None:
    g = await guard()
    call = await calls.routed()
    await call.press("*0")
    await asyncio.sleep(2)
    assert not call.events("BridgeLeave", Channel=call.channel)  # still talking
    await call.hangup()
    await call.left_bridge()
    row = await g.call_row(call.linkedid, "talk_s")
    assert row["end_reason"] != "harassment" and not row["legal_hold"]
    assert g.rows("SELECT * FROM blocklist_entries") == []


async def test_plain_end_charges_the_talk_time(guard: StartGuard, calls: Calls) -> None:
    g = await guard()
    call = await calls.routed()
    await asyncio.sleep(2)
    row = await g.call_row(call.linkedid, "decision")
    code, out, err = await g.ivr("calls", "end", row["call_id"])
    assert code == 0, out + err
    talked = await call.left_bridge()
    await call.ended()
    row = await g.call_row(call.linkedid, "talk_s")
    assert abs(row["talk_s"] - talked) <= 1.0, (row["talk_s"], talked)
    assert row["end_reason"] not in ("not-answered", None)


async def test_ami_counts_the_talk_time_when_the_hangup_handler_cannot(
    guard: StartGuard, calls: Calls, asterisk: RealAsterisk
) -> None:
    g = await guard()
    call = await calls.routed()
    await asyncio.sleep(2)
    # The hang-up handler's FastAGI connection will fail: only AMI is left to count.
    reply = await call.ami.action(
        "Setvar", {"Variable": "IVR_GUARD_AGI", "Value": "agi://127.0.0.1:9"}
    )
    assert reply.get("Response") == "Success", reply
    try:
        await call.hangup()
        talked = await call.left_bridge()
        row = await g.call_row(call.linkedid, "talk_s")
    finally:
        await call.ami.action("Setvar", {"Variable": "IVR_GUARD_AGI", "Value": asterisk.agi_url})
    assert row["talk_source"] != "hangup-handler"
    assert abs(row["talk_s"] - talked) <= 1.0, (row["talk_s"], talked)
    code, out, _ = await g.ivr("callers", "show", "03-1234-5678", "--json")
    assert code == 0 and abs(json.loads(out)["today_talk_s"] - talked) <= 1.0
