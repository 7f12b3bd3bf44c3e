"""The Alembic migrations build exactly the schema the models describe."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from ivr.clock import FixedClock
from ivr.core.seals import Seals
from ivr.db import migrate
from ivr.db.engine import create_engine as create_async_engine
from ivr.db.models import metadata
from ivr.review import trail
from tests.support.pg import PgServer


async def _schema_diff(url: str) -> list[Any]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(
                lambda c: list(compare_metadata(MigrationContext.configure(c), metadata))
            )
    finally:
        await engine.dispose()


async def test_migrated_schema_matches_the_models(db_url: str) -> None:
    assert await _schema_diff(db_url) == []


def test_0002_seals_entries_that_predate_the_audit_trail(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'old.sqlite3'}"
    migrate.upgrade(url, "0001")
    with sqlite3.connect(tmp_path / "old.sqlite3") as db:
        db.execute(
            "INSERT INTO blocklist_entries (pattern, is_prefix, status, action, category, note, "
            "evidence, proposed_by, proposed_at) VALUES ('+819012345678', 0, 'approved', "
            "'reject', 'threats', 'added by hand', '[]', 'alice', '2026-01-01 00:00:00.000000')"
        )
    migrate.upgrade(url)

    seals = Seals(bytes(range(32)))

    async def check(seal: bool) -> trail.Verdict:
        engine = create_async_engine(url)
        try:
            if seal:  # as `ivr serve` does at its first start after the upgrade
                await trail.seal_older_rows(
                    engine, seals, FixedClock(datetime(2026, 12, 1, tzinfo=UTC))
                )
            return await trail.verify(engine, seals)
        finally:
            await engine.dispose()

    before = asyncio.run(check(seal=False))
    assert str(before.problem) == "rows from before the upgrade are not sealed: start `ivr serve`"
    verdict = asyncio.run(check(seal=True))
    assert verdict.ok and verdict.events == 2 and verdict.keyed_from == 2, verdict
    events = asyncio.run(_log(url))
    assert [(e.actor, e.action, e.entry_id) for e in events] == [
        ("system", "import", 1),
        ("system", "keyed", None),
    ]
    # Sealing again is refused by verify: it would launder edits made in between.
    asyncio.run(_unseal(url))
    assert asyncio.run(check(seal=False)).problem is not None
    assert "sealed a second time" in str(asyncio.run(check(seal=True)).problem)
    migrate.downgrade(url, "0001")
    migrate.upgrade(url)


async def _log(url: str) -> list[Any]:
    engine = create_async_engine(url)
    try:
        return await trail.log_events(engine)
    finally:
        await engine.dispose()


async def _unseal(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE audit_head SET unsealed = 1"))
    finally:
        await engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_migrations_go_down_to_base_and_up_again(
    backend: str, pg_server: PgServer, tmp_path: Path
) -> None:
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'updown.sqlite3'}"
    else:
        url = asyncio.run(pg_server.create_database("updown"))
    migrate.upgrade(url)
    steps = len(list(ScriptDirectory.from_config(migrate.alembic_config(url)).walk_revisions()))
    assert steps >= 4
    for _ in range(steps):
        migrate.downgrade(url, "-1")
    assert asyncio.run(_tables(url)) <= {"alembic_version"}
    migrate.upgrade(url)
    assert {"calls", "blocklist_entries", "audit_events", "recordings"} <= asyncio.run(_tables(url))


async def _tables(url: str) -> set[str]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
    finally:
        await engine.dispose()
