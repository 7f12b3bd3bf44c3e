"""The tables that are a centre's history (calls, the blocklist and its audit trail,
recordings): counted, exported, and checked against an export before anything drops them.

Every schema downgrade drops one of these tables or some of its columns, so `ivr db downgrade`
refuses while they hold rows, unless it is given an export of the database as it is now.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, inspect, select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from ivr.files import private_new_file

HISTORY = ("calls", "blocklist_entries", "audit_events", "audit_head", "recordings")
# audit_head always holds the chain's head (a genesis row at first): exported, not counted.
COUNTED = ("calls", "blocklist_entries", "audit_events", "recordings")
FORMAT = "ivr-guard-history/1"


class HistoryError(Exception):
    """The export is missing, unreadable, altered, or not of the database as it is now."""


@dataclass(frozen=True)
class Snapshot:
    counts: dict[str, int]  # rows per history table that exists at this revision
    sha256: str  # over every row of those tables, in key order
    tables: dict[str, list[dict[str, Any]]]

    @property
    def rows(self) -> int:
        return sum(n for t, n in self.counts.items() if t in COUNTED)

    def describe(self) -> str:
        kept = [f"{n} {t}" for t, n in self.counts.items() if n and t in COUNTED]
        return ", ".join(kept) or "no rows"


def _value(v: Any) -> Any:
    if v is None or isinstance(v, bool | int | float | str):
        return v
    if isinstance(v, bytes):
        return v.hex()
    return str(v)  # datetimes and the like, as the database gave them


def _digest(tables: dict[str, list[dict[str, Any]]]) -> str:
    text = json.dumps(tables, sort_keys=True, ensure_ascii=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _read(conn: Connection) -> dict[str, list[dict[str, Any]]]:
    present = set(inspect(conn).get_table_names())
    meta = MetaData()
    meta.reflect(conn, only=[t for t in HISTORY if t in present])
    tables: dict[str, list[dict[str, Any]]] = {}
    for name in HISTORY:
        if name not in present:
            continue
        table = meta.tables[name]
        order = list(table.primary_key.columns) or list(table.columns)
        rows = conn.execute(select(table).order_by(*order))
        tables[name] = [{k: _value(v) for k, v in r._mapping.items()} for r in rows]
    return tables


async def snapshot(engine: AsyncEngine) -> Snapshot:
    async with engine.connect() as conn:
        tables = await conn.run_sync(_read)
    return Snapshot({t: len(rows) for t, rows in tables.items()}, _digest(tables), tables)


async def export(engine: AsyncEngine, dest: Path) -> Snapshot:
    """Write every history row to `dest`, a new file only its owner can read."""
    snap = await snapshot(engine)
    doc = {"format": FORMAT, "counts": snap.counts, "sha256": snap.sha256, "tables": snap.tables}
    with private_new_file(dest) as out:
        out.write(json.dumps(doc, ensure_ascii=True, indent=0).encode())
    return snap


def read_export(path: Path) -> str:
    """The digest of the export at `path`, once its rows are checked against it."""
    try:
        doc = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise HistoryError(f"{path}: cannot read an export ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise HistoryError(f"{path}: not an `ivr db export` file")
    if _digest(doc.get("tables") or {}) != doc.get("sha256"):
        raise HistoryError(f"{path}: its rows do not match its digest (altered or cut short)")
    return str(doc["sha256"])


async def check_discard(engine: AsyncEngine, export_file: Path | None) -> Snapshot:
    """Allow a downgrade: the history tables are empty, or `export_file` holds exactly them."""
    snap = await snapshot(engine)
    if not snap.rows:
        return snap
    if export_file is None:
        raise HistoryError(
            f"the downgrade would drop history ({snap.describe()}): export it first with "
            "`ivr db export --to FILE`, then pass `--discard-history FILE`"
        )
    if read_export(export_file) != snap.sha256:
        raise HistoryError(
            f"{export_file} is not an export of the database as it is now ({snap.describe()}): "
            "export again"
        )
    return snap
