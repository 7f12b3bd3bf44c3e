"""Two `ivr serve` processes on one PostgreSQL database, both on one AMI: they agree on usage."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from ivr.db.calls import get_call
from ivr.db.engine import create_engine
from ivr.sim.fake_ami import FakeAmi
from ivr.sim.fake_asterisk import CallerScript, Channel, FakeAsterisk
from tests.support.cli import IVR
from tests.support.servers import free_port
from tests.support.service import token_for

CONFIG = """
data_dir = "{data}"
log_level = "info"
[database]
url = "{url}"
[hours]
mon = ["00:00-24:00"]
tue = ["00:00-24:00"]
wed = ["00:00-24:00"]
thu = ["00:00-24:00"]
fri = ["00:00-24:00"]
sat = ["00:00-24:00"]
sun = ["00:00-24:00"]
public_holidays = false
closed_dates = []
[caps]
per_call_minutes = 60
daily_budget_minutes = 60
repeat_threshold = 0
[ami]
host = "127.0.0.1"
port = {ami_port}
cdr_grace_s = 0
"""


class Serve:
    def __init__(self, proc: asyncio.subprocess.Process, log: Path, port: int) -> None:
        self.proc, self.log, self.port = proc, log, port
        self.fake = FakeAsterisk("127.0.0.1", port)

    async def logged(self, needle: str, count: int = 1, timeout: float = 15) -> None:
        async def wait() -> None:
            while self.log.read_text(errors="replace").count(needle) < count:
                await asyncio.sleep(0.02)

        await asyncio.wait_for(wait(), timeout)


@contextlib.asynccontextmanager
async def serve(env: dict[str, str], tmp: Path, name: str) -> AsyncIterator[Serve]:
    port = free_port()
    log = tmp / f"{name}.log"
    with log.open("wb") as fh:
        # Two services on one data folder: each its own API socket.
        env = dict(env, IVR_API_SOCKET=str(tmp / f"{name}.sock"))
        proc = await asyncio.create_subprocess_exec(
            IVR, "serve", "--agi-listen", f"127.0.0.1:{port}", env=env, stderr=fh
        )
    s = Serve(proc, log, port)
    try:
        await s.logged("FastAGI listening")
        await s.logged("AMI logged in")
        yield s
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 15)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def test_two_serve_processes_on_one_postgresql_agree(tmp_path: Path, pg_url: str) -> None:
    ami = FakeAmi("ivr-guard", "s3cret")
    await ami.start()
    cfg = tmp_path / "ivr.toml"
    cfg.write_text(CONFIG.format(data=tmp_path / "data", url=pg_url, ami_port=ami.port))
    env = dict(os.environ, IVR_CONFIG=str(cfg), IVR_AMI_SECRET="s3cret")
    env.pop("IVR_DATA_DIR", None)
    engine = create_engine(pg_url)

    async def row(call_id: str) -> dict[str, Any]:
        async with engine.connect() as conn:
            r = await get_call(conn, call_id)
        assert r is not None
        return r

    async def settled(call_id: str, key: str) -> dict[str, Any]:
        for _ in range(500):
            with contextlib.suppress(AssertionError):
                r = await row(call_id)
                if r[key] is not None:
                    return r
            await asyncio.sleep(0.02)
        raise AssertionError(f"{call_id}: {key} never set")

    async def call(s: Serve, uid: str) -> dict[str, str]:
        rec = await s.fake.call(
            Channel(callerid="06-1234-5678", uniqueid=uid), CallerScript(digits=["1"])
        )
        return rec.variables

    try:
        async with serve(env, tmp_path, "a") as a, serve(env, tmp_path, "b") as b:
            first = await call(a, "1795400000.1")
            assert first["IVR_LIMIT_MS"] == "3600000"
            call_id = first["IVR_CALL_ID"]
            await settled(call_id, "decision")
            # Both processes get the hang-up report, at once (AMI's report and the handler's
            # in one process: test_caps).
            token = token_for(tmp_path / "data", call_id)
            hangup = Channel(script="hangup", args=(call_id, token, "1200", "ANSWER"))
            await asyncio.gather(a.fake.call(hangup), b.fake.call(hangup))
            for s in (a, b):
                await s.logged("from hangup-handler for " + call_id)
            r = await settled(call_id, "talk_s")
            assert r["talk_s"] == 1200
            left = 3600 - int(r["talk_s"])
            counted = sum(s.log.read_text().count(f"counted for call {call_id}") for s in (a, b))
            assert counted == 1  # two reports, one counted
            # The next call gets the same remaining budget whichever process takes it.
            second, third = await asyncio.gather(call(a, "1795400000.2"), call(b, "1795400000.3"))
            assert second["IVR_LIMIT_MS"] == third["IVR_LIMIT_MS"] == str(left * 1000)
    finally:
        await engine.dispose()
        await ami.close()
