"""The `calls` table: one row per inbound call, rejected ones included."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from ivr.core.blocklist import BlockEntry, EntryStatus
from ivr.db.models import blocklist_entries, calls


@dataclass(frozen=True)
class CallStart:
    call_id: str
    uniqueid: str
    linkedid: str
    caller_raw: str
    caller_name: str
    caller_e164: str | None
    caller_class: str
    dialled: str
    started_at: datetime


@dataclass(frozen=True)
class CallOutcome:
    decision: str | None
    reason: str | None
    route: str | None
    blocklist_entry_id: int | None
    recording_path: str | None
    ended_at: datetime | None
    end_reason: str | None
    duration_s: float | None = None


async def insert_call(conn: AsyncConnection, start: CallStart) -> None:
    await conn.execute(insert(calls).values(**asdict(start)))


async def update_call(conn: AsyncConnection, call_id: str, outcome: CallOutcome) -> int:
    """Write the outcome; returns the number of rows changed (0 when the row is missing)."""
    res = await conn.execute(
        update(calls).where(calls.c.call_id == call_id).values(**asdict(outcome))
    )
    return int(res.rowcount or 0)


async def blocklist_candidates(conn: AsyncConnection, patterns: Sequence[str]) -> list[BlockEntry]:
    """Approved entries whose pattern is one of `patterns` (expiry is judged by the core)."""
    if not patterns:
        return []
    t = blocklist_entries
    rows = await conn.execute(
        select(t.c.id, t.c.pattern, t.c.is_prefix, t.c.status, t.c.expires_at, t.c.action).where(
            t.c.pattern.in_(list(patterns)), t.c.status == EntryStatus.APPROVED.value
        )
    )
    return [
        BlockEntry(
            id=r.id,
            pattern=r.pattern,
            is_prefix=bool(r.is_prefix),
            status=EntryStatus(r.status),
            expires_at=r.expires_at,
            action=r.action,
        )
        for r in rows
    ]


async def get_call(conn: AsyncConnection, call_id: str) -> dict[str, object] | None:
    row = (await conn.execute(select(calls).where(calls.c.call_id == call_id))).first()
    return dict(row._mapping) if row else None
