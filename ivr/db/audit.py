"""The audit_events table: append under the head lock, read the chain back."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from ivr.core import audit
from ivr.core.audit import AuditEvent
from ivr.db.models import audit_events, audit_head


class AuditWriter:
    """Appends events inside one transaction; `open` takes the chain's lock first.

    Taking the head row's write lock before anything else serialises every writer of the trail
    (SQLite's write lock, PostgreSQL's row lock), so two supervisors acting at once get two
    well-ordered rows and each sees the other's change.
    """

    def __init__(self, conn: AsyncConnection, head: tuple[int, str], key: bytes) -> None:
        self._conn = conn
        self.head = head
        self._key = key

    @classmethod
    async def open(cls, conn: AsyncConnection, key: bytes) -> AuditWriter:
        """`key`: the audit chain's key (`Seals.audit_key`)."""
        await lock(conn)
        row = (await conn.execute(select(audit_head.c.seq, audit_head.c.hash))).first()
        if row is None:
            raise RuntimeError(
                "audit_head is missing: run `ivr db upgrade`, then `ivr audit verify`"
            )
        return cls(conn, (row.seq, row.hash), key)

    async def append(
        self,
        at: datetime,
        actor: str,
        via: str | None,
        action: str,
        entry_id: int | None,
        reason: str,
        snapshot: str,
    ) -> AuditEvent:
        ev = audit.seal(self.head, at, actor, via, action, entry_id, reason, snapshot, self._key)
        await self._conn.execute(insert(audit_events).values(**asdict(ev)))
        await self._conn.execute(
            update(audit_head).where(audit_head.c.id == 1).values(seq=ev.seq, hash=ev.hash)
        )
        self.head = (ev.seq, ev.hash)
        return ev


async def lock(conn: AsyncConnection) -> None:
    """Take the trail's write lock for the rest of the transaction (a no-op write of the head)."""
    await conn.execute(update(audit_head).where(audit_head.c.id == 1).values(seq=audit_head.c.seq))


def _event(r: Row[tuple[object, ...]]) -> AuditEvent:
    return AuditEvent(**r._mapping)


async def events(conn: AsyncConnection, entry_id: int | None = None) -> list[AuditEvent]:
    """Events in chain order (all, or one entry's)."""
    q = select(audit_events).order_by(audit_events.c.seq)
    if entry_id is not None:
        q = q.where(audit_events.c.entry_id == entry_id)
    return [_event(r) for r in await conn.execute(q)]


async def head(conn: AsyncConnection) -> tuple[int, str] | None:
    row = (await conn.execute(select(audit_head.c.seq, audit_head.c.hash))).first()
    return (row.seq, row.hash) if row else None


async def keying(conn: AsyncConnection) -> tuple[int, bool]:
    """(keyed_from, unsealed) of the head record; (1, False) when there is none."""
    h = audit_head.c
    row = (await conn.execute(select(h.keyed_from, h.unsealed))).first()
    return (int(row.keyed_from), bool(row.unsealed)) if row else (1, False)
