"""Blocklist use cases: propose, import, approve, reject, revoke, renew, expire, and the reads.

Every change runs in one transaction that first takes the audit chain's lock, checks the rules
in `ivr.core.review`, writes the entry, and appends its audit event: both land or neither does.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ivr.clock import Clock
from ivr.config import Config
from ivr.core import audit
from ivr.core.audit import AuditEvent
from ivr.core.blocklist import EntryStatus, candidate_patterns
from ivr.core.caller import normalise
from ivr.core.categories import category
from ivr.core.proposal import normalise_pattern, parse_action, parse_expiry
from ivr.core.review import (
    SYSTEM_ACTOR,
    Action,
    Actor,
    Conflict,
    EntryState,
    ReviewError,
    decide,
    effective_status,
)
from ivr.core.seals import Seals
from ivr.core.text import check_note
from ivr.db import audit as audit_repo
from ivr.db import blocklist as repo
from ivr.db.audit import AuditWriter

PREFIX_LOOKBACK = timedelta(days=90)
MAX_NOTE = 2000
_EVIDENCE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class NotFound(ReviewError):
    kind = "not-found"


class ImportRejected(ReviewError):
    """Some rows are invalid; nothing was applied. `problems` holds (line, message)."""

    def __init__(self, problems: list[tuple[int, str]]) -> None:
        self.problems = problems
        super().__init__(f"{len(problems)} invalid row(s); nothing was imported")


@dataclass(frozen=True)
class Proposal:
    number: str
    category: str
    note: str
    prefix: bool = False
    evidence: tuple[str, ...] = ()
    expires: str | None = None
    action: str = "reject"


@dataclass
class Proposed:
    entry: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    prefix_callers: int | None = None


@dataclass(frozen=True)
class Shown:
    entry: dict[str, Any]
    status: EntryStatus
    history: list[AuditEvent]
    calls: dict[str, int]


def state_of(rec: dict[str, Any]) -> EntryState:
    return EntryState(EntryStatus(rec["status"]), rec["proposed_by"], rec["expires_at"])


def _clean_note(note: str, what: str = "note") -> str:
    try:
        return check_note(note, what, MAX_NOTE)
    except ValueError as exc:
        raise ReviewError(str(exc)) from None


class BlocklistService:
    def __init__(self, engine: AsyncEngine, cfg: Config, clock: Clock, seals: Seals) -> None:
        self._engine = engine
        self._cfg = cfg
        self._clock = clock
        self._key = seals.audit_key

    # proposals ----------------------------------------------------------------------------
    async def _check(
        self, conn: AsyncConnection, p: Proposal, actor: Actor, now: datetime
    ) -> Proposed:
        """Validate a proposal against the rules and the data; the entry values to insert."""
        cfg = self._cfg
        try:
            pattern = normalise_pattern(
                p.number, p.prefix, cfg.screening.region, cfg.screening.blocklist_min_prefix_len
            )
            code = category(p.category).code
            action = parse_action(p.action, cfg.routes)
            expires_at = (
                parse_expiry(p.expires, now, cfg.hours.zone(), cfg.blocklist.max_expiry_days)
                if p.expires
                else now + timedelta(days=cfg.blocklist.default_expiry_days)
            )
        except ValueError as exc:
            raise ReviewError(str(exc)) from None
        note = _clean_note(p.note)
        if not note:
            raise ReviewError("a proposal needs --note giving the reason")
        bad = [e for e in p.evidence if not _EVIDENCE_ID.match(e)]
        if bad:
            raise ReviewError(f"evidence ids look wrong: {', '.join(map(repr, bad))}")
        evidence = list(dict.fromkeys(p.evidence))
        known = await repo.evidence_calls(conn, evidence)
        unknown = [e for e in evidence if e not in known]
        if unknown:
            raise ReviewError(f"no call or recording with id: {', '.join(unknown)}")
        warnings = [
            f"evidence {e} is a call from {num or 'an unknown number'}, which {pattern} "
            "does not match"
            for e, num in known.items()
            if not (num and (num.startswith(pattern) if p.prefix else num == pattern))
        ]
        for dup_id, dup_exp in await repo.open_duplicates(conn, pattern, p.prefix):
            if dup_exp is None or dup_exp > now:
                raise Conflict(f"entry {dup_id} already covers {pattern}; renew or revoke it")
        callers = (
            await repo.distinct_callers(conn, pattern, now - PREFIX_LOOKBACK) if p.prefix else None
        )
        values = {
            "pattern": pattern,
            "is_prefix": p.prefix,
            "status": EntryStatus.PENDING.value,
            "action": action,
            "category": code,
            "note": note,
            "evidence": json.dumps(evidence),
            "expires_at": expires_at,
            "proposed_by": actor.name,
            "proposed_at": now,
        }
        return Proposed(values, warnings, callers)

    async def propose(self, actor: Actor, p: Proposal) -> Proposed:
        now = self._clock.now()
        async with self._engine.begin() as conn:
            w = await AuditWriter.open(conn, self._key)
            checked = await self._check(conn, p, actor, now)
            checked.entry = await repo.insert_entry(conn, checked.entry)
            await w.append(
                now,
                actor.name,
                actor.via,
                Action.PROPOSE,
                checked.entry["id"],
                checked.entry["note"],
                audit.snapshot(checked.entry),
            )
        return checked

    async def import_rows(
        self, actor: Actor, rows: Sequence[tuple[int, Proposal | str]], source: str
    ) -> list[Proposed]:
        """Propose every row or none: rows given as a message are already known to be invalid."""
        now = self._clock.now()
        problems: list[tuple[int, str]] = []
        done: list[Proposed] = []
        seen: dict[tuple[str, bool], int] = {}
        async with self._engine.begin() as conn:
            w = await AuditWriter.open(conn, self._key)
            for line, row in rows:
                if isinstance(row, str):
                    problems.append((line, row))
                    continue
                try:
                    checked = await self._check(conn, row, actor, now)
                except ReviewError as exc:
                    problems.append((line, str(exc)))
                    continue
                key = (checked.entry["pattern"], row.prefix)
                if key in seen:
                    problems.append((line, f"{key[0]} is also on line {seen[key]}"))
                    continue
                seen[key] = line
                done.append(checked)
            if problems or not done:
                raise ImportRejected(problems or [(0, "the file has no rows")])
            for checked in done:
                checked.entry = await repo.insert_entry(conn, checked.entry)
                await w.append(
                    now,
                    actor.name,
                    actor.via,
                    Action.IMPORT,
                    checked.entry["id"],
                    f"{source}: {checked.entry['note']}",
                    audit.snapshot(checked.entry),
                )
        return done

    # decisions ----------------------------------------------------------------------------
    async def _transition(
        self,
        actor: Actor,
        entry_id: int,
        action: Action,
        note: str,
        expires_at: datetime | None = None,
    ) -> dict[str, Any]:
        now = self._clock.now()
        note = _clean_note(note, "--note")
        async with self._engine.begin() as conn:
            w = await AuditWriter.open(conn, self._key)
            rec = await repo.get(conn, entry_id)
            if rec is None:
                raise NotFound(f"no blocklist entry {entry_id}")
            status = decide(action, state_of(rec), actor, now, note=note, expires_at=expires_at)
            values: dict[str, Any] = {"status": status.value}
            if action in (Action.APPROVE, Action.REJECT):
                values |= {"decided_by": actor.name, "decided_at": now, "decision_note": note}
            elif action is Action.REVOKE:
                values |= {"revoked_by": actor.name, "revoked_at": now}
            elif action is Action.RENEW:
                values["expires_at"] = expires_at
            new = await repo.update_entry(conn, entry_id, rec["status"], values)
            if new is None:
                raise Conflict(f"entry {entry_id} changed meanwhile; look again")
            await w.append(now, actor.name, actor.via, action, entry_id, note, audit.snapshot(new))
        return new

    async def approve(self, actor: Actor, entry_id: int, note: str = "") -> dict[str, Any]:
        return await self._transition(actor, entry_id, Action.APPROVE, note)

    async def reject(self, actor: Actor, entry_id: int, note: str) -> dict[str, Any]:
        return await self._transition(actor, entry_id, Action.REJECT, note)

    async def revoke(self, actor: Actor, entry_id: int, note: str) -> dict[str, Any]:
        return await self._transition(actor, entry_id, Action.REVOKE, note)

    async def renew(
        self, actor: Actor, entry_id: int, expires: str, note: str = ""
    ) -> dict[str, Any]:
        now = self._clock.now()
        try:
            at = parse_expiry(
                expires, now, self._cfg.hours.zone(), self._cfg.blocklist.max_expiry_days
            )
        except ValueError as exc:
            raise ReviewError(str(exc)) from None
        return await self._transition(actor, entry_id, Action.RENEW, note, at)

    async def sweep(self) -> list[int]:
        """Record `expire` events for entries past their expiry (they stopped acting already)."""
        now = self._clock.now()
        # A plain read first: `serve` sweeps every minute and should not take the trail's write
        # lock when nothing is due. The list is read again under the lock before acting.
        async with self._engine.connect() as conn:
            if not await repo.past_expiry(conn, now):
                return []
        expired: list[int] = []
        async with self._engine.begin() as conn:
            w = await AuditWriter.open(conn, self._key)
            for rec in await repo.past_expiry(conn, now):
                decide(Action.EXPIRE, state_of(rec), Actor(SYSTEM_ACTOR), now)
                new = await repo.update_entry(
                    conn, rec["id"], rec["status"], {"status": EntryStatus.EXPIRED.value}
                )
                if new is None:
                    continue
                reason = f"expiry {audit.iso(rec['expires_at'])} reached while {rec['status']}"
                await w.append(
                    now, SYSTEM_ACTOR, None, Action.EXPIRE, rec["id"], reason, audit.snapshot(new)
                )
                expired.append(rec["id"])
        return expired

    # reads --------------------------------------------------------------------------------
    async def listing(
        self,
        statuses: Sequence[EntryStatus] = (),
        number: str | None = None,
        due_within: timedelta | None = None,
    ) -> list[tuple[dict[str, Any], EntryStatus]]:
        """Entries with their effective status (expired once past expiry, swept or not)."""
        now = self._clock.now()
        patterns = None
        if number is not None:
            e164 = normalise(number, self._cfg.screening.region)
            if e164 is None:
                raise ReviewError(f"--number {number!r} is not a phone number")
            patterns = candidate_patterns(e164, 2)
        async with self._engine.connect() as conn:
            rows = await repo.entries(
                conn, None, patterns, now + due_within if due_within else None
            )
        out = [(r, effective_status(state_of(r), now)) for r in rows]
        if due_within is not None:
            statuses = statuses or (EntryStatus.PENDING, EntryStatus.APPROVED)
        if statuses:
            out = [(r, s) for r, s in out if s in statuses]
        return out

    async def show(self, entry_id: int) -> Shown:
        async with self._engine.connect() as conn:
            rec = await repo.get(conn, entry_id)
            if rec is None:
                raise NotFound(f"no blocklist entry {entry_id}")
            history = await audit_repo.events(conn, entry_id)
            acted = await repo.calls_acted_on(conn, entry_id)
        return Shown(rec, effective_status(state_of(rec), self._clock.now()), history, acted)
