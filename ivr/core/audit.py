"""The audit trail's chain: sealing an event and finding the first broken row.

Each row is sealed with HMAC-SHA256 under a key only the service holds, over its fields and the
seal of the row before. Rows written before the key existed (a database upgraded from a
version without it: seq < `keyed_from`) were sealed with plain SHA-256 and are checked so; an
anchor taken since then pins them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64


def canonical(obj: Any) -> str:
    """Canonical JSON: sorted keys, no spaces, UTF-8 text, datetimes as UTC ISO strings."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_iso)


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return iso(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def snapshot(entry: Mapping[str, Any]) -> str:
    """The canonical text of an entry row, as stored in its audit events."""
    return canonical(dict(entry))


@dataclass(frozen=True)
class AuditEvent:
    seq: int
    at: datetime
    actor: str
    via: str | None
    action: str
    entry_id: int | None
    reason: str
    snapshot: str
    prev_hash: str
    hash: str


def digest(ev: AuditEvent, key: bytes | None) -> str:
    """HMAC-SHA256 under `key` (SHA-256 for a row from before the key: `key` None) over the
    canonical JSON of every field but `hash` itself (`prev_hash` included)."""
    body = asdict(ev)
    del body["hash"]
    text = canonical(body).encode()
    if key is None:
        return hashlib.sha256(text).hexdigest()
    return hmac.new(key, text, hashlib.sha256).hexdigest()


def seal(
    prev: tuple[int, str],
    at: datetime,
    actor: str,
    via: str | None,
    action: str,
    entry_id: int | None,
    reason: str,
    snapshot: str,
    key: bytes | None,
) -> AuditEvent:
    """The next event after `prev` = (seq, hash) of the chain's head, sealed under `key` (None:
    plain SHA-256, as migration 0002 sealed the rows it wrote before there was a key)."""
    ev = AuditEvent(prev[0] + 1, at, actor, via, action, entry_id, reason, snapshot, prev[1], "")
    return replace(ev, hash=digest(ev, key))


@dataclass(frozen=True)
class Anchor:
    """The chain's head as it was published at some moment (log, MQTT): `SEQ:HASH`."""

    seq: int
    hash: str

    @classmethod
    def parse(cls, text: str) -> Anchor:
        seq, sep, value = text.strip().partition(":")
        if not sep or not seq.isdigit() or len(value) != 64:
            raise ValueError(f"an anchor is SEQ:HASH (64 hex digits), not {text!r}")
        return cls(int(seq), value.lower())

    def __str__(self) -> str:
        return f"{self.seq}:{self.hash}"


@dataclass(frozen=True)
class Break:
    """The first problem found; `seq` is the row it was found at, if any."""

    seq: int | None
    problem: str

    def __str__(self) -> str:
        return f"row {self.seq}: {self.problem}" if self.seq is not None else self.problem


def verify(
    events: Sequence[AuditEvent],
    head: tuple[int, str] | None,
    entries: Mapping[int, str],
    key: bytes,
    *,
    keyed_from: int = 1,
    anchor: Anchor | None = None,
) -> Break | None:
    """Check the chain in stored order, the head record, and that entries match their last event.

    `events` must be in ascending `seq` order as stored; `entries` maps each blocklist entry id
    to its current snapshot text. Rows from `keyed_from` on must carry the key's seal; an
    `anchor` published earlier must still be in the chain, unchanged.
    """
    if anchor is not None:
        at = next((ev for ev in events if ev.seq == anchor.seq), None)
        if at is None:
            return Break(anchor.seq, "the anchored row is gone: the chain was cut or rebuilt")
        if at.hash != anchor.hash:
            return Break(anchor.seq, "the anchored row differs from the anchor: rebuilt")
    prev = (0, GENESIS)
    last_snapshot: dict[int, tuple[int, str]] = {}
    for ev in events:
        if ev.seq != prev[0] + 1:
            return Break(ev.seq, f"expected row {prev[0] + 1}: rows were removed or renumbered")
        if ev.prev_hash != prev[1]:
            return Break(ev.seq, "prev_hash does not match the row before: removed or reordered")
        if not hmac.compare_digest(ev.hash, digest(ev, key if ev.seq >= keyed_from else None)):
            return Break(ev.seq, "contents do not match the row's seal: edited")
        if ev.entry_id is not None:
            last_snapshot[ev.entry_id] = (ev.seq, ev.snapshot)
        prev = (ev.seq, ev.hash)
    if head is None:
        if events:
            return Break(None, "the audit head record is missing")
    elif head != prev:
        return Break(
            None,
            f"the chain ends at row {prev[0]} but the head record says row {head[0]}: "
            "rows were removed from the end",
        )
    for entry_id, text in sorted(entries.items()):
        seen = last_snapshot.get(entry_id)
        if seen is None:
            return Break(None, f"blocklist entry {entry_id} has no audit history")
        if seen[1] != text:
            return Break(seen[0], f"blocklist entry {entry_id} differs from its last audited state")
    for entry_id, (seq, _) in sorted(last_snapshot.items()):
        if entry_id not in entries:
            return Break(seq, f"blocklist entry {entry_id} was deleted outside the audit trail")
    return None
