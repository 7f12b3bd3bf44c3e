"""Hand-off to a real S3-compatible server (moto, started by the test), with outages and a
SIGKILL of `ivr serve` in the middle."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from ivr.db.engine import create_engine
from ivr.db.models import recordings
from tests.support.cli import IVR
from tests.support.recordings import storage_cfg, write_wav
from tests.support.s3 import CREDENTIALS, S3Server
from tests.support.servers import Gate, free_port

BUCKET = "recordings"


@pytest.fixture
async def s3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[S3Server]:
    server = S3Server(tmp_path)
    await server.start()
    for k, v in CREDENTIALS.items():
        monkeypatch.setenv(k, v)
    await asyncio.to_thread(server.client().create_bucket, Bucket=BUCKET)
    try:
        yield server
    finally:
        await server.stop()


def s3_cfg(tmp_path: Path, endpoint: str, **extra: Any) -> dict[str, Any]:
    cfg = storage_cfg(
        tmp_path,
        backend="s3",
        s3_endpoint_url=endpoint,
        s3_bucket=BUCKET,
        s3_prefix="site-a",
        timeout_s=2,
        **extra,
    )
    return cfg


def objects(server: S3Server) -> dict[str, bytes]:
    c = server.client()
    out: dict[str, bytes] = {}
    for page in c.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for o in page.get("Contents", []):
            out[o["Key"]] = c.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read()
    return out


async def test_store_verify_export_and_corruption_on_s3(
    make_service: Any, tmp_path: Path, s3: S3Server
) -> None:
    from tests.support.recordings import ALICE, spool_failopen

    svc = await make_service(s3_cfg(tmp_path, s3.url))
    spool = Path(svc.cfg.recording.spool_dir)
    data = spool_failopen(svc, 3)
    await svc.app.handoff.scan_once()
    assert list(spool.iterdir()) == []
    stored = await asyncio.to_thread(objects, s3)
    assert stored == {f"site-a/2026/11/24/{k}": v for k, v in data.items()}
    out = tmp_path / "exported.wav"
    await svc.app.recordings.export(ALICE, "failopen-1795.2.wav", "x.wav", out)
    assert out.read_bytes() == data["failopen-1795.2.wav"]
    # Someone overwrites an object in the bucket: verify names it.
    await asyncio.to_thread(
        s3.client().put_object,
        Bucket=BUCKET,
        Key="site-a/2026/11/24/failopen-1795.0.wav",
        Body=b"RIFF tampered",
    )
    bad = [c for c in await svc.app.recordings.verify() if not c.ok]
    assert [c.name for c in bad] == ["failopen-1795.0.wav"] and "13 bytes" in bad[0].problem


async def test_storage_outage_retries_then_gives_up_with_an_alert(
    make_service: Any, tmp_path: Path, s3: S3Server, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.support.recordings import age, row

    gate = Gate(s3.port)
    await gate.start()
    gate.open = False
    svc = await make_service(
        s3_cfg(tmp_path, f"http://127.0.0.1:{gate.port}", retry_initial_s=60, max_attempts=3)
    )
    wav = Path(svc.cfg.recording.spool_dir) / "failopen-1795.9.wav"
    write_wav(wav)
    age(wav, svc, 1000)
    await svc.app.handoff.scan_once()
    r = await row(svc, wav.name)
    assert (r["state"], r["attempts"]) == ("spooled", 1) and r["last_error"]
    assert (r["next_attempt_at"] - svc.clock.now()).total_seconds() == 60
    await svc.app.handoff.scan_once()  # not due yet: nothing happens
    assert (await row(svc, wav.name))["attempts"] == 1
    for step in (120, 240):  # backoff doubles
        svc.clock.at += __import__("datetime").timedelta(seconds=step)
        await svc.app.handoff.scan_once()
    r = await row(svc, wav.name)
    assert (r["state"], r["attempts"]) == ("failed", 3)
    assert wav.exists()  # a failed recording stays in the spool
    assert svc.app.handoff.failed == 1
    [alert] = [r.getMessage() for r in caplog.records if r.name == "ivr.alerts"]
    assert alert.startswith("alert recording-failed {") and wav.name in alert
    assert "after 3 attempts" in alert
    await gate.close()


CONFIG = """
data_dir = "{data}"
[recording]
spool_dir = "{spool}"
[storage]
backend = "s3"
s3_endpoint_url = "http://127.0.0.1:{gate}"
s3_bucket = "{bucket}"
s3_prefix = "site-a"
timeout_s = 2
scan_interval_s = 0.1
settle_s = 0
idle_s = 1
retry_initial_s = 0.2
retry_max_s = 1
max_attempts = 1000
"""


async def test_200_recordings_survive_an_s3_outage_and_a_sigkill(
    tmp_path: Path, s3: S3Server
) -> None:
    gate = Gate(s3.port)
    await gate.start()
    spool = tmp_path / "spool"
    spool.mkdir()
    cfg = tmp_path / "ivr.toml"
    cfg.write_text(
        CONFIG.format(data=tmp_path / "data", spool=spool, gate=gate.port, bucket=BUCKET)
    )
    env = dict(os.environ, IVR_CONFIG=str(cfg), **CREDENTIALS)
    env.pop("IVR_DATA_DIR", None)
    proc = await asyncio.create_subprocess_exec(IVR, "db", "upgrade", env=env)
    assert await proc.wait() == 0
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'data' / 'ivr.sqlite3'}")
    originals: dict[str, bytes] = {}

    def spool_files(first: int, last: int) -> None:
        for n in range(first, last):
            p = spool / f"failopen-1795.{n}.wav"
            originals[p.name] = write_wav(p, size=16_000 + 97 * n, seed=n)
            os.utime(p, (p.stat().st_atime - 30, p.stat().st_mtime - 30))  # finished writing

    async def complete() -> int:
        async with engine.connect() as conn:
            q = select(func.count()).select_from(recordings).where(recordings.c.state == "complete")
            return int((await conn.execute(q)).scalar() or 0)

    async def until(cond: Any, timeout: float = 60) -> None:
        async def wait() -> None:
            while not await cond():
                await asyncio.sleep(0.05)

        await asyncio.wait_for(wait(), timeout)

    async def start() -> asyncio.subprocess.Process:
        log = (tmp_path / "serve.log").open("ab")
        return await asyncio.create_subprocess_exec(
            IVR, "serve", "--agi-listen", f"127.0.0.1:{free_port()}", env=env, stderr=log
        )

    serve = await start()
    try:
        spool_files(0, 150)

        async def some() -> bool:
            return await complete() >= 20

        await until(some)
        gate.open = False  # S3 goes away mid-run
        gate.cut()
        await asyncio.sleep(0.5)
        serve.send_signal(signal.SIGKILL)  # and the service is killed without warning
        await serve.wait()
        async with engine.connect() as conn:
            grouped = await conn.execute(
                select(recordings.c.state, func.count()).group_by(recordings.c.state)
            )
            states = {state: n for state, n in grouped}
            failing = (
                await conn.execute(select(func.count()).where(recordings.c.last_error.is_not(None)))
            ).scalar()
        # Killed with work half done: some stored, some waiting on the dead storage.
        assert 20 <= states.get("complete", 0) < 150 and states.get("spooled", 0) > 0
        assert failing
        spool_files(150, 200)  # calls went on meanwhile
        serve = await start()
        await asyncio.sleep(1.0)  # it retries against the dead storage
        assert await complete() < 200
        gate.open = True

        async def all_done() -> bool:
            return await complete() == 200

        await until(all_done, timeout=120)
        async with engine.connect() as conn:
            rows = (await conn.execute(select(recordings))).all()
        assert len(rows) == 200 and {r.name for r in rows} == set(originals)
        for r in rows:
            assert r.sha256 == hashlib.sha256(originals[r.name]).hexdigest()
        stored = await asyncio.to_thread(objects, s3)
        assert len(stored) == 200  # none lost, none duplicated
        assert {k.rsplit("/", 1)[1]: v for k, v in stored.items()} == originals
        assert list(spool.iterdir()) == []  # the spool is empty
        log = (tmp_path / "serve.log").read_text()
        assert "retry in" in log  # the outage was seen and retried
    finally:
        if serve.returncode is None:
            serve.send_signal(signal.SIGTERM)
            await asyncio.wait_for(serve.wait(), 20)
        await engine.dispose()
        await gate.close()
