"""Hang-ups at every step end cleanly and leave nothing behind; many calls at once."""

from __future__ import annotations

import asyncio
import gc
import os
import time
from typing import Any

import pytest

from ivr.db.calls import get_call
from ivr.sim.fake_asterisk import CallerScript, Channel
from tests.conftest import Service

FULL_FLOW_COMMANDS = 16  # ANSWER .. IVR_DECISION for a caller who presses 1


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _pool_checked_out(svc: Service) -> int:
    return int(svc.engine.pool.checkedout())  # type: ignore[attr-defined]


@pytest.mark.parametrize("mode", ["hangup", "eof"])
async def test_hangup_at_every_step_ends_within_a_second_and_leaks_nothing(
    make_service: Any, mode: str
) -> None:
    svc: Service = await make_service()
    # Warm up: the first call opens the pooled DB connection, which then stays open.
    await svc.fake.call(Channel(), CallerScript(digits=["1"]))
    await asyncio.sleep(0)
    # Earlier tests' subprocess pipes and sockets close when collected: collect them now, so the
    # counts below see only what this test leaves behind.
    gc.collect()
    await asyncio.sleep(0.05)
    base_tasks, base_fds = len(asyncio.all_tasks()), _fds()
    for step in range(FULL_FLOW_COMMANDS):
        script = (
            CallerScript(digits=["1"], hangup_after_commands=step)
            if mode == "hangup"
            else CallerScript(digits=["1"], disconnect_after_commands=step)
        )
        t0 = time.monotonic()
        rec = await svc.fake.call(Channel(), script, timeout=1.0)
        assert rec.hung_up
        # The server side has finished the session and closed the row within the second.
        while svc.app.agi.active_sessions:
            assert time.monotonic() - t0 < 1.0, (
                f"session still running after hang-up at step {step}"
            )
            await asyncio.sleep(0.005)
        call_id = f"call{step + 2:04d}"
        await svc.app.journal.flush(timeout=1.0 - (time.monotonic() - t0))
        async with svc.engine.connect() as conn:
            r = await get_call(conn, call_id)
        assert r is not None and r["ended_at"] is not None, f"row not closed at step {step}"
        assert r["end_reason"] == "caller-hangup" and r["decision"] == "abandoned"
    await asyncio.sleep(0.05)
    gc.collect()
    assert svc.app.agi.active_sessions == 0
    assert svc.app.agi.open_connections == 0
    assert _pool_checked_out(svc) == 0
    assert len(asyncio.all_tasks()) == base_tasks
    assert _fds() == base_fds


async def test_500_concurrent_calls(make_service: Any) -> None:
    svc: Service = await make_service()
    numbers = [f"03{n:08d}" for n in range(500)]
    digits = ["1", "2"]
    recs = await asyncio.gather(
        *(
            svc.fake.call(
                Channel(callerid=num, uniqueid=f"1795.{i}"),
                CallerScript(digits=[digits[i % 2]]),
                timeout=60,
            )
            for i, num in enumerate(numbers)
        )
    )
    routes = {"1": "sales", "2": "support"}
    for i, rec in enumerate(recs):
        assert rec.variables["IVR_DECISION"] == "route"
        assert rec.variables["IVR_ROUTE"] == routes[digits[i % 2]]
        assert len(rec.commands) == FULL_FLOW_COMMANDS
    await svc.app.journal.flush()
    async with svc.engine.connect() as conn:
        from sqlalchemy import func, select

        from ivr.db.models import calls

        count = (
            await conn.execute(
                select(func.count()).select_from(calls).where(calls.c.decision == "route")
            )
        ).scalar()
        callers = (await conn.execute(select(func.count(calls.c.caller_e164.distinct())))).scalar()
    assert count == 500 and callers == 500
    assert svc.app.agi.active_sessions == 0
    assert svc.app.inbound.db_failures == 0  # no lookup failed open under the load
