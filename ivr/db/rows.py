"""A call's start and outcome as the journal writes them, and their rows for the `calls` table.

Kept apart from `ivr.db.calls` (the SQLAlchemy statements): every call builds one of each, and
the rows are spelled out field by field, cheaper than `dataclasses.asdict`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True)
class CallStart:
    call_id: str
    uniqueid: str
    linkedid: str
    caller_raw: str
    caller_name: str
    caller_e164: str | None
    caller_class: str
    dialled: str
    started_at: datetime
    channel: str | None = None


@dataclass(frozen=True)
class CallOutcome:
    decision: str | None
    reason: str | None
    route: str | None
    blocklist_entry_id: int | None
    recording_path: str | None
    ended_at: datetime | None
    end_reason: str | None
    duration_s: float | None = None
    limit_s: int | None = None


START_KEYS = tuple(f.name for f in fields(CallStart))
OUTCOME_KEYS = tuple(f.name for f in fields(CallOutcome))
_NO_OUTCOME: dict[str, Any] = dict.fromkeys(OUTCOME_KEYS)


def start_row(s: CallStart) -> dict[str, Any]:
    """The start's columns, and no outcome yet."""
    return {
        "call_id": s.call_id,
        "uniqueid": s.uniqueid,
        "linkedid": s.linkedid,
        "caller_raw": s.caller_raw,
        "caller_name": s.caller_name,
        "caller_e164": s.caller_e164,
        "caller_class": s.caller_class,
        "dialled": s.dialled,
        "started_at": s.started_at,
        "channel": s.channel,
        **_NO_OUTCOME,
    }


def add_outcome(row: dict[str, Any], o: CallOutcome) -> dict[str, Any]:
    """`row` with the outcome's columns set; returns `row`."""
    row["decision"] = o.decision
    row["reason"] = o.reason
    row["route"] = o.route
    row["blocklist_entry_id"] = o.blocklist_entry_id
    row["recording_path"] = o.recording_path
    row["ended_at"] = o.ended_at
    row["end_reason"] = o.end_reason
    row["duration_s"] = o.duration_s
    row["limit_s"] = o.limit_s
    return row


def merged_rows(
    starts: Sequence[CallStart], outcomes: Sequence[tuple[str, CallOutcome]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Rows to insert and outcomes to update (`b_call_id`: the call). An outcome whose call
    starts in the same batch goes into that row: one row write instead of two."""
    rows = [start_row(s) for s in starts]
    by_id = {row["call_id"]: row for row in rows}
    late: list[dict[str, Any]] = []
    for call_id, outcome in outcomes:
        row = by_id.get(call_id)
        if row is None:
            late.append(add_outcome({"b_call_id": call_id}, outcome))
        else:
            add_outcome(row, outcome)
    return rows, late


def stored(at: datetime) -> str:
    """A UTC datetime as SQLAlchemy stores it in SQLite: naive UTC text, which compares as
    text in time order."""
    if at.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    # The UTC text without its "+00:00" (26 characters for every year datetime allows).
    return at.astimezone(UTC).isoformat(" ", "microseconds")[:26]


def utc_text(at: datetime | None) -> str | None:
    """A `UtcDateTime` column's value for SQLite: what its two bind processors (the type's,
    then SQLite's DATETIME) give, in one compiled step."""
    return None if at is None else stored(at)


# A statement's parameters in order: key, the column's bind processor (or None), its default.
Order = Sequence[tuple[str, Callable[[Any], Any] | None, Any]]


def positional(row: dict[str, Any], order: Order) -> tuple[Any, ...]:
    """`row` as the driver's parameter tuple for a statement whose parameters are `order`."""
    out: list[Any] = []
    for key, process, default in order:
        value = row.get(key, default)
        out.append(value if process is None else process(value))
    return tuple(out)
