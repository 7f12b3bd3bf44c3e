"""The `calls` table: one row per inbound call, rejected ones included."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Float,
    Integer,
    Select,
    String,
    bindparam,
    case,
    func,
    insert,
    literal,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.schema import ColumnDefault

from ivr.core.blocklist import BlockEntry, EntryStatus
from ivr.core.caps import Usage, ended_at_cap
from ivr.core.seals import Seals
from ivr.db import recordings as recordings_repo
from ivr.db.models import UtcDateTime, blocklist_entries, calls, recordings
from ivr.db.rows import (
    OUTCOME_KEYS,
    START_KEYS,
    CallOutcome,
    CallStart,
    merged_rows,
    positional,
    utc_text,
)

ROUTED = "route"


@dataclass(frozen=True)
class TalkReport:
    """A call's talk time as Asterisk reported it; identifies the call by id or channel."""

    talk_s: float
    source: str  # hangup-handler | ami-bridge
    at: datetime
    call_id: str | None = None
    uniqueid: str | None = None
    end_reason: str | None = None  # None: cap-reached or completed, from the talk time


@dataclass(frozen=True)
class Closed:
    """A channel hung up (AMI Hangup): the call ended, its talk time may come later."""

    uniqueid: str
    at: datetime
    end_reason: str


# The journal's writes are synchronous: on the journal's own connection (SQLite) or through
# `AsyncConnection.run_sync` (PostgreSQL), one call for a whole batch.


_UPDATE_OUTCOME = (
    update(calls)
    .where(calls.c.call_id == bindparam("b_call_id"))
    .values({k: bindparam(k) for k in OUTCOME_KEYS})
)


def idempotent_insert(dialect: str) -> Any:
    """INSERT of call rows for writes replayed after a kill (a write-ahead file repeats writes
    that were stored): a row already there keeps its values, and takes the outcome a replayed
    row carries when it has none yet. Only replays use it; new calls keep the plain insert."""
    stmt = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(calls)
    return stmt.on_conflict_do_update(
        index_elements=[calls.c.call_id],
        set_={k: func.coalesce(calls.c[k], stmt.excluded[k]) for k in OUTCOME_KEYS},
    )


def store_calls(
    conn: Connection,
    starts: Sequence[CallStart],
    outcomes: Sequence[tuple[str, CallOutcome]],
    *,
    replayed: bool = False,
) -> None:
    """Insert the calls' rows and write the outcomes, one executemany each; an outcome whose
    row is missing is left alone. `replayed`: the rows may be there already."""
    rows, late = merged_rows(starts, outcomes)
    if rows:
        stmt = idempotent_insert(conn.dialect.name) if replayed else insert(calls)
        conn.execute(stmt, rows)
    if late:
        conn.execute(_UPDATE_OUTCOME, late)


Statement = tuple[str, list[tuple[Any, ...]]]  # driver SQL and its parameter rows


_ROW_KEYS = frozenset([*START_KEYS, *OUTCOME_KEYS, "b_call_id"])


class PositionalCalls:
    """`store_calls` as driver statements, for the SQLite journal.

    SQLAlchemy compiles both statements once, and the rows are built as plain tuples through
    the columns' own bind processors, so a batch is the driver's executemany and little else.
    """

    def __init__(self, dialect: Dialect) -> None:
        keys = [*START_KEYS, *OUTCOME_KEYS]
        self._insert = self._prepare(insert(calls).values({k: bindparam(k) for k in keys}), dialect)
        self._update = self._prepare(_UPDATE_OUTCOME, dialect)

    @staticmethod
    def _prepare(stmt: Any, dialect: Dialect) -> tuple[str, list[tuple[str, Any, Any]]]:
        """The statement's SQL, and for each parameter: its key, the column's bind processor,
        and the column's own default (SQLAlchemy adds those, such as `legal_hold`)."""
        compiled = stmt.compile(dialect=dialect)
        assert compiled.positiontup is not None  # SQLite's paramstyle is positional
        order = []
        for key in compiled.positiontup:
            column = calls.c.call_id if key == "b_call_id" else calls.c[key]
            default = column.default.arg if isinstance(column.default, ColumnDefault) else None
            if isinstance(column.type, UtcDateTime) and dialect.name == "sqlite":
                process: Any = utc_text  # the same text as its processors, compiled
            else:
                process = column.type.dialect_impl(dialect).bind_processor(dialect)
            if key not in _ROW_KEYS and process is not None:
                # No row carries it (`legal_hold`): its default, processed once here.
                default, process = process(default), None
            order.append((key, process, default))
        return compiled.string, order

    def statements(
        self, starts: Sequence[CallStart], outcomes: Sequence[tuple[str, CallOutcome]]
    ) -> list[Statement]:
        rows, late = merged_rows(starts, outcomes)
        out: list[Statement] = []
        for (sql, order), params in ((self._insert, rows), (self._update, late)):
            if params:
                out.append((sql, [positional(r, order) for r in params]))
        return out


def _candidates(patterns: Any) -> Select[Any]:
    t = blocklist_entries
    return select(t.c.id, t.c.pattern, t.c.is_prefix, t.c.status, t.c.expires_at, t.c.action).where(
        t.c.pattern.in_(patterns), t.c.status == EntryStatus.APPROVED.value
    )


def block_entry(r: Any) -> BlockEntry:
    """The read side of a `blocklist_entries` row (any row with those columns)."""
    return BlockEntry(
        id=r.id,
        pattern=r.pattern,
        is_prefix=bool(r.is_prefix),
        status=EntryStatus(r.status),
        expires_at=r.expires_at,
        action=r.action,
    )


async def blocklist_candidates(conn: AsyncConnection, patterns: Sequence[str]) -> list[BlockEntry]:
    """Approved entries whose pattern is one of `patterns` (expiry is judged by the core)."""
    if not patterns:
        return []
    return [block_entry(r) for r in await conn.execute(_candidates(list(patterns)))]


async def get_call(conn: AsyncConnection, call_id: str) -> dict[str, object] | None:
    row = (await conn.execute(select(calls).where(calls.c.call_id == call_id))).first()
    return dict(row._mapping) if row else None


def _by(call_id: str | None, uniqueid: str | None) -> Any:
    if call_id:
        return calls.c.call_id == call_id
    if uniqueid:
        return calls.c.uniqueid == uniqueid
    raise ValueError("a talk report needs a call id or a uniqueid")


def account(conn: Connection, r: TalkReport, seal: Callable[[str, float], str]) -> str | None:
    """Record a routed call's talk time once, sealed (`seal(call_id, talk_s)`); the call id
    when this report counted.

    The conditional UPDATE (`talk_s IS NULL`) makes a repeated or concurrent report a no-op on
    every backend, so the hang-up handler and the AMI events may all report the same call.
    """
    c = calls.c
    row = conn.execute(
        select(c.call_id, c.started_at, c.ended_at, c.end_reason, c.limit_s)
        .where(_by(r.call_id, r.uniqueid), c.decision == ROUTED, c.talk_s.is_(None))
        .order_by(c.started_at.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    ended = row.ended_at or r.at
    reason = row.end_reason or r.end_reason
    if reason is None:
        reason = "cap-reached" if ended_at_cap(r.talk_s, row.limit_s) else "completed"
    talk = max(0.0, r.talk_s)
    res = conn.execute(
        update(calls)
        .where(c.call_id == row.call_id, c.talk_s.is_(None))
        .values(
            talk_s=talk,
            seal=seal(str(row.call_id), talk),
            talk_source=r.source,
            ended_at=ended,
            end_reason=reason,
            duration_s=max(0.0, (ended - row.started_at).total_seconds()),
        )
    )
    return str(row.call_id) if res.rowcount == 1 else None


def close(conn: Connection, e: Closed) -> int:
    """Mark a routed call ended (first report wins); talk time is left to `account`."""
    c = calls.c
    res = conn.execute(
        update(calls)
        .where(c.uniqueid == e.uniqueid, c.decision == ROUTED, c.ended_at.is_(None))
        .values(ended_at=e.at, end_reason=func.coalesce(c.end_reason, e.end_reason))
    )
    return int(res.rowcount or 0)


UsageOf = tuple[str, datetime, datetime, str]  # e164, day start, window start, call to leave out


def _usage(*leading: Any) -> Select[Any]:
    """One row: `leading` columns, today's talk time, and the calls within the repeat window.

    Parameters: `e164`, `day`, `window`, `since` (the earlier of the two), `exclude`.
    """
    c = calls.c
    day, window = bindparam("day", type_=UtcDateTime()), bindparam("window", type_=UtcDateTime())
    return select(
        *leading,
        func.coalesce(func.sum(case((c.started_at >= day, c.talk_s), else_=0.0)), 0.0),
        func.count(case((c.started_at >= window, 1))),
    ).where(
        c.caller_e164 == bindparam("e164"),
        c.started_at >= bindparam("since", type_=UtcDateTime()),
        c.call_id != bindparam("exclude"),
    )


def _usage_params(usage_of: UsageOf) -> dict[str, Any]:
    e164, day_start, window_start, exclude = usage_of
    return {
        "e164": e164,
        "day": day_start,
        "window": window_start,
        "since": min(day_start, window_start),
        "exclude": exclude,
    }


_USAGE = _usage()
# Built once (statement building costs more than running it): the entry columns are NULL in
# the usage row, and `id IS NULL` tells that row apart.
_FACTS = union_all(
    _candidates(bindparam("patterns", expanding=True)).add_columns(
        literal(None, Float).label("talk"), literal(None, Integer).label("n")
    ),
    _usage(
        literal(None, Integer),
        literal(None, String),
        literal(None, Boolean),
        literal(None, String),
        literal(None, UtcDateTime()),
        literal(None, String),
    ),
)


async def caller_usage(
    conn: AsyncConnection, e164: str, day_start: datetime, window_start: datetime, exclude: str
) -> Usage:
    """Today's talk time and the calls within the repeat window, other than call `exclude`."""
    params = _usage_params((e164, day_start, window_start, exclude))
    row = (await conn.execute(_USAGE, params)).one()
    return Usage(float(row[0] or 0.0), int(row[1] or 0))


async def screening_facts(
    conn: AsyncConnection,
    patterns: Sequence[str],
    usage_of: UsageOf | None,
) -> tuple[list[BlockEntry], Usage | None]:
    """`blocklist_candidates` and `caller_usage` in one statement: one round trip per call.

    `usage_of` is (e164, day start, window start, call id to leave out), or None to skip usage.
    """
    if usage_of is None or not patterns:
        entries = await blocklist_candidates(conn, patterns)
        if usage_of is None:
            return entries, None
        return entries, await caller_usage(conn, *usage_of)
    found: list[BlockEntry] = []
    used = Usage(0.0, 0)
    params = {"patterns": list(patterns), **_usage_params(usage_of)}
    for r in await conn.execute(_FACTS, params):
        if r.id is None:
            used = Usage(float(r.talk or 0.0), int(r.n or 0))
        else:
            found.append(block_entry(r))
    return found, used


async def open_calls(conn: AsyncConnection, since: datetime) -> list[dict[str, Any]]:
    """Routed calls started since `since` with no end recorded: the calls in progress."""
    c = calls.c
    rows = await conn.execute(
        select(calls)
        .where(c.decision == ROUTED, c.ended_at.is_(None), c.started_at >= since)
        .order_by(c.started_at)
    )
    return [dict(r._mapping) for r in rows]


async def caller_calls(
    conn: AsyncConnection, e164: str, since: datetime, limit: int = 50
) -> list[dict[str, Any]]:
    c = calls.c
    rows = await conn.execute(
        select(calls)
        .where(c.caller_e164 == e164, c.started_at >= since)
        .order_by(c.started_at.desc())
        .limit(limit)
    )
    return [dict(r._mapping) for r in rows]


async def hold(
    conn: AsyncConnection, call_id: str, note: str, end_reason: str | None, seals: Seals
) -> int:
    """Put a call (and so its recording) on legal hold; optionally record why it ended."""
    values: dict[str, Any] = {"legal_hold": True, "hold_note": note}
    if end_reason:
        values["end_reason"] = end_reason
    res = await conn.execute(update(calls).where(calls.c.call_id == call_id).values(**values))
    # A recording already handed off carries the hold too (ivr.recordings reads it at adoption).
    await conn.execute(
        update(recordings)
        .where(recordings.c.call_id == call_id)
        .values(legal_hold=True, hold_note=note)
    )
    await recordings_repo.reseal(conn, seals, recordings.c.call_id == call_id)
    return int(res.rowcount or 0)
