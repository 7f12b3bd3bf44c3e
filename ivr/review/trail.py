"""Reading and verifying the audit trail."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from ivr.core import audit
from ivr.core.audit import AuditEvent, Break
from ivr.db import audit as audit_repo
from ivr.db import blocklist as repo


@dataclass(frozen=True)
class Verdict:
    problem: Break | None
    events: int
    head: tuple[int, str] | None


async def log(engine: AsyncEngine, entry_id: int | None = None) -> list[AuditEvent]:
    async with engine.connect() as conn:
        return await audit_repo.events(conn, entry_id)


async def verify(engine: AsyncEngine) -> Verdict:
    """Check the whole chain, its head, and every entry against its last audited state."""
    async with engine.connect() as conn:
        # The writers' lock, so that no change lands between the three reads; nothing is written.
        await audit_repo.lock(conn)
        events = await audit_repo.events(conn)
        head = await audit_repo.head(conn)
        entries = {r["id"]: audit.snapshot(r) for r in await repo.all_snapshots(conn)}
        await conn.rollback()
    return Verdict(audit.verify(events, head, entries), len(events), head)
