"""The SQLite screening reader answers exactly as the SQLAlchemy query does, and fails loudly."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert

from ivr.core.blocklist import candidate_patterns
from ivr.core.seals import Seals
from ivr.db import calls as calls_repo
from ivr.db.calls import Closed, TalkReport
from ivr.db.engine import create_engine, sqlite_writer_engine
from ivr.db.journal import CallJournal
from ivr.db.models import blocklist_entries, calls
from ivr.db.rows import CallOutcome, CallStart
from ivr.db.sqlite_reader import SqliteScreeningReader

NOW = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)


def _entry(
    pattern: str, status: str, *, prefix: bool = False, expires: Any = None
) -> dict[str, Any]:
    return {
        "pattern": pattern,
        "is_prefix": prefix,
        "status": status,
        "action": "reject",
        "category": "threats",
        "expires_at": expires,
        "proposed_by": "alice",
        "proposed_at": NOW - timedelta(days=3),
    }


def _call(n: int, e164: str, started: datetime, talk: float | None) -> dict[str, Any]:
    return {
        "call_id": f"c{n}",
        "uniqueid": f"17.{n}",
        "linkedid": f"17.{n}",
        "caller_raw": e164,
        "caller_name": "",
        "caller_e164": e164,
        "caller_class": "number",
        "dialled": "",
        "decision": "route",
        "started_at": started,
        "talk_s": talk,
    }


async def test_same_facts_as_the_sqlalchemy_query(sqlite_url: str) -> None:
    engine = create_engine(sqlite_url)
    async with engine.begin() as conn:
        await conn.execute(
            insert(blocklist_entries),
            [
                _entry("+81312345678", "approved", expires=NOW + timedelta(days=1)),
                _entry("+81312345678", "pending"),
                _entry("+8131234", "approved", prefix=True),
                _entry("+813123", "approved", prefix=True, expires=NOW - timedelta(days=1)),
                _entry("+81399999999", "approved"),
            ],
        )
        await conn.execute(
            insert(calls),
            [
                _call(1, "+81312345678", NOW - timedelta(hours=1), 300.5),
                _call(2, "+81312345678", NOW - timedelta(hours=20), 60.0),
                _call(3, "+81312345678", NOW - timedelta(days=3), 999.0),
                _call(4, "+81312345678", NOW - timedelta(minutes=5), None),
                _call(5, "+81355555555", NOW - timedelta(hours=2), 10.0),
            ],
        )
    reader = SqliteScreeningReader.for_url(sqlite_url)
    assert reader is not None
    day, window = NOW - timedelta(hours=12), NOW - timedelta(hours=24)
    try:
        for e164 in ("+81312345678", "+81355555555", "+81399999999", "+81300000000"):
            patterns = candidate_patterns(e164, 6)
            for usage_of in (None, (e164, day, window, "c4"), (e164, window, day, "none")):
                async with engine.connect() as conn:
                    expected = await calls_repo.screening_facts(conn, patterns, usage_of)
                got = reader.facts(patterns, usage_of)
                assert sorted(got[0], key=lambda e: e.id) == sorted(expected[0], key=lambda e: e.id)
                assert got[1] == expected[1]
        found, usage = reader.facts(
            candidate_patterns("+81312345678", 6), ("+81312345678", day, window, "c4")
        )
        assert {e.pattern for e in found} == {"+81312345678", "+8131234", "+813123"}
        assert usage is not None and usage.talk_today_s == 300.5 and usage.calls_in_window == 2
    finally:
        reader.close()
        await engine.dispose()


def test_only_for_sqlite_files(tmp_path: Path) -> None:
    assert SqliteScreeningReader.for_url("postgresql+asyncpg://u@h/db") is None
    assert SqliteScreeningReader.for_url("sqlite+aiosqlite://") is None
    assert SqliteScreeningReader.for_url("sqlite+aiosqlite:///:memory:") is None
    reader = SqliteScreeningReader.for_url(f"sqlite+aiosqlite:///{tmp_path / 'x y?#.db'}")
    assert reader is not None
    with pytest.raises(sqlite3.Error):  # no such file: read-only never creates one
        reader.facts(["+81312345678"], None)
    assert not list(tmp_path.iterdir())


async def test_journal_batch_keeps_each_calls_order(db_url: str) -> None:
    """Starts, outcomes, talk reports and hang-ups interleaved in one batch land as in order:
    on SQLite on the writer connection, on PostgreSQL through `run_sync`. An outcome whose start
    is in the same run goes into its insert (j1), the others update their rows (j2, j3)."""
    engine = create_engine(db_url)
    journal = CallJournal(engine, seals=Seals(bytes(32)))

    def start(n: int) -> CallStart:
        return CallStart(f"j{n}", f"18.{n}", f"18.{n}", "03", "", f"+8131111000{n}", "number",
                         "", NOW)  # fmt: skip

    def routed(limit: int | None = 600) -> CallOutcome:
        return CallOutcome("route", "menu", "sales", None, None, None, None, limit_s=limit)

    journal.record_start(start(1))
    journal.record_start(start(2))
    journal.record_outcome("j1", routed())
    journal.record_talk(TalkReport(600.0, "hangup-handler", NOW + timedelta(minutes=11), "j1"))
    journal.record_start(start(3))
    journal.record_outcome("j2", routed())
    journal.record_closed(Closed("18.2", NOW + timedelta(minutes=1), "caller-hangup"))
    journal.record_outcome("j3", CallOutcome("hangup", "blocked", None, 7, None, NOW, "ivr-ended"))
    journal.record_talk(TalkReport(30.0, "ami-cdr", NOW + timedelta(minutes=2), None, "18.2"))
    journal.record_outcome("missing", routed())  # no row: changes nothing, fails nothing
    runner = asyncio.create_task(journal.run())
    try:
        await journal.flush()
        async with engine.connect() as conn:
            rows = {c: await calls_repo.get_call(conn, c) for c in ("j1", "j2", "j3")}
    finally:
        await journal.close()
        runner.cancel()
        await engine.dispose()
    j1, j2, j3 = (rows[c] for c in ("j1", "j2", "j3"))
    assert j1 and j1["talk_s"] == 600.0 and j1["end_reason"] == "cap-reached"
    assert j2 and j2["talk_s"] == 30.0 and j2["end_reason"] == "caller-hangup"
    assert j3 and j3["decision"] == "hangup" and j3["blocklist_entry_id"] == 7
    assert journal.written == 10 and journal.dropped == 0


async def test_positional_rows_store_what_sqlalchemy_stores(sqlite_url: str) -> None:
    """The SQLite journal's driver tuples give the same stored text as SQLAlchemy's own insert
    and update (datetimes, booleans, defaults), so every query reads them alike."""
    engine = create_engine(sqlite_url)
    writer = sqlite_writer_engine(sqlite_url)
    assert writer is not None
    positional = calls_repo.PositionalCalls(writer.dialect)

    def start(call_id: str) -> CallStart:
        return CallStart(call_id, "1.1", "1.1", "03", "名", "+81311110000", "number", "",
                         NOW, "PJSIP/t-1")  # fmt: skip

    tokyo = timezone(timedelta(hours=9))  # any zone is stored as UTC
    ended = (NOW + timedelta(seconds=3.000125)).astimezone(tokyo)
    done = CallOutcome("hangup", "blocked", None, 7, None, ended, "ivr-ended", 3.25)
    routed = CallOutcome("route", "menu", "sales", None, "/r.wav", None, None, limit_s=600)
    try:
        with writer.begin() as conn:
            calls_repo.store_calls(conn, [start("s1"), start("s2")], [("s1", done)])
            calls_repo.store_calls(conn, [], [("s2", routed)])
            for sql, rows in positional.statements([start("p1"), start("p2")], [("p1", done)]):
                conn.exec_driver_sql(sql, rows)
            for sql, rows in positional.statements([], [("p2", routed)]):
                conn.exec_driver_sql(sql, rows)
        db = sqlite3.connect(sqlite_url.split("///", 1)[1])
        db.row_factory = sqlite3.Row
        stored = {r["call_id"]: dict(r) for r in db.execute("SELECT * FROM calls")}
        db.close()
        for ours, theirs in (("p1", "s1"), ("p2", "s2")):
            assert {**stored[ours], "call_id": theirs} == stored[theirs]
        assert stored["p1"]["started_at"] == "2026-11-20 03:00:00.000000"
        assert stored["p1"]["ended_at"] == "2026-11-20 03:00:03.000125"
    finally:
        writer.dispose()
        await engine.dispose()


async def test_the_journal_checkpoints_the_wal_itself(sqlite_url: str) -> None:
    """The journal's connection never checkpoints (that waits for the disk, and it runs on the
    event loop); the journal's thread does, so the rows reach the database file itself."""
    path = sqlite_url.split("///", 1)[1]
    engine = create_engine(sqlite_url)
    journal = CallJournal(engine, checkpoint_every_s=0.0, seals=Seals(bytes(32)))
    runner = asyncio.create_task(journal.run())
    try:
        for n in range(3):
            journal.record_start(CallStart(f"w{n}", f"19.{n}", f"19.{n}", "03", "",
                                           "+81311110000", "number", "", NOW))  # fmt: skip
        await journal.flush()
        assert journal._writer is not None
        with journal._writer.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
        # `immutable` reads the database file alone, leaving the WAL out.
        for _ in range(100):
            db = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
            try:
                stored = db.execute("SELECT count(*) FROM calls WHERE call_id LIKE 'w%'").fetchone()
            finally:
                db.close()
            if stored == (3,):
                break
            await asyncio.sleep(0.02)
        assert stored == (3,)
    finally:
        await journal.close()
        runner.cancel()
        await engine.dispose()
