"""Seals: HMAC-SHA256 under keys only the service holds, over the rows that must not change
behind its back (audit events, recordings' retention, hold, hash and location, calls' talk
time). Someone who can write the database but not read the key cannot make a valid seal."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from ivr.core.audit import canonical

# What a recording's seal covers: where it is, what it hashes to, how long it is kept.
RECORDING_FIELDS = (
    "name",
    "call_id",
    "caller",
    "bytes",
    "sha256",
    "storage_uri",
    "state",
    "legal_hold",
    "retain_until",
)


class SealBroken(Exception):
    """A sealed row differs from its seal: changed outside the service. Nothing acts on it."""


def purpose(key: bytes, label: str) -> bytes:
    """A key for one use, derived from the service key (one compromise is not another)."""
    return hmac.new(key, f"ivr-guard {label}".encode(), hashlib.sha256).digest()


class Seals:
    """Seals of recordings and of calls' talk time; the audit chain has its own key."""

    def __init__(self, service_key: bytes) -> None:
        self.audit_key = purpose(service_key, "audit chain v1")
        self._rows = purpose(service_key, "row seals v1")

    def _mac(self, kind: str, body: Mapping[str, Any]) -> str:
        text = canonical({"kind": kind, **body})
        return hmac.new(self._rows, text.encode(), hashlib.sha256).hexdigest()

    def recording(self, rec: Mapping[str, Any]) -> str:
        body = {k: rec[k] for k in RECORDING_FIELDS}
        body["legal_hold"] = bool(body["legal_hold"])
        return self._mac("recording", body)

    def call(self, call_id: str, talk_s: float) -> str:
        return self._mac("call", {"call_id": call_id, "talk_s": round(float(talk_s), 3)})

    def recording_ok(self, rec: Mapping[str, Any]) -> bool:
        seal = rec.get("seal")
        return isinstance(seal, str) and hmac.compare_digest(seal, self.recording(rec))

    def call_ok(self, call_id: str, talk_s: float, seal: str | None) -> bool:
        return seal is not None and hmac.compare_digest(seal, self.call(call_id, talk_s))
