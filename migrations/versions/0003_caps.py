"""Caps and accounting: the call's channel, limit, talk time, legal hold.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_COLUMNS = ("channel", "limit_s", "talk_s", "talk_source", "legal_hold", "hold_note")


def upgrade() -> None:
    with op.batch_alter_table("calls") as b:
        b.add_column(sa.Column("channel", sa.String(80)))
        b.add_column(sa.Column("limit_s", sa.Integer))
        b.add_column(sa.Column("talk_s", sa.Float))
        b.add_column(sa.Column("talk_source", sa.String(16)))
        b.add_column(sa.Column("legal_hold", sa.Boolean, nullable=False, server_default=sa.false()))
        b.add_column(sa.Column("hold_note", sa.Text))
    op.create_index("ix_calls_started", "calls", ["started_at"])


def downgrade() -> None:
    op.drop_index("ix_calls_started", table_name="calls")
    with op.batch_alter_table("calls") as b:
        for name in reversed(_COLUMNS):
            b.drop_column(name)
