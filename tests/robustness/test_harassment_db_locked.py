"""Issue 26, finding 6: with the database locked, the agent's `*0` redirected the caller but
left no hold, no blocklist proposal and no alert, and nothing tried again.

Now the alert goes out at once, and the hold and the proposal are stored as soon as the
database answers; a service stopped before that logs each one it could not store.
"""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

import pytest
from sqlalchemy import select

from ivr.db.models import blocklist_entries
from ivr.sim.fake_asterisk import CallerScript, Channel
from tests.support.alerts import mqtt, subscribed
from tests.support.inbound import row
from tests.support.mqtt import Broker
from tests.support.service import Service

CALLER = "Local/s@ivr-in-00000002;2"  # the fake's channel name for the caller's leg
AGENT = "PJSIP/sales-00000007"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_harassment_end_while_the_database_is_locked_is_kept(
    make_service: Any, broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    svc: Service = await make_service(mqtt(broker.port))
    routed = await svc.fake.call(
        Channel(callerid="0312345678", uniqueid="1.1"), CallerScript(["1"])
    )
    call_id, token = routed.variables["IVR_CALL_ID"], routed.variables["IVR_TOKEN"]
    await svc.app.journal.flush()
    svc.fake.live_channels = {CALLER}
    lock = sqlite3.connect(svc.cfg.database_url().removeprefix("sqlite+aiosqlite:///"))
    async with subscribed(broker.port) as inbox:
        lock.execute("BEGIN IMMEDIATE")  # another writer holds the database, for 8 s
        try:
            rec = await svc.fake.call(
                Channel(script="harassment", args=(call_id, token), channel=AGENT)
            )
            # The caller was moved to the closing prompt, and supervisors know, while locked.
            assert (
                rec.commands[0] == f'EXEC ChannelRedirect "{CALLER},ivr-guard-harassment-end,s,1"'
            )
            [alert] = await inbox.wait("harassment-end", timeout=5)
            assert alert["call_id"] == call_id
            assert svc.app.ender is not None and svc.app.ender.pending == 1
            await asyncio.sleep(8 - 5)  # the first try waited out SQLite's 5 s busy timeout
        finally:
            lock.rollback()
            lock.close()
    for _ in range(200):
        if svc.app.ender.pending == 0:
            break
        await asyncio.sleep(0.1)
    r = await row(svc, call_id)
    assert (r["legal_hold"], r["end_reason"]) == (True, "harassment")
    async with svc.engine.connect() as conn:
        [entry] = (await conn.execute(select(blocklist_entries))).all()
    assert (entry.pattern, entry.status) == ("+81312345678", "pending")
    assert f"call {call_id}: hold stored, blocklist entry {entry.id}" in caplog.text
