"""Which database errors mean "try again later" and which mean "this write is wrong", decided
by what they are on both drivers, not by their exception class alone.

asyncpg reports a server that is starting up (57P03) or out of connections (53300) as a plain
`DBAPIError`, not an `OperationalError`: the call journal took such an error for a refused
write and dropped the rows.
"""

from __future__ import annotations

import sqlite3

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

# PostgreSQL SQLSTATE classes and codes that pass: connection exceptions, insufficient
# resources, operator intervention (shutting down, starting up), system errors; and the
# transaction conflicts that succeed when repeated.
_PG_CLASSES = ("08", "53", "57", "58")
_PG_CODES = frozenset({"40001", "40P01", "55P03"})
# SQLite primary result codes that pass: busy, locked, I/O error, full, cannot open, protocol.
_SQLITE_CODES = frozenset({5, 6, 10, 13, 14, 15})


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE PostgreSQL sent, wherever the driver and SQLAlchemy put it."""
    seen: BaseException | None = exc
    for _ in range(6):
        if seen is None:
            return None
        code = getattr(seen, "sqlstate", None) or getattr(seen, "pgcode", None)
        if isinstance(code, str) and len(code) == 5:
            return code
        seen = getattr(seen, "orig", None) or seen.__cause__
    return None


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, OSError | TimeoutError | ConnectionError):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    code = sqlstate(exc)
    if code is not None:
        return code[:2] in _PG_CLASSES or code in _PG_CODES
    orig = getattr(exc, "orig", exc)
    if isinstance(orig, sqlite3.Error):
        errcode = getattr(orig, "sqlite_errorcode", None)
        if errcode is not None:
            return errcode & 0xFF in _SQLITE_CODES
    return isinstance(exc, OperationalError | InterfaceError)
