"""The blocklist_entries table as the review workflow sees it (the call path uses db.calls)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from ivr.core.blocklist import EntryStatus
from ivr.db.models import blocklist_entries, calls, recordings

t = blocklist_entries
OPEN_STATUSES = (EntryStatus.PENDING.value, EntryStatus.APPROVED.value)


def entry_record(row: Mapping[Any, Any]) -> dict[str, Any]:
    """A plain dict of an entry row, with the types every backend agrees on."""
    rec = {c.name: row[c.name] for c in t.columns}
    rec["is_prefix"] = bool(rec["is_prefix"])
    return rec


async def get(conn: AsyncConnection, entry_id: int) -> dict[str, Any] | None:
    row = (await conn.execute(select(t).where(t.c.id == entry_id))).first()
    return entry_record(row._mapping) if row else None


async def insert_entry(conn: AsyncConnection, values: Mapping[str, Any]) -> dict[str, Any]:
    res = await conn.execute(insert(t).values(**values).returning(t.c.id))
    entry_id = int(res.scalar_one())
    rec = await get(conn, entry_id)
    assert rec is not None
    return rec


async def update_entry(
    conn: AsyncConnection, entry_id: int, expect_status: str, values: Mapping[str, Any]
) -> dict[str, Any] | None:
    """Change an entry only if it still has `expect_status`; the new row, or None if it had not."""
    res = await conn.execute(
        update(t).where(t.c.id == entry_id, t.c.status == expect_status).values(**values)
    )
    if not res.rowcount:
        return None
    return await get(conn, entry_id)


async def open_duplicates(
    conn: AsyncConnection, pattern: str, is_prefix: bool
) -> list[tuple[int, datetime | None]]:
    """(id, expiry) of pending or approved entries with this very pattern."""
    rows = await conn.execute(
        select(t.c.id, t.c.expires_at).where(
            t.c.pattern == pattern, t.c.is_prefix == is_prefix, t.c.status.in_(OPEN_STATUSES)
        )
    )
    return [(r.id, r.expires_at) for r in rows]


def _listing(
    statuses: Collection[str] | None,
    patterns: Sequence[str] | None,
    expires_before: datetime | None,
) -> Select[Any]:
    q = select(t).order_by(t.c.id)
    if statuses:
        q = q.where(t.c.status.in_(list(statuses)))
    if patterns is not None:
        q = q.where(t.c.pattern.in_(list(patterns)))
    if expires_before is not None:
        q = q.where(t.c.expires_at.is_not(None), t.c.expires_at <= expires_before)
    return q


async def entries(
    conn: AsyncConnection,
    statuses: Collection[str] | None = None,
    patterns: Sequence[str] | None = None,
    expires_before: datetime | None = None,
) -> list[dict[str, Any]]:
    rows = await conn.execute(_listing(statuses, patterns, expires_before))
    return [entry_record(r._mapping) for r in rows]


async def all_snapshots(conn: AsyncConnection) -> list[dict[str, Any]]:
    return [entry_record(r._mapping) for r in await conn.execute(select(t).order_by(t.c.id))]


async def past_expiry(conn: AsyncConnection, now: datetime) -> list[dict[str, Any]]:
    """Pending or approved entries whose expiry instant has passed."""
    rows = await conn.execute(
        select(t).where(
            t.c.status.in_(OPEN_STATUSES), t.c.expires_at.is_not(None), t.c.expires_at <= now
        )
    )
    return [entry_record(r._mapping) for r in rows]


async def calls_acted_on(conn: AsyncConnection, entry_id: int) -> dict[str, int]:
    """How many calls the entry acted on, by the decision taken (hangup = refused)."""
    rows = await conn.execute(
        select(calls.c.decision, func.count())
        .where(calls.c.blocklist_entry_id == entry_id)
        .group_by(calls.c.decision)
    )
    return {str(r[0] or "none"): int(r[1]) for r in rows}


async def distinct_callers(conn: AsyncConnection, prefix: str, since: datetime) -> int:
    """Distinct E.164 callers since `since` whose number starts with `prefix`."""
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    res = await conn.execute(
        select(func.count(func.distinct(calls.c.caller_e164))).where(
            calls.c.caller_e164.like(f"{escaped}%", escape="\\"), calls.c.started_at >= since
        )
    )
    return int(res.scalar_one())


async def evidence_calls(conn: AsyncConnection, ids: Collection[str]) -> dict[str, str | None]:
    """For each id that names a known call or recording: the caller's E.164 number (or None)."""
    if not ids:
        return {}
    wanted = list(ids)
    found: dict[str, str | None] = {}
    rows = await conn.execute(
        select(calls.c.call_id, calls.c.caller_e164, calls.c.recording_path).where(
            or_(
                calls.c.call_id.in_(wanted),
                calls.c.call_id.in_([w.removesuffix(".wav") for w in wanted]),
            )
        )
    )
    for r in rows:
        if r.call_id in wanted:
            found[r.call_id] = r.caller_e164
        name = f"{r.call_id}.wav"
        if name in wanted and r.recording_path and r.recording_path.endswith("/" + name):
            found[name] = r.caller_e164
    # Recordings handed off to storage, fail-open ones (no call row) included.
    rest = [w for w in wanted if w not in found]
    if rest:
        recs = await conn.execute(
            select(recordings.c.name, recordings.c.caller).where(recordings.c.name.in_(rest))
        )
        for name, caller in recs:
            found[name] = caller
    return found
