"""The Alembic migrations build exactly the schema the models describe."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

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

    async def check() -> trail.Verdict:
        engine = create_async_engine(url)
        try:
            return await trail.verify(engine)
        finally:
            await engine.dispose()

    verdict = asyncio.run(check())
    assert verdict.problem is None and verdict.events == 1
    events = asyncio.run(_log(url))
    assert [(e.actor, e.action, e.entry_id) for e in events] == [("system", "import", 1)]
    migrate.downgrade(url, "0001")
    migrate.upgrade(url)


async def _log(url: str) -> list[Any]:
    engine = create_async_engine(url)
    try:
        return await trail.log(engine)
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
