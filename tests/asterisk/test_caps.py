"""Time caps on a real Asterisk: L() with its prompts, the daily budget, the repeat limit."""

from __future__ import annotations

import asyncio
import json

from tests.support.asterisk import RealAsterisk
from tests.support.calls import Calls
from tests.support.guard import StartGuard


async def test_per_call_cap_is_enforced_by_asterisk_with_both_prompts(
    guard: StartGuard, calls: Calls, asterisk: RealAsterisk
) -> None:
    g = await guard({"caps": {"per_call_minutes": 0.1, "warning_lead_s": 3}})  # 6 s, warned at 3
    call = await calls.routed()
    bridged = await call.left_bridge(timeout=20)  # nobody hangs up: Asterisk ends it
    assert 5.0 <= bridged <= 8.0, bridged
    row = await g.call_row(call.linkedid, "talk_s")
    assert row["limit_s"] == 6
    assert abs(row["talk_s"] - bridged) <= 1.0, (row["talk_s"], bridged)
    log = asterisk.output()
    assert "ivr-guard/ja/time-warning" in log and "ivr-guard/ja/time-limit-reached" in log


async def test_daily_budget_counts_only_time_with_the_agent(
    guard: StartGuard, calls: Calls
) -> None:
    # 20 s a day, at least 12 s for a call: one call of ~4 s with the agent leaves 16 s.
    g = await guard({"caps": {"daily_budget_minutes": 20 / 60, "min_call_s": 12,
                              "per_call_minutes": 1, "warning_lead_s": 10}})  # fmt: skip
    first = await calls.routed()
    await asyncio.sleep(4)
    await first.hangup()
    bridged = await first.left_bridge()
    row = await g.call_row(first.linkedid, "talk_s")
    assert abs(row["talk_s"] - bridged) <= 1.0, (row["talk_s"], bridged)
    code, out, err = await g.ivr("callers", "show", "03-1234-5678", "--json")
    assert code == 0, err
    shown = json.loads(out)
    assert abs(shown["today_talk_s"] - bridged) <= 1.0
    assert abs(shown["next_call_limit_s"] - (20 - bridged)) <= 1.0, shown
    # The second call gets what is left, and uses it up.
    second = await calls.routed()
    await asyncio.sleep(6)
    await second.hangup()
    await second.left_bridge()
    row2 = await g.call_row(second.linkedid, "talk_s")
    assert row2["limit_s"] is not None and abs(row2["limit_s"] - (20 - bridged)) <= 1.0
    third = await calls.place("0312345678")
    await third.ended()
    refused = await g.call_row(third.linkedid, "decision")
    assert (refused["decision"], refused["reason"]) == ("hangup", "daily-limit")


async def test_repeat_limit_refuses_the_third_call(guard: StartGuard, calls: Calls) -> None:
    g = await guard({"caps": {"repeat_threshold": 2, "repeat_action": "refuse"}})
    for _ in range(2):
        call = await calls.place("0312345678")
        await call.agi_command("GET DATA")
        await call.hangup()
        await call.ended()
    third = await calls.place("0312345678")
    await third.ended()
    row = await g.call_row(third.linkedid, "decision")
    assert (row["decision"], row["reason"]) == ("hangup", "repeat-calls")
    commands = [e["Command"] for e in third.events("AGIExecStart")]
    assert any("repeat-refused" in c for c in commands), commands


async def test_each_cap_alert_names_its_own_call(guard: StartGuard, calls: Calls) -> None:
    """Two calls at once: the second's alerts fire from the timer the first one armed."""
    g = await guard({"caps": {"per_call_minutes": 0.1, "warning_lead_s": 3}})
    first = await calls.routed("0312345678")
    second = await calls.routed("0398765432")
    ids = []
    for call in (first, second):
        await call.left_bridge(timeout=20)
        row = await g.call_row(call.linkedid, "talk_s")
        ids.append(row["call_id"])
    lines = [json.loads(line) for line in g.output().splitlines() if line.startswith("{")]
    alerts = [x for x in lines if x["message"].startswith("alert cap-")]
    assert len(alerts) == 4, alerts
    for line in alerts:
        payload = json.loads(line["message"].split(" ", 2)[2])
        assert line["call_id"] == payload["call_id"], line
    assert {a["call_id"] for a in alerts} == set(ids)
