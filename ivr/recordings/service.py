"""Recording use cases for supervisors and the daily purge; every access that reveals or
removes a recording (export, hold, release, purge) is an audit event."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from ivr.clock import Clock
from ivr.core import audit
from ivr.core.review import Actor, Conflict, ReviewError
from ivr.core.seals import Seals
from ivr.core.text import check_note, escape, unsafe
from ivr.db import recordings as repo
from ivr.db.audit import AuditWriter
from ivr.recordings.storage import Digest, Storage, StorageError
from ivr.review.service import NotFound

log = logging.getLogger("ivr.recordings")

MAX_NOTE = 2000


def _note(note: str, *, required: bool) -> str:
    try:
        note = check_note(note, "--note", MAX_NOTE)
    except ValueError as exc:
        raise ReviewError(str(exc)) from None
    if required and not note:
        raise ReviewError("--note is required: say why")
    return note


class Mismatch(ReviewError):
    """A stored object does not match what was recorded."""

    kind = "tampered"


def _snapshot(rec: dict[str, Any]) -> str:
    keep = ("name", "call_id", "caller", "bytes", "sha256", "storage_uri", "legal_hold")
    return audit.canonical({k: rec[k] for k in keep} | {"retain_until": rec["retain_until"]})


@dataclass
class Checked:
    name: str
    ok: bool
    problem: str = ""


@dataclass
class Purged:
    deleted: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)


class RecordingService:
    def __init__(self, engine: AsyncEngine, storage: Storage, clock: Clock, seals: Seals) -> None:
        self._engine = engine
        self._storage = storage
        self._clock = clock
        self._seals = seals

    async def get(self, name: str) -> dict[str, Any]:
        async with self._engine.connect() as conn:
            rec = await repo.get(conn, name)
        if rec is None:
            raise NotFound(f"no recording {name}")
        return rec

    async def _stored(self, name: str) -> dict[str, Any]:
        rec = await self.get(name)
        if rec["state"] not in ("stored", "verified", "complete") or not rec["storage_uri"]:
            raise Conflict(f"recording {name} is {rec['state']}, not in storage")
        return rec

    async def export(
        self, actor: Actor, name: str, label: str, part: Path, note: str = ""
    ) -> Digest:
        """Copy a stored recording to `part` (a new file of the service's, which the caller
        sends on and removes), check it against the recorded hash, and audit the export to
        `label` (where the supervisor saves it). Nothing is returned unless the audit row is
        stored."""
        note = _note(note, required=False)
        if unsafe(label):
            raise ReviewError(f"{escape(label)}: control characters in the file name")
        rec = await self._stored(name)
        try:
            got = await self._storage.export(rec["storage_uri"], part)
            if got != Digest(rec["bytes"], rec["sha256"]):
                raise Mismatch(
                    f"stored copy of {name} is {got.bytes} bytes, sha256 {got.sha256}; "
                    f"expected {rec['bytes']} bytes, sha256 {rec['sha256']}: not exported"
                )
            reason = f"to {label}" + (f": {note}" if note else "")
            await self._audit(actor, "rec-export", rec, reason)
        except BaseException:
            await asyncio.to_thread(part.unlink, missing_ok=True)
            raise
        return got

    async def set_hold(self, actor: Actor, name: str, hold: bool, note: str) -> dict[str, Any]:
        note = _note(note, required=True)
        rec = await self.get(name)
        self._check_seal(rec)
        if rec["state"] == "purged":
            raise Conflict(f"recording {name} was purged")
        if bool(rec["legal_hold"]) == hold:
            raise Conflict(f"recording {name} is {'already' if hold else 'not'} on hold")
        async with self._engine.begin() as conn:
            w = await AuditWriter.open(conn, self._seals.audit_key)
            await repo.advance(
                conn, name, rec["state"], {"legal_hold": hold, "hold_note": note}, self._seals
            )
            rec = {**rec, "legal_hold": hold, "hold_note": note}
            await w.append(
                self._clock.now(),
                actor.name,
                actor.via,
                "rec-hold" if hold else "rec-release",
                None,
                note,
                _snapshot(rec),
            )
        return rec

    async def verify(self, names: list[str] | None = None) -> list[Checked]:
        """Re-read stored objects and compare size and SHA-256 with the database."""
        async with self._engine.connect() as conn:
            if names:
                recs = [r for n in names if (r := await repo.get(conn, n)) is not None]
                missing = set(names) - {r["name"] for r in recs}
                if missing:
                    raise NotFound(f"no recording {', '.join(sorted(missing))}")
            else:
                recs = await repo.listing(
                    conn, states=("stored", "verified", "complete"), limit=10**9
                )
        out: list[Checked] = []
        for r in recs:
            if not r["storage_uri"]:
                out.append(Checked(r["name"], False, f"not in storage ({r['state']})"))
                continue
            try:
                got = await self._storage.digest(r["storage_uri"])
            except StorageError as exc:
                out.append(Checked(r["name"], False, f"cannot read: {exc}"))
                continue
            if got != Digest(r["bytes"], r["sha256"]):
                out.append(
                    Checked(
                        r["name"],
                        False,
                        f"{got.bytes} bytes, sha256 {got.sha256}; "
                        f"expected {r['bytes']} bytes, sha256 {r['sha256']}",
                    )
                )
            else:
                out.append(Checked(r["name"], True))
        return out

    async def purge(self, actor: Actor, *, dry_run: bool = False) -> Purged:
        """Delete recordings past retention, never one on hold; each deletion is audited."""
        now = self._clock.now()
        async with self._engine.connect() as conn:
            due = await repo.expired(conn, now)
        result = Purged()
        for rec in due:
            if dry_run:
                result.deleted.append(rec["name"])
                continue
            async with self._engine.begin() as conn:
                # Re-read under the trail's lock: a hold placed meanwhile wins.
                w = await AuditWriter.open(conn, self._seals.audit_key)
                fresh = await repo.get(conn, rec["name"])
                if fresh is None or fresh["legal_hold"] or fresh["state"] != "complete":
                    continue
                if not self._seals.recording_ok(fresh):
                    why = "its hold, retention or location differs from its seal: not deleted"
                    log.error("purge: recording %s: %s", rec["name"], why)
                    result.failed.append((rec["name"], why))
                    continue
                try:
                    await self._storage.delete(fresh["storage_uri"])
                except StorageError as exc:
                    result.failed.append((rec["name"], str(exc)))
                    continue
                await repo.advance(
                    conn,
                    rec["name"],
                    "complete",
                    {"state": "purged", "purged_at": now},
                    self._seals,
                )
                await w.append(
                    now,
                    actor.name,
                    actor.via,
                    "rec-purge",
                    None,
                    f"retention ended {audit.iso(fresh['retain_until'])}",
                    _snapshot(fresh),
                )
            result.deleted.append(rec["name"])
            log.info("recording %s purged (retention ended)", rec["name"])
        return result

    def _check_seal(self, rec: dict[str, Any]) -> None:
        if not self._seals.recording_ok(rec):
            raise Mismatch(
                f"recording {rec['name']}: its hold, retention or location differs from its "
                "seal (changed outside the service); see `ivr audit verify`"
            )

    async def _audit(self, actor: Actor, action: str, rec: dict[str, Any], reason: str) -> None:
        async with self._engine.begin() as conn:
            w = await AuditWriter.open(conn, self._seals.audit_key)
            await w.append(
                self._clock.now(), actor.name, actor.via, action, None, reason, _snapshot(rec)
            )

    async def listing(self, **filters: Any) -> list[dict[str, Any]]:
        async with self._engine.connect() as conn:
            return await repo.listing(conn, **filters)

    def now(self) -> datetime:
        return self._clock.now()
