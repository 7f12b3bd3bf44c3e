"""Screening facts from SQLite on the event loop's own thread, with one read-only connection.

Why not aiosqlite here: a blocklist and usage read on indexed tables takes some tens of
microseconds, while handing it to aiosqlite's thread and back costs several times that in CPU
and, at a few hundred concurrent calls, queues behind the pool. In WAL mode a reader never waits
for the writer, so the loop is held only for the read itself; the short busy timeout bounds the
rare wait (WAL recovery) and the call then fails open as with any database error.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from ivr.core.blocklist import BlockEntry, EntryStatus
from ivr.core.caps import Usage
from ivr.db.calls import UsageOf
from ivr.db.engine import sqlite_file
from ivr.db.rows import stored

BUSY_TIMEOUT_MS = 50
# The same statements as `ivr.db.calls.screening_facts` (test_sqlite_reader compares them).
_BLOCK = (
    "SELECT id, pattern, is_prefix, status, expires_at, action FROM blocklist_entries "
    "WHERE status = 'approved' AND pattern IN ({})"
)
_USAGE = (
    "SELECT coalesce(sum(CASE WHEN started_at >= ? THEN talk_s ELSE 0.0 END), 0.0), "
    "count(CASE WHEN started_at >= ? THEN 1 END) FROM calls "
    "WHERE caller_e164 = ? AND started_at >= ? AND call_id != ?"
)


_BLOCK_SQL: dict[int, str] = {}


def _block_sql(n: int) -> str:
    """`_BLOCK` for `n` patterns (one length or two a deployment: few texts, kept)."""
    sql = _BLOCK_SQL.get(n)
    if sql is None:
        sql = _BLOCK_SQL[n] = _BLOCK.format(", ".join("?" * n))
    return sql


def _loaded(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text).replace(tzinfo=UTC)


class SqliteScreeningReader:
    """Blocklist candidates and a caller's usage; opens (and reopens) the file lazily."""

    def __init__(self, path: str, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> None:
        self._uri = Path(path).absolute().as_uri() + "?mode=ro"
        self._busy_timeout_ms = busy_timeout_ms
        self._db: sqlite3.Connection | None = None
        self._day = (datetime.min.replace(tzinfo=UTC), "")

    @classmethod
    def for_url(cls, url: str) -> SqliteScreeningReader | None:
        """A reader for a SQLite file URL; None for other databases and in-memory SQLite."""
        path = sqlite_file(url)
        return None if path is None else cls(path)

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            db = sqlite3.connect(self._uri, uri=True, isolation_level=None)
            db.execute(f"PRAGMA busy_timeout={int(self._busy_timeout_ms)}")
            # Every journal commit invalidates this connection's page cache; mapped, the pages
            # are read again from the OS page cache without a pread each. At 100 calls/s this
            # took the whole call's p99 from 4-5.4 ms to 2.9-4 ms and 1.3 to 1.0 ms of CPU a
            # call to 0.8 (make bench). A size, not an allocation: only touched pages count.
            db.execute("PRAGMA mmap_size=1073741824")
            self._db = db
        return self._db

    def facts(
        self, patterns: Sequence[str], usage_of: UsageOf | None
    ) -> tuple[list[BlockEntry], Usage | None]:
        """Approved entries whose pattern is one of `patterns`; usage when `usage_of` is given.

        `usage_of` is (e164, day start, window start, call id to leave out). Raises
        `sqlite3.Error` when the database cannot be read (the connection is then reopened).
        """
        try:
            return self._facts(patterns, usage_of)
        except sqlite3.Error:
            self.close()
            raise

    def _facts(
        self, patterns: Sequence[str], usage_of: UsageOf | None
    ) -> tuple[list[BlockEntry], Usage | None]:
        db = self._conn()
        entries: list[BlockEntry] = []
        if patterns:
            sql = _block_sql(len(patterns))
            for id_, pattern, is_prefix, status, expires_at, action in db.execute(sql, patterns):
                entries.append(
                    BlockEntry(
                        id=id_,
                        pattern=pattern,
                        is_prefix=bool(is_prefix),
                        status=EntryStatus(status),
                        expires_at=_loaded(expires_at),
                        action=action,
                    )
                )
        if usage_of is None:
            return entries, None
        e164, day_start, window_start, exclude = usage_of
        if day_start != self._day[0]:  # the same day's start for every call of the day
            self._day = (day_start, stored(day_start))
        day, window = self._day[1], stored(window_start)
        talk, n = db.execute(_USAGE, (day, window, e164, min(day, window), exclude)).fetchone()
        return entries, Usage(float(talk or 0.0), int(n or 0))

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
