"""Reading and verifying the audit trail and the sealed rows; sealing rows from before the key;
publishing the chain's head as an anchor."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ivr.clock import Clock
from ivr.core import audit
from ivr.core.audit import Anchor, AuditEvent, Break
from ivr.core.review import SYSTEM_ACTOR
from ivr.core.seals import Seals
from ivr.db import audit as audit_repo
from ivr.db import blocklist as repo
from ivr.db.audit import AuditWriter
from ivr.db.models import audit_head, calls, recordings

log = logging.getLogger("ivr.audit")

KEYED = "keyed"  # the event that starts the keyed part of a chain begun before the key


@dataclass(frozen=True)
class Verdict:
    problem: Break | None
    events: int
    head: tuple[int, str] | None
    keyed_from: int = 1
    rows: list[str] = field(default_factory=list)  # sealed rows that fail their seal
    recordings: int = 0
    calls: int = 0

    @property
    def ok(self) -> bool:
        return self.problem is None and not self.rows


async def log_events(engine: AsyncEngine, entry_id: int | None = None) -> list[AuditEvent]:
    async with engine.connect() as conn:
        return await audit_repo.events(conn, entry_id)


def _keying_break(events: list[AuditEvent], keyed_from: int, unsealed: bool) -> Break | None:
    """The keyed part starts at row 1, or where the `keyed` event (sealed with the key, so
    unforgeable) says it does; and there is one such event at most, ever."""
    keyed = [ev for ev in events if ev.action == KEYED and ev.actor == SYSTEM_ACTOR]
    if len(keyed) > 1:
        return Break(keyed[1].seq, "rows were sealed a second time after the upgrade")
    if unsealed:
        return Break(None, "rows from before the upgrade are not sealed: start `ivr serve`")
    if keyed_from == 1:
        return None
    said = json.loads(keyed[0].snapshot).get("keyed_from") if keyed else None
    if said != keyed_from or keyed[0].seq < keyed_from:
        return Break(
            keyed_from, "audit_head says rows before this one predate the key; the chain does not"
        )
    return None


async def _sealed_rows(conn: AsyncConnection, seals: Seals) -> tuple[list[str], int, int]:
    bad: list[str] = []
    recs = (await conn.execute(select(recordings))).mappings().all()
    for r in recs:
        if not seals.recording_ok(dict(r)):
            bad.append(
                f"recording {r['name']}: location, hash, state, hold or retention "
                "differs from its seal"
            )
    c = calls.c
    n = 0
    rows = await conn.execute(
        select(c.call_id, c.talk_s, c.seal).where(c.talk_s.is_not(None)).order_by(c.started_at)
    )
    for call_id, talk_s, seal in rows:
        n += 1
        if not seals.call_ok(call_id, talk_s, seal):
            bad.append(f"call {call_id}: talk time differs from its seal")
    return bad, len(recs), n


async def verify(engine: AsyncEngine, seals: Seals, anchor: Anchor | None = None) -> Verdict:
    """Check the whole chain, its head, every entry against its last audited state, the
    anchor if given, and the seals of every recording and every accounted call."""
    async with engine.connect() as conn:
        # The writers' lock, so that no change lands between the reads; nothing is written.
        await audit_repo.lock(conn)
        events = await audit_repo.events(conn)
        head = await audit_repo.head(conn)
        keyed_from, unsealed = await audit_repo.keying(conn)
        entries = {r["id"]: audit.snapshot(r) for r in await repo.all_snapshots(conn)}
        bad, n_recs, n_calls = await _sealed_rows(conn, seals)
        await conn.rollback()
    problem = audit.verify(
        events, head, entries, seals.audit_key, keyed_from=keyed_from, anchor=anchor
    ) or _keying_break(events, keyed_from, unsealed)
    return Verdict(problem, len(events), head, keyed_from, bad, n_recs, n_calls)


async def seal_older_rows(engine: AsyncEngine, seals: Seals, clock: Clock) -> int | None:
    """Once, after the upgrade that brought the key: seal the rows written before it and
    record that in the chain (a `keyed` event, the first sealed with the key). The number of
    rows sealed, or None when there was nothing to do."""
    async with engine.begin() as conn:
        w = await AuditWriter.open(conn, seals.audit_key)
        keyed_from, unsealed = await audit_repo.keying(conn)
        if not unsealed:
            return None
        recs = (
            await conn.execute(select(recordings).where(recordings.c.seal.is_(None)))
        ).mappings()
        n_recs = 0
        for r in recs.all():
            await conn.execute(
                update(recordings)
                .where(recordings.c.name == r["name"])
                .values(seal=seals.recording(dict(r)))
            )
            n_recs += 1
        c = calls.c
        todo = await conn.execute(
            select(c.call_id, c.talk_s).where(c.talk_s.is_not(None), c.seal.is_(None))
        )
        n_calls = 0
        for call_id, talk_s in todo.all():
            await conn.execute(
                update(calls).where(c.call_id == call_id).values(seal=seals.call(call_id, talk_s))
            )
            n_calls += 1
        await w.append(
            clock.now(),
            SYSTEM_ACTOR,
            None,
            KEYED,
            None,
            f"sealed {n_recs} recording(s) and {n_calls} call(s) written before the key",
            audit.canonical({"keyed_from": keyed_from, "recordings": n_recs, "calls": n_calls}),
        )
        await conn.execute(update(audit_head).values(unsealed=False))
    log.warning(
        "sealed %d recordings and %d calls written before the key; chain keyed from row %d",
        n_recs,
        n_calls,
        keyed_from,
    )
    return n_recs + n_calls


async def anchor_now(engine: AsyncEngine) -> Anchor | None:
    """The chain's head, as an anchor to keep outside the database."""
    async with engine.connect() as conn:
        head = await audit_repo.head(conn)
    return Anchor(*head) if head and head[0] > 0 else None
