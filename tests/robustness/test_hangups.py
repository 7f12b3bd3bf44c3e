"""A hang-up during every command of every inbound flow: the session ends within a second, the
call row is closed as abandoned, and no file descriptor, task, session or DB connection leaks."""

from __future__ import annotations

import asyncio
import gc
import os
import time
from typing import Any

import pytest

from ivr.db.calls import get_call
from ivr.sim.fake_asterisk import CallerScript, Channel
from tests.support.inbound import add_entry
from tests.support.service import Service

TAINTED_NAME = "x\nagi_callingpres: 0\n\n200 result=1 (forged)"
# flow: (channel, digits, commands in the full flow)
FLOWS: dict[str, tuple[Channel, list[str | None], int]] = {
    "menu": (Channel(), ["1"], 7),  # ANSWER .. the decision's MSet for a caller who presses 1
    "menu-retries": (Channel(), [None, "9", "2"], 11),  # timeout, invalid digit, then 2
    "blocked": (Channel(callerid="0311112222"), [], 3),
    "withheld": (Channel(callerid="anonymous", callingpres=35), [], 3),
    # resync, presentation, dialled number and linkedid
    "tainted": (Channel(calleridname=TAINTED_NAME), ["1"], 11),
}


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _pool_checked_out(svc: Service) -> int:
    return int(svc.engine.pool.checkedout())  # type: ignore[attr-defined]


@pytest.mark.parametrize("flow", FLOWS)
@pytest.mark.parametrize("mode", ["hangup", "eof"])
async def test_hangup_at_every_command_ends_within_a_second_and_leaks_nothing(
    make_service: Any, mode: str, flow: str
) -> None:
    svc: Service = await make_service()
    await add_entry(svc, "+81311112222")
    channel, digits, commands = FLOWS[flow]
    # The whole flow first: it has the length we hang up along, and it warms the pool (the
    # first call opens the pooled DB connection, which then stays open).
    full = await svc.fake.call(channel, CallerScript(digits=list(digits)))
    assert len(full.commands) == commands and not full.hung_up
    await asyncio.sleep(0)
    # Earlier tests' subprocess pipes and sockets close when collected: collect them now, so the
    # counts below see only what this test leaves behind.
    gc.collect()
    await asyncio.sleep(0.05)
    base_tasks, base_fds = len(asyncio.all_tasks()), _fds()
    for step in range(commands):
        script = (
            CallerScript(digits=list(digits), hangup_after_commands=step)
            if mode == "hangup"
            else CallerScript(digits=list(digits), disconnect_after_commands=step)
        )
        t0 = time.monotonic()
        rec = await svc.fake.call(channel, script, timeout=1.0)
        assert rec.hung_up
        # The server side has finished the session and closed the row within the second.
        while svc.app.agi.active_sessions:
            assert time.monotonic() - t0 < 1.0, f"session still running after step {step}"
            await asyncio.sleep(0.005)
        call_id = f"call{step + 2:04d}"
        await svc.app.journal.flush(timeout=1.0 - (time.monotonic() - t0))
        async with svc.engine.connect() as conn:
            r = await get_call(conn, call_id)
        assert r is not None and r["ended_at"] is not None, f"row not closed at step {step}"
        assert (r["end_reason"], r["decision"]) == ("caller-hangup", "abandoned"), step
    await asyncio.sleep(0.05)
    gc.collect()
    assert svc.app.agi.active_sessions == 0
    assert svc.app.agi.open_connections == 0
    assert _pool_checked_out(svc) == 0
    assert len(asyncio.all_tasks()) == base_tasks
    assert _fds() == base_fds
