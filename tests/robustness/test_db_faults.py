"""The database locked (SQLite) or down (PostgreSQL): calls are still routed, writes are retried,
and nothing is lost once it is back."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from ivr.db import migrate
from ivr.db.models import calls
from ivr.sim.fake_asterisk import CallerScript, Channel
from tests.support.pg import PgServer
from tests.support.service import Service, token_for


@pytest.fixture
def own_pg() -> Iterator[PgServer]:
    """A PostgreSQL server of this test's own, which it stops and starts again."""
    server = PgServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def _calls(svc: Service, first: int, count: int) -> list[str]:
    """`count` routed calls from distinct numbers; their call ids."""
    ids = []
    for n in range(first, first + count):
        rec = await svc.fake.call(
            Channel(callerid=f"03{n:08d}", uniqueid=f"5.{n}"), CallerScript(digits=["1"])
        )
        assert rec.variables["IVR_DECISION"] == "route"
        ids.append(rec.variables["IVR_CALL_ID"])
    return ids


async def _hang_up_all(svc: Service, ids: list[str]) -> None:
    for call_id in ids:
        token = token_for(svc.cfg.data_dir, call_id)
        rec = await svc.fake.call(Channel(script="hangup", args=(call_id, token, "42", "ANSWER")))
        assert rec.commands == []


async def _rows(svc: Service) -> dict[str, dict[str, Any]]:
    async with svc.engine.connect() as conn:
        result = await conn.execute(select(calls))
        return {r["call_id"]: dict(r) for r in result.mappings()}


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_locked_sqlite_database_delays_writes_and_loses_none(
    make_service: Any, sqlite_url: str
) -> None:
    svc: Service = await make_service()
    path = Path(sqlite_url.split("///", 1)[1])
    await _calls(svc, 0, 2)
    await svc.app.journal.flush()
    # Another process holds the write lock (a backup tool, a stuck CLI) longer than the
    # busy timeout.
    locker = sqlite3.connect(path, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        ids = await _calls(svc, 10, 10)
        await _hang_up_all(svc, ids)
        for _ in range(400):
            if svc.app.journal.failures:
                break
            await asyncio.sleep(0.02)
        assert svc.app.journal.failures >= 1 and svc.app.journal.backlog > 0
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    await svc.app.journal.flush(timeout=30)
    rows = await _rows(svc)
    assert len(rows) == 12 and svc.app.journal.dropped == 0
    for call_id in ids:
        assert (rows[call_id]["decision"], rows[call_id]["talk_s"]) == ("route", 42)
    assert svc.app.inbound.db_failures == 0  # WAL readers never waited for the lock


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_short_sqlite_lock_is_waited_out_quietly(
    make_service: Any, sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # The journal writes on the event loop with no busy timeout: while another writer holds
    # the lock for less than the busy timeout, it tries again every few ms, counts no failure
    # and logs nothing, and the calls meanwhile go on.
    svc: Service = await make_service()
    path = Path(sqlite_url.split("///", 1)[1])
    locker = sqlite3.connect(path, isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")
    try:
        with caplog.at_level(logging.WARNING, logger="ivr.journal"):
            ids = await _calls(svc, 0, 3)
            await asyncio.sleep(0.3)
            assert svc.app.journal.backlog > 0  # still held back by the lock
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    await svc.app.journal.flush(timeout=5)
    assert set(ids) <= set(await _rows(svc))
    assert svc.app.journal.failures == 0 and not caplog.records


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_postgresql_down_then_back_loses_nothing(make_service: Any, own_pg: PgServer) -> None:
    url = await own_pg.create_database("ivr")
    await asyncio.to_thread(migrate.upgrade, url)
    svc: Service = await make_service({"database": {"url": url, "timeout_s": 0.5}}, url=url)
    before = await _calls(svc, 0, 3)
    await svc.app.journal.flush()
    await asyncio.to_thread(own_pg.halt, "fast")  # connections are cut at once
    during = await _calls(svc, 10, 10)  # each lookup fails open at once: connection refused
    await _hang_up_all(svc, before + during)
    assert svc.app.inbound.db_failures == 10
    assert svc.app.journal.backlog > 0
    await asyncio.to_thread(own_pg.resume)
    await svc.app.journal.flush(timeout=30)
    rows = await _rows(svc)
    assert len(rows) == 13 and svc.app.journal.dropped == 0
    for call_id in before + during:
        r = rows[call_id]
        assert (r["decision"], r["route"], r["talk_s"]) == ("route", "sales", 42), call_id
    # And the service reads again: the blocklist is back in force.
    await _calls(svc, 30, 1)
    assert svc.app.inbound.db_failures == 10


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_postgresql_starting_up_loses_nothing(make_service: Any, own_pg: PgServer) -> None:
    """asyncpg reports "the database system is starting up" (57P03) as a DBAPIError, not an
    OperationalError: the journal used to take it for a refused write and drop the rows."""
    url = await own_pg.create_database("ivr")
    await asyncio.to_thread(migrate.upgrade, url)
    svc: Service = await make_service({"database": {"url": url, "timeout_s": 0.5}}, url=url)
    before = await _calls(svc, 0, 2)
    await svc.app.journal.flush()
    await asyncio.to_thread(own_pg.halt, "fast")
    await asyncio.to_thread(own_pg.resume, standby=True)
    during = await _calls(svc, 10, 5)
    await _hang_up_all(svc, before + during)
    for _ in range(100):  # the journal tries, and is told the server is starting up
        if svc.app.journal.failures:
            break
        await asyncio.sleep(0.1)
    assert svc.app.journal.failures > 0 and svc.app.journal.dropped == 0
    await asyncio.to_thread(own_pg.promote)
    await svc.app.journal.flush(timeout=30)
    rows = await _rows(svc)
    assert len(rows) == 7 and svc.app.journal.dropped == 0
    for call_id in before + during:
        assert rows[call_id]["talk_s"] == 42, call_id
