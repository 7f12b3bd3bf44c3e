"""Supervisor alerts: a fixed set of types and one JSON payload shape, built without I/O."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class AlertType(StrEnum):
    CAP_WARNING = "cap-warning"
    CAP_REACHED = "cap-reached"
    DAILY_LIMIT = "daily-limit"
    REPEAT_LIMIT = "repeat-limit"
    BLOCKED = "blocked"
    WITHHELD = "withheld"
    UNAVAILABLE = "unavailable"
    HARASSMENT_END = "harassment-end"
    AUDIT_ANCHOR = "audit-anchor"  # the audit chain's head, kept outside the database
    RECORDING_FAILED = "recording-failed"
    SPOOL_USAGE = "spool-usage"
    STORAGE_FULL = "storage-full"


@dataclass(frozen=True)
class Alert:
    type: AlertType
    call_id: str | None
    caller: str | None  # normalised E.164, never the raw caller ID
    at: datetime
    elapsed_s: float | None = None  # talk time so far (caps), or the caller's usage today
    cap_s: int | None = None  # this call's limit, or the daily budget
    details: dict[str, str | int | float | None] = field(default_factory=dict)


def payload(a: Alert) -> dict[str, Any]:
    """The documented JSON object (README, "Alerts")."""
    return {
        "type": a.type.value,
        "call_id": a.call_id,
        "caller": a.caller,
        "elapsed_s": None if a.elapsed_s is None else round(a.elapsed_s, 1),
        "cap_s": a.cap_s,
        "at": a.at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        **{k: v for k, v in a.details.items() if k not in _FIELDS},
    }


def encode(a: Alert) -> bytes:
    """UTF-8 JSON; non-ASCII escaped so every consumer reads it the same."""
    return json.dumps(payload(a), ensure_ascii=True, separators=(",", ":")).encode()


def topic(prefix: str, t: AlertType) -> str:
    """`<prefix>/<type>`: built from configuration and the fixed type only, never caller data."""
    return f"{prefix.rstrip('/')}/{t.value}"


_FIELDS = frozenset({"type", "call_id", "caller", "elapsed_s", "cap_s", "at"})
