"""Recordings: the hand-off state of every recording file, retention and legal hold.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ivr.db.models import UtcDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "recordings",
        sa.Column("name", sa.String(96), primary_key=True),
        sa.Column("call_id", sa.String(32)),
        sa.Column("caller", sa.String(20)),
        sa.Column("started_at", UtcDateTime()),
        sa.Column("ended_at", UtcDateTime()),
        sa.Column("duration_s", sa.Float),
        sa.Column("bytes", sa.Integer, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("storage_uri", sa.String(512)),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", UtcDateTime()),
        sa.Column("last_error", sa.Text),
        sa.Column("retain_until", UtcDateTime(), nullable=False),
        sa.Column("legal_hold", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("hold_note", sa.Text),
        sa.Column("spooled_at", UtcDateTime(), nullable=False),
        sa.Column("stored_at", UtcDateTime()),
        sa.Column("purged_at", UtcDateTime()),
    )
    op.create_index("ix_recordings_state", "recordings", ["state"])
    op.create_index("ix_recordings_call", "recordings", ["call_id"])
    op.create_index("ix_recordings_caller_started", "recordings", ["caller", "started_at"])


def downgrade() -> None:
    op.drop_table("recordings")
