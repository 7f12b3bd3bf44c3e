"""The `recordings` table: hand-off state, retention and hold."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from ivr.core.seals import SealBroken, Seals
from ivr.db.models import calls, recordings

ACTIVE = ("spooled", "stored", "verified")  # still owes work to the pipeline


async def by_names(conn: AsyncConnection, names: Collection[str]) -> dict[str, dict[str, Any]]:
    if not names:
        return {}
    rows = await conn.execute(select(recordings).where(recordings.c.name.in_(list(names))))
    return {r.name: dict(r._mapping) for r in rows}


async def due(conn: AsyncConnection, now: datetime, limit: int = 100) -> list[dict[str, Any]]:
    r = recordings.c
    rows = await conn.execute(
        select(recordings)
        .where(
            r.state.in_(ACTIVE),
            (r.next_attempt_at.is_(None)) | (r.next_attempt_at <= now),
        )
        .order_by(r.spooled_at)
        .limit(limit)
    )
    return [dict(x._mapping) for x in rows]


async def insert_row(conn: AsyncConnection, values: Mapping[str, Any], seals: Seals) -> None:
    await conn.execute(insert(recordings).values(**values))
    await reseal(conn, seals, recordings.c.name == values["name"])


async def advance(
    conn: AsyncConnection, name: str, from_state: str, values: Mapping[str, Any], seals: Seals
) -> bool:
    """Move a row on only from the state it was read in (another worker may have moved it),
    and only if it is as the service sealed it (SealBroken otherwise)."""
    current = await get(conn, name)
    if current is not None and not seals.recording_ok(current):
        raise SealBroken(f"recording {name}: the row differs from its seal; not changed")
    res = await conn.execute(
        update(recordings)
        .where(recordings.c.name == name, recordings.c.state == from_state)
        .values(**values)
    )
    if res.rowcount != 1:
        return False
    await reseal(conn, seals, recordings.c.name == name)
    return True


async def reseal(conn: AsyncConnection, seals: Seals, where: ColumnElement[bool]) -> None:
    """Seal the rows `where` picks as they now are; in the transaction that changed them."""
    for row in (await conn.execute(select(recordings).where(where))).mappings().all():
        await conn.execute(
            update(recordings)
            .where(recordings.c.name == row["name"])
            .values(seal=seals.recording(dict(row)))
        )


async def call_facts(conn: AsyncConnection, call_ids: Collection[str]) -> dict[str, dict[str, Any]]:
    if not call_ids:
        return {}
    c = calls.c
    rows = await conn.execute(
        select(
            c.call_id,
            c.caller_e164,
            c.started_at,
            c.ended_at,
            c.legal_hold,
            c.hold_note,
        ).where(c.call_id.in_(list(call_ids)))
    )
    return {r.call_id: dict(r._mapping) for r in rows}


async def get(conn: AsyncConnection, name: str) -> dict[str, Any] | None:
    row = (await conn.execute(select(recordings).where(recordings.c.name == name))).first()
    return dict(row._mapping) if row else None


async def listing(
    conn: AsyncConnection,
    *,
    caller: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    held: bool | None = None,
    states: Collection[str] | None = None,
    limit: int = 1000,
) -> list[dict[str, Any]]:
    r = recordings.c
    q = select(recordings).order_by(r.started_at.desc(), r.name).limit(limit)
    if caller:
        q = q.where(r.caller == caller)
    if since:
        q = q.where(r.started_at >= since)
    if until:
        q = q.where(r.started_at < until)
    if held is not None:
        q = q.where(r.legal_hold.is_(held))
    if states:
        q = q.where(r.state.in_(list(states)))
    return [dict(x._mapping) for x in await conn.execute(q)]


async def expired(conn: AsyncConnection, now: datetime) -> list[dict[str, Any]]:
    """Stored recordings past retention and not on hold: what purge deletes."""
    r = recordings.c
    rows = await conn.execute(
        select(recordings)
        .where(
            r.state == "complete",
            r.retain_until <= now,
            r.legal_hold.is_(False),
        )
        .order_by(r.retain_until)
    )
    return [dict(x._mapping) for x in rows]
