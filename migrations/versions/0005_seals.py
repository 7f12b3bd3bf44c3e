"""Keyed seals: the audit chain under the service's key from here on, and seal columns for
recordings and calls' talk time.

The key lives in the service's data folder, not here: rows written before this revision are
sealed by `ivr serve` at its next start (`unsealed`), once, with a `keyed` audit event.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_head") as t:
        t.add_column(sa.Column("keyed_from", sa.Integer, nullable=False, server_default="1"))
        t.add_column(sa.Column("unsealed", sa.Boolean, nullable=False, server_default=sa.false()))
    with op.batch_alter_table("recordings") as t:
        t.add_column(sa.Column("seal", sa.String(64)))
    with op.batch_alter_table("calls") as t:
        t.add_column(sa.Column("seal", sa.String(64)))
    op.execute(
        "UPDATE audit_head SET keyed_from = seq + 1, unsealed = "
        "(seq > 0 OR EXISTS (SELECT 1 FROM recordings) "
        "OR EXISTS (SELECT 1 FROM calls WHERE talk_s IS NOT NULL))"
    )


def downgrade() -> None:
    with op.batch_alter_table("calls") as t:
        t.drop_column("seal")
    with op.batch_alter_table("recordings") as t:
        t.drop_column("seal")
    with op.batch_alter_table("audit_head") as t:
        t.drop_column("unsealed")
        t.drop_column("keyed_from")
