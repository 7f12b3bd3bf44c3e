"""Screening facts: a caller's blocklist candidates and usage, read in one round trip.

Two implementations behind one interface, chosen by `screening_facts` in the composition root:
a plain `sqlite3` read-only connection for a SQLite file (no thread hop per call), and
SQLAlchemy's async engine for PostgreSQL (and in-memory SQLite).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncEngine

from ivr.core.blocklist import BlockEntry
from ivr.core.caps import Usage
from ivr.db import calls as calls_repo
from ivr.db.calls import UsageOf
from ivr.db.sqlite_reader import SqliteScreeningReader

Found = tuple[list[BlockEntry], Usage | None]


class ScreeningFacts(Protocol):
    async def lookup(self, patterns: Sequence[str], usage_of: UsageOf | None) -> Found:
        """Approved entries among `patterns`, and usage when `usage_of` is given. Raises one of
        `ivr.db.errors.DB_ERRORS` when the database does not answer in time."""
        ...

    def close(self) -> None: ...


class SqliteFacts:
    """Reads the SQLite file synchronously: one indexed read costs less than a thread hop."""

    def __init__(self, reader: SqliteScreeningReader) -> None:
        self._reader = reader

    async def lookup(self, patterns: Sequence[str], usage_of: UsageOf | None) -> Found:
        return self._reader.facts(patterns, usage_of)

    def close(self) -> None:
        self._reader.close()


class EngineFacts:
    """Reads through the service's async engine, within `timeout_s`."""

    def __init__(self, engine: AsyncEngine, timeout_s: float) -> None:
        self._engine = engine
        self._timeout_s = timeout_s

    async def lookup(self, patterns: Sequence[str], usage_of: UsageOf | None) -> Found:
        async def work() -> Found:
            async with self._engine.connect() as conn:
                return await calls_repo.screening_facts(conn, patterns, usage_of)

        return await asyncio.wait_for(work(), self._timeout_s)

    def close(self) -> None:
        """The engine is the service's; it disposes of it."""


def screening_facts(url: str, engine: AsyncEngine, timeout_s: float) -> ScreeningFacts:
    reader = SqliteScreeningReader.for_url(url)
    return SqliteFacts(reader) if reader is not None else EngineFacts(engine, timeout_s)
