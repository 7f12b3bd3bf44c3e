"""Tables. Schema changes go through Alembic (migrations/), never create_all in production."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    false,
)
from sqlalchemy.types import TypeDecorator

metadata = MetaData()


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


calls = Table(
    "calls",
    metadata,
    Column("call_id", String(32), primary_key=True),
    Column("uniqueid", String(64), nullable=False),
    Column("linkedid", String(64), nullable=False),
    Column("caller_raw", String(64), nullable=False),
    Column("caller_name", String(64), nullable=False),
    Column("caller_e164", String(20)),
    Column("caller_class", String(16), nullable=False),
    Column("dialled", String(32), nullable=False),
    Column("decision", String(16)),
    Column("reason", String(24)),
    Column("route", String(40)),
    Column("blocklist_entry_id", Integer),
    Column("recording_path", String(255)),
    Column("started_at", UtcDateTime(), nullable=False),
    Column("ended_at", UtcDateTime()),
    Column("duration_s", Float),
    Column("end_reason", String(24)),
    # Issue 4: caps, accounting and harassment end.
    Column("channel", String(80)),  # Asterisk's channel name, for AMI Redirect
    Column("limit_s", Integer),  # the talk-time limit Asterisk was given; NULL: none
    Column("talk_s", Float),  # real talk time, written once (NULL until accounted)
    Column("talk_source", String(16)),  # hangup-handler | ami-bridge | unobserved
    Column("legal_hold", Boolean, nullable=False, default=False, server_default=false()),
    Column("hold_note", Text),
    Column("seal", String(64)),  # ivr.core.seals over the talk time, once accounted
    Index("ix_calls_uniqueid", "uniqueid"),
    Index("ix_calls_started", "started_at"),
    Index("ix_calls_linkedid", "linkedid"),
    Index("ix_calls_caller_started", "caller_e164", "started_at"),
)

blocklist_entries = Table(
    "blocklist_entries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("pattern", String(20), nullable=False),
    Column("is_prefix", Boolean, nullable=False, default=False),
    Column("status", String(12), nullable=False),
    Column("action", String(48), nullable=False, default="reject"),
    Column("category", String(40), nullable=False),
    Column("note", Text, nullable=False, default=""),
    Column("evidence", Text, nullable=False, default="[]"),
    Column("expires_at", UtcDateTime()),
    Column("proposed_by", String(64), nullable=False),
    Column("proposed_at", UtcDateTime(), nullable=False),
    Column("decided_by", String(64)),
    Column("decided_at", UtcDateTime()),
    Column("decision_note", Text),
    Column("revoked_by", String(64)),
    Column("revoked_at", UtcDateTime()),
    Index("ix_blocklist_pattern_status", "pattern", "status"),
)

# Append-only and hash-chained (ivr.core.audit); triggers from migration 0002 refuse UPDATE and
# DELETE. `audit_head` holds the last row's seq and hash so that removing rows from the end of
# the chain is also caught, and serialises writers (each takes its row lock first).
audit_events = Table(
    "audit_events",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("at", UtcDateTime(), nullable=False),
    Column("actor", String(64), nullable=False),
    Column("via", String(64)),
    Column("action", String(16), nullable=False),
    Column("entry_id", Integer),
    Column("reason", Text, nullable=False),
    Column("snapshot", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_audit_events_entry", "entry_id"),
)

audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", Integer, nullable=False),
    Column("hash", String(64), nullable=False),
    # Rows from this seq on are sealed with the service's key (migration 0005 set it).
    Column("keyed_from", Integer, nullable=False, default=1, server_default="1"),
    # Rows written before migration 0005 wait for the service to seal them, once.
    Column("unsealed", Boolean, nullable=False, default=False, server_default=false()),
)


# One row per recording file, from the spool to storage. `state` moves forward only:
# spooled (hashed at the source) → stored → verified → complete (spool copy removed); or
# failed (kept in the spool, alerted) / purged (deleted at the end of retention).
recordings = Table(
    "recordings",
    metadata,
    Column("name", String(96), primary_key=True),  # the spool file name (made by us or Asterisk)
    Column("call_id", String(32)),
    Column("caller", String(20)),
    Column("started_at", UtcDateTime()),
    Column("ended_at", UtcDateTime()),
    Column("duration_s", Float),
    Column("bytes", Integer, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("storage_uri", String(512)),
    Column("state", String(12), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UtcDateTime()),
    Column("last_error", Text),
    Column("retain_until", UtcDateTime(), nullable=False),
    Column("legal_hold", Boolean, nullable=False, default=False, server_default=false()),
    Column("hold_note", Text),
    Column("spooled_at", UtcDateTime(), nullable=False),
    Column("stored_at", UtcDateTime()),
    Column("purged_at", UtcDateTime()),
    Column("seal", String(64)),  # ivr.core.seals over location, hash, state, hold, retention
    Index("ix_recordings_state", "state"),
    Index("ix_recordings_call", "call_id"),
    Index("ix_recordings_caller_started", "caller", "started_at"),
)
