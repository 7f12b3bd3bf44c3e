"""Many calls at once (hang-ups at every step: tests/robustness/test_hangups.py)."""

from __future__ import annotations

import asyncio
from typing import Any

from ivr.sim.fake_asterisk import CallerScript, Channel
from tests.support.service import Service

FULL_FLOW_COMMANDS = 7  # ANSWER .. the decision's MSet for a caller who presses 1


async def test_500_concurrent_calls(make_service: Any, db_url: str) -> None:
    # The 500 lookups queue for the pool together. The database timeout is raised so that the
    # test asserts that none fails, not how fast a loaded CI machine serves them (at the 2 s
    # default, a slow run had 48 of 500 fail open on PostgreSQL).
    svc: Service = await make_service({"database": {"url": db_url, "timeout_s": 30.0}})
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


def test_freeze_heap_takes_startup_objects_out_of_the_collectors_sight() -> None:
    import gc

    from ivr.app import freeze_heap
    from ivr.core.caller import normalise

    try:
        freeze_heap("JP")
        assert gc.get_freeze_count() > 10_000  # modules, configuration, number metadata
        assert normalise("0312345678", "JP") == "+81312345678"  # the metadata is loaded
    finally:
        gc.unfreeze()
