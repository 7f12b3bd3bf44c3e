"""Calls and blocklist entries.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ivr.db.models import UtcDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "calls",
        sa.Column("call_id", sa.String(32), primary_key=True),
        sa.Column("uniqueid", sa.String(64), nullable=False),
        sa.Column("linkedid", sa.String(64), nullable=False),
        sa.Column("caller_raw", sa.String(64), nullable=False),
        sa.Column("caller_name", sa.String(64), nullable=False),
        sa.Column("caller_e164", sa.String(20)),
        sa.Column("caller_class", sa.String(16), nullable=False),
        sa.Column("dialled", sa.String(32), nullable=False),
        sa.Column("decision", sa.String(16)),
        sa.Column("reason", sa.String(24)),
        sa.Column("route", sa.String(40)),
        sa.Column("blocklist_entry_id", sa.Integer),
        sa.Column("recording_path", sa.String(255)),
        sa.Column("started_at", UtcDateTime(), nullable=False),
        sa.Column("ended_at", UtcDateTime()),
        sa.Column("duration_s", sa.Float),
        sa.Column("end_reason", sa.String(24)),
    )
    op.create_index("ix_calls_uniqueid", "calls", ["uniqueid"])
    op.create_index("ix_calls_linkedid", "calls", ["linkedid"])
    op.create_index("ix_calls_caller_started", "calls", ["caller_e164", "started_at"])
    op.create_table(
        "blocklist_entries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("pattern", sa.String(20), nullable=False),
        sa.Column("is_prefix", sa.Boolean, nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("action", sa.String(48), nullable=False),
        sa.Column("category", sa.String(40), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("evidence", sa.Text, nullable=False),
        sa.Column("expires_at", UtcDateTime()),
        sa.Column("proposed_by", sa.String(64), nullable=False),
        sa.Column("proposed_at", UtcDateTime(), nullable=False),
        sa.Column("decided_by", sa.String(64)),
        sa.Column("decided_at", UtcDateTime()),
        sa.Column("decision_note", sa.Text),
        sa.Column("revoked_by", sa.String(64)),
        sa.Column("revoked_at", UtcDateTime()),
    )
    op.create_index("ix_blocklist_pattern_status", "blocklist_entries", ["pattern", "status"])


def downgrade() -> None:
    op.drop_index("ix_blocklist_pattern_status", "blocklist_entries")
    op.drop_table("blocklist_entries")
    op.drop_index("ix_calls_caller_started", "calls")
    op.drop_index("ix_calls_linkedid", "calls")
    op.drop_index("ix_calls_uniqueid", "calls")
    op.drop_table("calls")
