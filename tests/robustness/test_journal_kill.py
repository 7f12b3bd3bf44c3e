"""Issue 26, finding 4: `kill -9` lost every call row still queued (5,716 of 5,716 during a
lock, 6 of 2,097 in normal running). Every write now reaches a local write-ahead file within
50 ms of being queued; the next start replays what the database did not get. Counted here:
calls answered before the kill, and their rows after the next start."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from ivr.sim.fake_asterisk import CallerScript, Channel, FakeAsterisk
from tests.support.cli import ivr_env, run_ivr, serving
from tests.support.servers import free_port

BOUND_S = 0.1  # the bound: at most the writes of the last 100 ms


def _stored(db: Path) -> dict[str, str | None]:
    with sqlite3.connect(db) as conn:
        return dict(conn.execute("SELECT call_id, decision FROM calls").fetchall())


async def _load(port: int, seconds: float) -> list[tuple[str, float]]:
    """Calls from 8 callers at once for `seconds`: (call id, when it was answered in full)."""
    fake = FakeAsterisk("127.0.0.1", port)
    done: list[tuple[str, float]] = []
    stop = time.monotonic() + seconds

    async def caller(n: int) -> None:
        i = 0
        while time.monotonic() < stop:
            i += 1
            channel = Channel(callerid=f"03{n:02d}{i:06d}", uniqueid=f"{n}.{i}")
            try:
                rec = await fake.call(channel, CallerScript(["1"]))
            except OSError:
                return  # the service is gone
            call_id = rec.variables.get("IVR_CALL_ID")
            if call_id is None or not rec.closed_by_server:
                return  # cut off by the kill: not answered in full, not counted
            done.append((call_id, time.monotonic()))

    await asyncio.gather(*(caller(n) for n in range(8)))
    return done


@pytest.mark.parametrize("locked", [False, True], ids=["running", "database-locked"])
async def test_kill_9_loses_at_most_the_last_100_ms(tmp_path: Path, locked: bool) -> None:
    env = ivr_env(tmp_path)
    assert run_ivr(["db", "upgrade"], env).returncode == 0
    db = tmp_path / "data" / "ivr.sqlite3"
    port = free_port()
    lock = sqlite3.connect(db, isolation_level=None)
    async with serving(env, port, drain=True) as proc:
        if locked:
            lock.execute("BEGIN IMMEDIATE")  # a long import or backup holds the write lock
        load = asyncio.create_task(_load(port, 3.0))
        await asyncio.sleep(2.0)
        os.killpg(proc.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        await proc.wait()
        done = await load  # the calls still running when it died fail: not counted
    if locked:
        lock.execute("ROLLBACK")
    lock.close()
    answered = [(c, t) for c, t in done if t <= killed_at]
    before = _stored(db)
    async with serving(env, port, drain=True) as proc:
        for _ in range(200):
            after = _stored(db)
            if all(c in after for c, t in answered if t < killed_at - BOUND_S):
                break
            await asyncio.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 20) == 0
    after = _stored(db)
    lost = [(c, round(killed_at - t, 3)) for c, t in answered if c not in after]
    early = [(c, ago) for c, ago in lost if ago > BOUND_S]
    undecided = [c for c, t in answered if t < killed_at - BOUND_S and after.get(c) is None]
    print(
        f"kill -9 ({'database locked' if locked else 'normal running'}): "
        f"{len(answered)} calls answered, {len(before)} rows before the next start, "
        f"{len(after)} after; lost {len(lost)} (all within {BOUND_S * 1000:.0f} ms of the kill)"
    )
    assert len(answered) > 100
    assert early == [] and undecided == []
    assert not [p for p in (tmp_path / "data" / "journal").iterdir() if p.suffix != ".wal"]
