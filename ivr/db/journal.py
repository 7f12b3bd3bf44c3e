"""The call journal: every `calls` write goes through one writer task, in batches.

Calls never wait for a write, and while the database is away the writes are kept and retried
with backoff instead of being lost.

A batch is one transaction. On SQLite it runs on the event loop's own thread, on a synchronous
connection that never waits: a batch of a few dozen calls is well under a millisecond of SQL,
while handing it to a thread cost more than that in GIL hand-overs, which stall the loop (and
through aiosqlite each statement, the commit and the pool's reset would each be a thread hop).
A lock held by another writer (the CLI, a backup) is `SQLITE_BUSY` at once, and the batch is
tried again a few milliseconds later, quietly until `busy_wait_s`, as a busy timeout would but
without holding up the calls. The WAL is checkpointed in the journal's thread, since that waits
for the disk. On PostgreSQL a batch runs through `AsyncConnection.run_sync`.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from ivr.core.seals import Seals
from ivr.db import spill, wal
from ivr.db.calls import Closed, PositionalCalls, TalkReport, account, close, store_calls
from ivr.db.engine import SQLITE_BUSY_TIMEOUT_MS, checkpoint_wal, is_busy, sqlite_writer_engine
from ivr.db.rows import CallOutcome, CallStart
from ivr.db.transient import is_transient
from ivr.db.wal import WriteAhead

log = logging.getLogger("ivr.journal")

BUSY_RETRY_S = 0.005
BUSY_RETRY_MAX_S = 0.1


_Outcome = spill.Outcome
_Op = spill.Op


class CallJournal:
    """Queue of call writes applied in order by `run()`; bounded, with a drop counter."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        max_pending: int = 200_000,
        batch_size: int = 500,
        retry_initial_s: float = 0.2,
        retry_max_s: float = 10.0,
        linger_s: float = 0.05,
        busy_wait_s: float = SQLITE_BUSY_TIMEOUT_MS / 1000,
        checkpoint_every_s: float = 1.0,
        spill_dir: Path | None = None,
        seals: Seals,
    ) -> None:
        """`spill_dir`: where writes not stored by `close` are kept for the next start;
        `seals`: the talk time of each call is sealed as it is stored."""
        self._engine = engine
        self._seal = seals.call
        self._writer = sqlite_writer_engine(engine.url.render_as_string(hide_password=False))
        self._pool = (
            ThreadPoolExecutor(1, thread_name_prefix="ivr-journal") if self._writer else None
        )
        self._positional = PositionalCalls(self._writer.dialect) if self._writer else None
        self._busy_wait = busy_wait_s
        self._checkpoint_every = checkpoint_every_s
        self._checkpointing: asyncio.Future[None] | None = None
        self._checkpointed_at = 0.0
        self._pending: deque[_Op] = deque()
        self._max_pending = max_pending
        self._batch_size = batch_size
        self._retry_initial = retry_initial_s
        self._retry_max = retry_max_s
        self._linger = linger_s
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._closing = False
        self.written = 0
        self.dropped = 0
        self.failures = 0
        self._spill_dir = spill_dir
        self._wal = WriteAhead(spill_dir) if spill_dir is not None else None
        self._abandoned = False
        self._replaying: tuple[int, list[Path]] = (0, [])  # writes left to store, their files

    @property
    def backlog(self) -> int:
        return len(self._pending)

    def record_start(self, start: CallStart) -> None:
        self._put(start)

    def record_outcome(self, call_id: str, outcome: CallOutcome) -> None:
        self._put(_Outcome(call_id, outcome))

    def record_talk(self, report: TalkReport) -> None:
        """Talk time from the hang-up handler or AMI; counted once per call (see `account`)."""
        self._put(report)

    def record_closed(self, closed: Closed) -> None:
        self._put(closed)

    def _put(self, op: _Op) -> None:
        if len(self._pending) >= self._max_pending:
            self.dropped += 1
            log.error(
                "call journal full (%d writes pending): a call write was dropped",
                len(self._pending),
            )
            return
        self._pending.append(op)
        if self._wal is not None:
            self._wal.append(op)
        if len(self._pending) == 1:  # else the writer is already awake, and flush() waits
            self._idle.clear()
            self._wake.set()

    async def flush(self, timeout: float = 10.0) -> None:
        """Wait until every queued write is in the database."""
        await asyncio.wait_for(self._idle.wait(), timeout)

    async def close(self, timeout: float = 10.0) -> None:
        """Stop after writing what is queued (or after `timeout`, saying how much was left)."""
        self._closing = True
        self._wake.set()
        try:
            await self.flush(timeout)
        except TimeoutError:
            self._abandoned = True
            if self._spill() and self._wal is not None:
                self._wal.close()  # the spill file holds every write not stored
            return  # the writer may still be busy: the process is ending, leave it be
        if self._wal is not None:
            self._wal.close()
        if self._writer is not None:
            self._writer.dispose()
        if self._checkpointing is not None:
            await asyncio.wait([self._checkpointing], timeout=timeout)
        if self._pool is not None:
            self._pool.shutdown(wait=False)

    def _spill(self) -> bool:
        """Write what is not stored to a spill file; whether it is on disk now."""
        left = list(self._pending)
        if self._spill_dir is None:
            log.error("call journal closed with %d writes not stored", len(left))
            return False
        try:
            path = spill.write(self._spill_dir, left)
        except OSError as exc:
            log.error("call journal: %d writes not stored, and not spilled: %r", len(left), exc)
            return False
        log.error(
            "call journal: %d writes not stored; kept in %s for the next start", len(left), path
        )
        return True

    def replay(self) -> int:
        """Queue what an earlier run spilled, ahead of any new write; its files go once it is
        stored. How many writes were queued."""
        if self._spill_dir is None:
            return 0
        paths, ops = wal.claim(self._spill_dir)
        if not ops:
            for path in paths:
                path.unlink(missing_ok=True)
            return 0
        self._pending.extendleft(reversed(ops))
        self._replaying = (len(ops), paths)
        self._idle.clear()
        self._wake.set()
        log.warning("call journal: replaying %d writes kept at the last stop", len(ops))
        return len(ops)

    def _stored(self, n: int) -> None:
        left, paths = self._replaying
        if left:
            done = min(left, n)
            n -= done
            left -= done
            self._replaying = (left, paths)
            if not left:
                for path in paths:
                    path.unlink(missing_ok=True)
                log.info("call journal: the writes kept at the last stop are stored")
        if n and self._wal is not None:
            self._wal.stored(n)

    def _maybe_checkpoint(self, loop: asyncio.AbstractEventLoop) -> None:
        """At most one checkpoint a `checkpoint_every_s`, in the journal's thread."""
        if self._pool is None or self._writer is None:
            return
        if self._checkpointing is not None and not self._checkpointing.done():
            return
        now = loop.time()
        if now - self._checkpointed_at < self._checkpoint_every:
            return
        self._checkpointed_at = now
        path = self._writer.url.database
        assert path is not None
        self._checkpointing = loop.run_in_executor(self._pool, self._checkpoint, path)

    @staticmethod
    def _checkpoint(path: str) -> None:
        try:
            busy, _, _ = checkpoint_wal(path)
        except sqlite3.Error as exc:
            log.warning("call journal: WAL checkpoint failed, will retry: %r", exc)
            return
        if busy:
            log.debug("call journal: WAL checkpoint could not finish (readers); will retry")

    async def run(self) -> None:
        """The writer loop; run it as a task for the life of the service."""
        loop = asyncio.get_running_loop()
        delay = self._retry_initial
        busy_since: float | None = None
        busy_delay = BUSY_RETRY_S
        while True:
            if not self._pending:
                self._idle.set()
                if self._closing:
                    return
                await self._wake.wait()
                self._wake.clear()
                if not self._closing:
                    # Gather some milliseconds of writes into one transaction: a commit per
                    # write would cost more CPU than the calls themselves at low load, and the
                    # pages every insert touches (the ends of the time-ordered indexes) are
                    # written once a commit. 50 ms rather than 10: 11 us less a call.
                    await asyncio.sleep(self._linger)
                continue
            batch = [self._pending[i] for i in range(min(self._batch_size, len(self._pending)))]
            try:
                await self._store(batch)
            except Exception as exc:
                if not is_transient(exc):
                    raise
                if is_busy(exc):
                    if busy_since is None:
                        busy_since, busy_delay = loop.time(), BUSY_RETRY_S
                    if loop.time() - busy_since < self._busy_wait:
                        # Another writer's lock, usually free within milliseconds; backing off
                        # as SQLite's own busy handler does keeps a long lock cheap to wait out.
                        await asyncio.sleep(busy_delay)
                        busy_delay = min(busy_delay * 2, BUSY_RETRY_MAX_S)
                        continue
                busy_since = None
                self.failures += 1
                log.warning(
                    "call journal: database unavailable (%r); retrying in %.1fs", exc, delay
                )
                if self._abandoned:  # `close` ran out of time and spilled what is left
                    return
                # Closing too: keep trying until `close`'s deadline, then it spills the rest.
                await asyncio.sleep(min(delay, 1.0) if self._closing else delay)
                delay = min(delay * 2, self._retry_max)
                continue
            for _ in batch:
                self._pending.popleft()
            self.written += len(batch)
            self._stored(len(batch))
            delay = self._retry_initial
            busy_since = None
            self._maybe_checkpoint(loop)

    async def _store(self, batch: list[_Op]) -> None:
        try:
            await self._apply(batch)
        except SQLAlchemyError as exc:
            if is_transient(exc):
                raise
            await self._apply_one_by_one(batch)

    async def _apply(self, batch: list[_Op]) -> None:
        """One transaction (see the module's docstring)."""
        runs = _runs(batch)
        # Writes replayed after a kill may be stored already: the slower idempotent insert.
        store = _store_replayed if self._replaying[0] else None
        if self._writer is not None:
            with self._writer.begin() as conn:
                _apply_runs(conn, runs, self._seal, store or self._store_positional)
        else:
            async with self._engine.begin() as conn:
                await conn.run_sync(_apply_runs, runs, self._seal, store or store_calls)

    def _store_positional(
        self, conn: Connection, starts: list[CallStart], outcomes: list[tuple[str, CallOutcome]]
    ) -> None:
        """`store_calls` as driver tuples (see `PositionalCalls`)."""
        assert self._positional is not None
        for sql, rows in self._positional.statements(starts, outcomes):
            conn.exec_driver_sql(sql, rows)

    async def _apply_one_by_one(self, batch: list[_Op]) -> None:
        """A batch with a bad write: store the good ones, log and skip the bad one."""
        for op in batch:
            try:
                await self._apply([op])
            except SQLAlchemyError as exc:
                if is_transient(exc):
                    raise
                self.dropped += 1
                log.error("call journal: write refused by the database, skipped: %r", exc)


_Run = tuple[list[CallStart], list[tuple[str, CallOutcome]]]
Sealer = Callable[[str, float], str]
_Store = Callable[[Connection, list[CallStart], list[tuple[str, CallOutcome]]], None]


def _runs(batch: list[_Op]) -> list[_Run | TalkReport | Closed]:
    """The batch as runs of call starts and outcomes, split at each talk report or hang-up.

    A talk report or hang-up may depend on an outcome before it, so a run ends there. Within a
    run every start is inserted before (or with) any outcome, which keeps each call's own
    order: its outcome is always queued after its start.
    """
    out: list[_Run | TalkReport | Closed] = []
    starts: list[CallStart] = []
    outcomes: list[tuple[str, CallOutcome]] = []
    for op in batch:
        if isinstance(op, CallStart):
            starts.append(op)
        elif isinstance(op, _Outcome):
            outcomes.append((op.call_id, op.outcome))
        else:
            if starts or outcomes:
                out.append((starts, outcomes))
                starts, outcomes = [], []
            out.append(op)
    if starts or outcomes:
        out.append((starts, outcomes))
    return out


def _store_replayed(
    conn: Connection, starts: list[CallStart], outcomes: list[tuple[str, CallOutcome]]
) -> None:
    store_calls(conn, starts, outcomes, replayed=True)


def _apply_runs(
    conn: Connection,
    runs: list[_Run | TalkReport | Closed],
    seal: Sealer,
    store: _Store = store_calls,
) -> None:
    for run in runs:
        if isinstance(run, tuple):
            store(conn, *run)
        else:
            _apply_one(conn, run, seal)


def _apply_one(conn: Connection, op: TalkReport | Closed, seal: Sealer) -> None:
    if isinstance(op, TalkReport):
        counted = account(conn, op, seal)
        log.info(
            "talk %.0f s from %s for %s: %s",
            op.talk_s,
            op.source,
            op.call_id or f"uniqueid {op.uniqueid}",
            f"counted for call {counted}" if counted else "already counted or none",
        )
    else:
        close(conn, op)
