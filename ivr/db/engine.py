"""Engine creation (SQLite WAL + busy timeout, or PostgreSQL) and the schema check."""

from __future__ import annotations

import logging
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
        if u.database and u.database != ":memory:":
            Path(u.database).parent.mkdir(parents=True, exist_ok=True)
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


def sqlite_writer_engine(url: str) -> Engine | None:
    """A synchronous engine (the standard sqlite3 driver) on the same SQLite file, for a writer
    that runs in its own thread; None for other databases and in-memory SQLite."""
    u = make_url(url)
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:":
        return None
    engine = create_sync_engine(u.set(drivername="sqlite"), pool_size=1, max_overflow=0)
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def redact(url: str) -> str:
    """The URL with any password hidden, for messages."""
    return make_url(url).render_as_string(hide_password=True)
