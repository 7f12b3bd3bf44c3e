"""The Alembic migrations build exactly the schema the models describe."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine

from ivr.db import migrate
from ivr.db.engine import create_engine as create_async_engine
from ivr.db.models import metadata
from ivr.review import trail
from tests.pg import PgServer


def test_migrated_schema_matches_the_models(template_db: Path) -> None:
    engine = create_engine(f"sqlite:///{template_db}")
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
    finally:
        engine.dispose()
    assert diff == [], f"models and migrations disagree: {diff}"


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


def test_postgresql_migrates_down_and_up(pg_server: PgServer) -> None:
    url = asyncio.run(pg_server.create_database("updown"))
    migrate.upgrade(url)
    migrate.downgrade(url, "base")
    migrate.upgrade(url)
