"""Blocklist matching: approved, unexpired entries act; exact beats prefix; longest prefix wins."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class EntryStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    REVOKED = "revoked"
    EXPIRED = "expired"


@dataclass(frozen=True)
class BlockEntry:
    """The read side of a blocklist entry: what a call needs to know."""

    id: int
    pattern: str  # E.164, or an E.164 prefix when is_prefix
    is_prefix: bool
    status: EntryStatus
    expires_at: datetime | None
    action: str = "reject"  # "reject" or "route:NAME"

    def active(self, now: datetime) -> bool:
        """Approved and not yet at its expiry instant."""
        return self.status is EntryStatus.APPROVED and (
            self.expires_at is None or now < self.expires_at
        )

    @property
    def route(self) -> str | None:
        """The route for `route:NAME` entries, else None (refuse the call)."""
        return self.action.removeprefix("route:") if self.action.startswith("route:") else None


def candidate_patterns(e164: str, min_prefix_len: int) -> list[str]:
    """Every stored pattern that could match `e164`: itself and its prefixes of useful length."""
    return [e164[:n] for n in range(len(e164), min(min_prefix_len, len(e164)) - 1, -1)]


def match(e164: str, entries: Iterable[BlockEntry], now: datetime) -> BlockEntry | None:
    """The entry that acts on a call from `e164` at `now`, if any."""
    best: BlockEntry | None = None
    for e in entries:
        if not e.active(now):
            continue
        if not e.is_prefix:
            if e.pattern == e164 and (best is None or best.is_prefix or e.id < best.id):
                best = e
            continue
        if not e164.startswith(e.pattern) or (best is not None and not best.is_prefix):
            continue
        if best is None or (len(e.pattern), -e.id) > (len(best.pattern), -best.id):
            best = e
    return best
