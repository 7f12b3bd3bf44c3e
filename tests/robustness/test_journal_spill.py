"""Issue 26, finding 4: SIGTERM while another writer held SQLite's lock lost every queued call
row. Now what the journal could not store by the end of the grace period is written to a
spill file (fsync'd), and the next start stores it."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
from pathlib import Path

from sqlalchemy import text

from ivr.db import migrate, spill
from ivr.db.calls import TalkReport
from ivr.db.engine import create_engine
from ivr.db.rows import CallOutcome, CallStart
from ivr.sim.fake_asterisk import CallerScript, Channel, FakeAsterisk
from tests.support.cli import ivr_env, run_ivr, serving
from tests.support.pg import PgServer
from tests.support.servers import free_port
from tests.support.service import OPEN_TIME

CALLS = 30


def _rows(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM calls").fetchone()[0])


def test_every_kind_of_write_survives_the_file() -> None:
    ops: list[spill.Op] = [
        CallStart(
            "c1", "1.1", "1.1", "0312345678", "name\\n", "+81312345678", "number", "", OPEN_TIME
        ),
        spill.Outcome("c1", CallOutcome("route", "menu", "sales", None, "/s/c1.wav", None, None)),
        TalkReport(12.5, "hangup-handler", OPEN_TIME, call_id="c1"),
    ]
    assert [spill.decode(spill.encode(op)) for op in ops] == ops


async def test_sigterm_with_the_database_locked_spills_and_the_next_start_stores(
    tmp_path: Path,
) -> None:
    env = ivr_env(tmp_path)
    assert run_ivr(["db", "upgrade"], env).returncode == 0
    db = tmp_path / "data" / "ivr.sqlite3"
    port = free_port()
    lock = sqlite3.connect(db, isolation_level=None)
    async with serving(env, port) as proc:
        lock.execute("BEGIN IMMEDIATE")  # a long import, a backup: the service cannot write
        fake = FakeAsterisk("127.0.0.1", port)
        await asyncio.gather(
            *(
                fake.call(Channel(callerid=f"03{n:08d}", uniqueid=f"5.{n}"), CallerScript(["1"]))
                for n in range(CALLS)
            )
        )
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 40) == 0
    lock.execute("ROLLBACK")
    lock.close()
    assert _rows(db) == 0  # nothing reached the database before the stop
    [kept] = list((tmp_path / "data" / "journal").glob("*.spill"))
    assert kept.stat().st_mode & 0o077 == 0
    lines = kept.read_text().splitlines()
    assert len(lines) == 2 * CALLS  # each call's start and outcome
    assert {json.loads(line)["kind"] for line in lines} == {"start", "outcome"}
    print(f"SIGTERM with SQLite locked: {CALLS} calls queued, 0 stored, {len(lines)} spilled")
    async with serving(env, port) as proc:
        for _ in range(100):
            if _rows(db) == CALLS and not list((tmp_path / "data" / "journal").iterdir()):
                break
            await asyncio.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 20) == 0
    assert _rows(db) == CALLS
    with sqlite3.connect(db) as conn:
        decided = conn.execute("SELECT count(*) FROM calls WHERE decision IS NOT NULL").fetchone()
    assert decided[0] == CALLS
    assert not list((tmp_path / "data" / "journal").iterdir())
    print(f"next start: {CALLS} of {CALLS} calls stored, spill file removed")


def test_a_claimed_file_is_not_replayed_twice(tmp_path: Path) -> None:
    folder = tmp_path / "journal"
    spill.write(folder, [TalkReport(1.0, "hangup-handler", OPEN_TIME, call_id="c9")])
    first = spill.claim(folder)
    assert len(first[1]) == 1
    # A second worker starting meanwhile finds the claimed file, not a fresh one: the claim is
    # only undone by storing it; a stopped replay's file is picked up at the next start.
    assert [p.suffix for p in folder.iterdir()] == [spill.CLAIMED]


async def test_sigterm_with_postgresql_stopped_spills_and_the_next_start_stores(
    tmp_path: Path,
) -> None:
    """The same with the database server down, not merely locked: calls go on (they fail
    open), the writes wait in the journal, and SIGTERM spills them."""
    server = PgServer()
    await asyncio.to_thread(server.start)
    try:
        await server.create_database("spill")
        url = server.url("spill")
        await asyncio.to_thread(migrate.upgrade, url)
        env = ivr_env(tmp_path, IVR_DATABASE_URL=url)
        port = free_port()
        async with serving(env, port) as proc:
            await asyncio.to_thread(server.halt, "fast")
            fake = FakeAsterisk("127.0.0.1", port)
            for n in range(CALLS):
                await fake.call(Channel(callerid=f"03{n:08d}", uniqueid=f"6.{n}"), CallerScript())
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), 40) == 0
        spilled = [p for p in (tmp_path / "data" / "journal").iterdir() if p.suffix == ".spill"]
        writes = sum(len(p.read_text().splitlines()) for p in spilled)
        await asyncio.to_thread(server.resume)
        assert await _pg_rows(url) == 0
        print(f"SIGTERM with PostgreSQL stopped: {CALLS} calls, 0 stored, {writes} spilled")
        async with serving(env, port) as proc:
            for _ in range(100):
                if await _pg_rows(url) == CALLS:
                    break
                await asyncio.sleep(0.1)
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), 20) == 0
        assert await _pg_rows(url) == CALLS
        assert not list((tmp_path / "data" / "journal").iterdir())
        print(f"next start: {CALLS} of {CALLS} calls stored on PostgreSQL")
    finally:
        await asyncio.to_thread(server.stop)


async def _pg_rows(url: str) -> int:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return int((await conn.execute(text("SELECT count(*) FROM calls"))).scalar_one())
    finally:
        await engine.dispose()
