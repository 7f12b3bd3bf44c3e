"""Engine creation (SQLite WAL + busy timeout, or PostgreSQL) and the schema check."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

log = logging.getLogger("ivr.db")

SQLITE_BUSY_TIMEOUT_MS = 5000


def create_engine(url: str, *, timeout_s: float = 2.0) -> AsyncEngine:
    """An async engine; for SQLite the file's folder is created and WAL is switched on."""
    u = make_url(url)
    kwargs: dict[str, Any] = {}
    if u.get_backend_name() == "sqlite":
        path = sqlite_file(url)
        if path is not None:
            Path(path).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Small: the call journal writes through its own connection (`sqlite_writer_engine`) and
        # the screening reads through `SqliteScreeningReader`; this pool serves the rest.
        kwargs.update(pool_size=2, max_overflow=0, pool_timeout=timeout_s)
    else:
        kwargs.update(pool_size=10, max_overflow=10, pool_timeout=timeout_s, pool_pre_ping=True)
        kwargs["connect_args"] = {"timeout": timeout_s}
    engine = create_async_engine(url, **kwargs)
    if u.get_backend_name() == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def sqlite_file(url: str) -> str | None:
    """The file of a SQLite database URL; None for other databases and in-memory SQLite."""
    u = make_url(url)
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:":
        return None
    return u.database


def sqlite_writer_engine(url: str) -> Engine | None:
    """A synchronous engine (the standard sqlite3 driver) on the same SQLite file for the call
    journal, which writes on the event loop's thread; None for other databases and in-memory
    SQLite.

    Its connection never waits: a lock held by another writer is `SQLITE_BUSY` at once (the
    journal tries again a few milliseconds later), and it never checkpoints the WAL, which
    waits for the disk (`checkpoint_wal` does that, in the journal's thread)."""
    if sqlite_file(url) is None:
        return None
    u = make_url(url).set(drivername="sqlite")
    engine = create_sync_engine(u, pool_size=1, max_overflow=0)
    event.listen(engine, "connect", _sqlite_writer_pragmas)
    return engine


def checkpoint_wal(path: str) -> tuple[int, int, int]:
    """One passive checkpoint of a SQLite file's WAL (it waits for no reader or writer):
    (busy, pages in the WAL, pages checkpointed). Opens and closes its own connection."""
    db = sqlite3.connect(path, isolation_level=None)
    try:
        busy, log_pages, done = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return int(busy), int(log_pages), int(done)
    finally:
        db.close()


def is_busy(exc: BaseException) -> bool:
    """SQLite said another connection holds the lock (`SQLITE_BUSY` or one of its variants)."""
    orig = getattr(exc, "orig", exc)
    code = getattr(orig, "sqlite_errorcode", None)
    return isinstance(orig, sqlite3.OperationalError) and code is not None and code & 0xFF == 5


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    _pragmas(dbapi_conn, SQLITE_BUSY_TIMEOUT_MS)


def _sqlite_writer_pragmas(dbapi_conn: Any, _record: Any) -> None:
    _pragmas(dbapi_conn, 0, "PRAGMA wal_autocheckpoint=0")


def _pragmas(dbapi_conn: Any, busy_timeout_ms: int, *extra: str) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    for pragma in extra:
        cur.execute(pragma)
    cur.close()


def redact(url: str) -> str:
    """The URL with any password hidden, for messages."""
    return make_url(url).render_as_string(hide_password=True)
