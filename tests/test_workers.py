"""`ivr serve --workers N`: processes sharing one FastAGI port and one database."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
from pathlib import Path

from ivr.sim.fake_asterisk import CallerScript, Channel, FakeAsterisk
from tests.support.cli import ivr_env, run_ivr, serving
from tests.support.servers import free_port

CALLS = 60
# Open every day, all day: the decision does not depend on when the test runs.
ALWAYS_OPEN = (
    "[hours]\n"
    + "\n".join(f'{d} = ["00:00-24:00"]' for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun"))
    + "\npublic_holidays = false\nclosed_dates = []\n"
)


def _env(tmp_path: Path) -> dict[str, str]:
    cfg = tmp_path / "ivr.toml"
    cfg.write_text(f'data_dir = "{tmp_path / "data"}"\n{ALWAYS_OPEN}')
    env = ivr_env(tmp_path, IVR_CONFIG=str(cfg))
    assert run_ivr(["db", "upgrade"], env).returncode == 0
    return env


def _children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(c) for c in text.split()]


async def _drain(stream: asyncio.StreamReader | None) -> None:
    """Keep reading the workers' log so that a full pipe never blocks them."""
    assert stream is not None
    while await stream.readline():
        pass


async def test_two_workers_share_the_port_and_the_database(tmp_path: Path) -> None:
    env = _env(tmp_path)
    port = free_port()
    async with serving(env, port, "--workers", "2", listening=2) as proc:
        drain = asyncio.create_task(_drain(proc.stderr))
        workers = _children(proc.pid)
        assert len(workers) == 2
        fake = FakeAsterisk("127.0.0.1", port)
        records = await asyncio.gather(
            *(
                fake.call(
                    Channel(callerid=f"03{n:08d}", uniqueid=f"9.{n}"), CallerScript(digits=["1"])
                )
                for n in range(CALLS)
            )
        )
        assert all(r.variables["IVR_DECISION"] == "route" for r in records)
        ids = [r.variables["IVR_CALL_ID"] for r in records]
        # A call id starts with its process's random prefix: both workers took calls.
        assert len({i[:20] for i in ids}) == 2
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
        assert not any(Path(f"/proc/{w}").exists() for w in workers)
        await drain
    db = sqlite3.connect(tmp_path / "data" / "ivr.sqlite3")
    stored = {r[0] for r in db.execute("SELECT call_id FROM calls WHERE decision = 'route'")}
    db.close()
    assert stored == set(ids)


async def test_a_worker_that_dies_stops_the_others_with_an_error(tmp_path: Path) -> None:
    env = _env(tmp_path)
    async with serving(env, free_port(), "--workers", "2", listening=2) as proc:
        drain = asyncio.create_task(_drain(proc.stderr))
        first, second = _children(proc.pid)
        os.kill(first, signal.SIGKILL)
        assert await asyncio.wait_for(proc.wait(), 30) == 1
        assert not Path(f"/proc/{second}").exists()
        await drain
