"""Audit trail: hash-chained audit_events, its head record, append-only triggers.

Entries that exist before this revision are sealed into the chain as `import` events by
`system`, so `ivr audit verify` starts from a known state.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from ivr.core import audit
from ivr.db.models import UtcDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_PG_FUNCTION = """
CREATE FUNCTION ivr_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only (% refused)', TG_OP;
END;
$$
"""


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("via", sa.String(64)),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("entry_id", sa.Integer),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("snapshot", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_audit_events_entry", "audit_events", ["entry_id"])
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    _seal_existing(head)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_FUNCTION)
        op.execute(
            "CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events "
            "FOR EACH ROW EXECUTE FUNCTION ivr_audit_append_only()"
        )
        op.execute(
            "CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events "
            "FOR EACH STATEMENT EXECUTE FUNCTION ivr_audit_append_only()"
        )
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_events_no_{verb.lower()} BEFORE {verb} ON audit_events "
                f"BEGIN SELECT RAISE(ABORT, 'audit_events is append-only ({verb} refused)'); END"
            )


def _seal_existing(head: sa.Table) -> None:
    bind = op.get_bind()
    entries = sa.table(
        "blocklist_entries",
        *(
            sa.column(c)
            for c in (
                "id",
                "pattern",
                "is_prefix",
                "status",
                "action",
                "category",
                "note",
                "evidence",
                "proposed_by",
                "decided_by",
                "decision_note",
                "revoked_by",
            )
        ),
        sa.column("expires_at", UtcDateTime()),
        sa.column("proposed_at", UtcDateTime()),
        sa.column("decided_at", UtcDateTime()),
        sa.column("revoked_at", UtcDateTime()),
    )
    events = sa.table(
        "audit_events",
        *(
            sa.column(c)
            for c in (
                "seq",
                "actor",
                "via",
                "action",
                "entry_id",
                "reason",
                "snapshot",
                "prev_hash",
                "hash",
            )
        ),
        sa.column("at", UtcDateTime()),
    )
    prev = (0, audit.GENESIS)
    now = datetime.now(UTC)
    for row in bind.execute(sa.select(entries).order_by(entries.c.id)):
        entry = dict(row._mapping)
        entry["is_prefix"] = bool(entry["is_prefix"])
        ev = audit.seal(
            prev,
            now,
            "system",
            None,
            "import",
            entry["id"],
            "present before the audit trail (migration 0002)",
            audit.snapshot(entry),
            None,  # no key here: plain SHA-256; 0005 marks these rows as from before the key
        )
        bind.execute(sa.insert(events).values(**asdict(ev)))
        prev = (ev.seq, ev.hash)
    bind.execute(sa.insert(head).values(id=1, seq=prev[0], hash=prev[1]))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_events_no_truncate ON audit_events")
        op.execute("DROP TRIGGER audit_events_append_only ON audit_events")
        op.execute("DROP FUNCTION ivr_audit_append_only()")
    else:
        op.execute("DROP TRIGGER audit_events_no_update")
        op.execute("DROP TRIGGER audit_events_no_delete")
    op.drop_table("audit_head")
    op.drop_index("ix_audit_events_entry", "audit_events")
    op.drop_table("audit_events")
