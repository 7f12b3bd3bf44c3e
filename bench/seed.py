"""Fill a migrated database with a large blocklist and call history, and name the callers.

Numbers (Japanese mobiles, E.164):
- `+8180 1xxxxxxx`: blocked one by one (exact entries);
- `+8170 xxxxx`: blocked prefixes, so every 070 number the load uses is blocked by prefix;
- `+8190 100xxxxx`: regular callers with ten past calls each, one of them today;
- `+8190 5xxxxxxx`: first-time callers.
"""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import make_url

from bench.loadgen import CallSpec
from ivr.db.rows import stored

BLOCK_COLUMNS = (
    "pattern", "is_prefix", "status", "action", "category", "note", "evidence", "expires_at",
    "proposed_by", "proposed_at", "decided_by", "decided_at",
)  # fmt: skip
CALL_COLUMNS = (
    "call_id", "uniqueid", "linkedid", "caller_raw", "caller_name", "caller_e164", "caller_class",
    "dialled", "decision", "reason", "route", "started_at", "ended_at", "duration_s", "end_reason",
    "limit_s", "talk_s", "talk_source", "legal_hold",
)  # fmt: skip
PREFIXES = 90_000  # 5-digit prefixes 10000-99999 after +8170
CALLS_PER_REGULAR = 10
CHUNK = 50_000


def _exact(i: int) -> str:
    return f"+818010{i:06d}"


def _regular(i: int) -> str:
    return f"+8190100{i:05d}"


def block_rows(entries: int, now: datetime) -> Iterator[tuple[Any, ...]]:
    prefixes = min(PREFIXES, entries // 10)
    expires, decided = now + timedelta(days=365), now - timedelta(days=1)
    for i in range(entries):
        is_prefix = i < prefixes
        pattern = f"+8170{10000 + i}" if is_prefix else _exact(i - prefixes)
        yield (
            pattern, is_prefix, "approved", "reject", "abusive-language", "bench", "[]", expires,
            "bench-a", decided, "bench-b", decided,
        )  # fmt: skip


def call_rows(past_calls: int, now: datetime) -> Iterator[tuple[Any, ...]]:
    for i in range(past_calls):
        who, k = divmod(i, CALLS_PER_REGULAR)
        e164 = _regular(who)
        # k == 0: an hour ago (today's usage); else spread over the last 60 days.
        started = now - (timedelta(hours=1) if k == 0 else timedelta(days=2 + 6 * k, minutes=who))
        talk = 120.0
        ended = started + timedelta(seconds=talk + 30)
        uid = f"1700000000.{i}"
        yield (
            uuid.uuid4().hex, uid, uid, "0" + e164[3:], "", e164, "number", "0312345000",
            "route", "menu", "sales", started, ended, talk + 30, "completed", 3600, talk,
            "hangup-handler", False,
        )  # fmt: skip


def _sqlite_value(v: Any) -> Any:
    """Values as SQLAlchemy stores them in SQLite (naive UTC text for datetimes)."""
    return stored(v) if isinstance(v, datetime) else v


def _insert_sqlite(path: str, table: str, cols: tuple[str, ...], rows: Iterator[Any]) -> None:
    db = sqlite3.connect(path)
    try:
        sql = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"  # noqa: S608 - our constants
        db.executemany(sql, (tuple(_sqlite_value(v) for v in r) for r in rows))
        db.commit()
        db.execute("ANALYZE")
        db.commit()
    finally:
        db.close()


async def _insert_pg(url: str, table: str, cols: tuple[str, ...], rows: Iterator[Any]) -> None:
    import asyncpg

    u = make_url(url)
    conn = await asyncpg.connect(
        host=u.host, port=u.port, user=u.username, password=u.password, database=u.database
    )
    try:
        while chunk := list(itertools.islice(rows, CHUNK)):
            await conn.copy_records_to_table(table, records=chunk, columns=list(cols))
        await conn.execute(f"ANALYZE {table}")
    finally:
        await conn.close()


def seed(url: str, entries: int, past_calls: int, now: datetime) -> None:
    """Insert `entries` blocklist entries and `past_calls` calls into a migrated database."""
    u = make_url(url)
    jobs = [
        ("blocklist_entries", BLOCK_COLUMNS, block_rows(entries, now)),
        ("calls", CALL_COLUMNS, call_rows(past_calls, now)),
    ]
    for table, cols, rows in jobs:
        if u.get_backend_name() == "sqlite":
            assert u.database
            _insert_sqlite(u.database, table, cols, rows)
        else:
            asyncio.run(_insert_pg(url, table, cols, rows))


def caller_mix(entries: int, past_calls: int) -> Callable[[], CallSpec]:
    """Calls in a fixed mix: 75 % first-time, 15 % regular, 5 % blocked exact, 5 % by prefix.

    Every regular and first-time caller calls once per mix, so the repeat-call limit never
    changes the outcome: once the seeded regulars have all called (a small `past_calls`), their
    share goes to first-time callers.
    """
    prefixes = min(PREFIXES, entries // 10)
    exact = entries - prefixes
    regulars = past_calls // CALLS_PER_REGULAR
    counters = {k: itertools.count() for k in ("fresh", "regular", "exact", "prefix")}
    slots = itertools.cycle(["fresh"] * 15 + ["regular"] * 3 + ["exact", "prefix"])
    spare = {"regular": regulars, "exact": exact, "prefix": prefixes}

    def next_spec() -> CallSpec:
        kind = next(slots)
        n = next(counters[kind])
        if kind != "fresh" and spare[kind] == 0:
            kind, n = "fresh", next(counters["fresh"])
        elif kind == "regular" and n >= regulars:
            spare["regular"] = 0
            kind, n = "fresh", next(counters["fresh"])
        if kind == "fresh":
            return CallSpec(f"0905{n:07d}", "route", "menu")
        if kind == "regular":
            return CallSpec("0" + _regular(n)[3:], "route", "menu")
        if kind == "exact":
            return CallSpec("0" + _exact(n * 7919 % exact)[3:], "hangup", "blocked")
        # Any 070 number whose first five digits after 70 are a stored prefix.
        return CallSpec(f"070{10000 + n * 7919 % prefixes}{n % 1000:03d}", "hangup", "blocked")

    return next_spec
