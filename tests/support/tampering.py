"""Edits to the audit trail made behind the service, and what verify must say."""

from __future__ import annotations

import sqlite3

import pytest

TAMPERING = {
    "edit a reason": ["UPDATE audit_events SET reason = 'nothing' WHERE seq = 2"],
    "edit an actor": ["UPDATE audit_events SET actor = 'carol' WHERE seq = 3"],
    "delete a row": ["DELETE FROM audit_events WHERE seq = 2"],
    "delete the last row": ["DELETE FROM audit_events WHERE seq = 4"],
    "delete the last row and fix the head": [
        "DELETE FROM audit_events WHERE seq = 4",
        "UPDATE audit_head SET seq = 3, hash = (SELECT hash FROM audit_events WHERE seq = 3)",
    ],
    "reorder two rows": [
        "UPDATE audit_events SET seq = -1 WHERE seq = 2",
        "UPDATE audit_events SET seq = 2 WHERE seq = 3",
        "UPDATE audit_events SET seq = 3 WHERE seq = -1",
    ],
    "approve an entry behind the trail's back": [
        "UPDATE blocklist_entries SET status = 'approved' WHERE id = 2"
    ],
    "delete an entry": ["DELETE FROM blocklist_entries WHERE id = 1"],
}


EXPECTED = {
    "edit a reason": "row 2: contents do not match the row's seal: edited",
    "edit an actor": "row 3: contents do not match the row's seal: edited",
    "delete a row": "row 3: expected row 2: rows were removed or renumbered",
    "delete the last row": "the chain ends at row 3 but the head record says row 4",
    "delete the last row and fix the head": "row 2: blocklist entry 2 differs from its last",
    "reorder two rows": "row 2: prev_hash does not match the row before: removed or reordered",
    "approve an entry behind the trail's back": "row 4: blocklist entry 2 differs",
    "delete an entry": "row 3: blocklist entry 1 was deleted outside the audit trail",
}


def tamper_sqlite(db: sqlite3.Connection, case: str) -> None:
    """The triggers refuse an edit; someone with the file drops them and applies `case`
    (verify must still find what they did)."""
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("UPDATE audit_events SET reason = 'x' WHERE seq = 1")
    db.execute("DROP TRIGGER audit_events_no_update")
    db.execute("DROP TRIGGER audit_events_no_delete")
    for statement in TAMPERING[case]:
        db.execute(statement)
