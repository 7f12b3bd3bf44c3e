"""Recordings in the spool and in storage, for the recording tests."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from ivr.core.review import Actor
from ivr.db import recordings as rec_repo
from ivr.sim.fake_asterisk import CallerScript, Channel
from tests.support.caps import hang_up
from tests.support.cli import ME
from tests.support.service import Service

ALICE = Actor("alice")


def storage_cfg(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    spool = tmp_path / "spool"
    spool.mkdir(exist_ok=True)
    return {
        "recording": {"spool_dir": str(spool)},
        "storage": {"scan_interval_s": 3600, "settle_s": 2, "idle_s": 600, **extra},
        "supervisors": {"alice": "supervisor", "bob": "supervisor"},
    }


def write_wav(path: Path, size: int = 48_000, seed: int = 1) -> bytes:
    data = b"RIFF" + hashlib.sha256(str(seed).encode()).digest() * (size // 32)
    path.write_bytes(data)
    return data


def age(path: Path, svc: Service, seconds: float) -> None:
    """Make the file look last written `seconds` before the service's clock."""
    t = svc.clock.now().timestamp() - seconds
    os.utime(path, (t, t))


def spool_failopen(svc: Service, count: int) -> dict[str, bytes]:
    """`count` finished fail-open recordings in the spool: name → bytes."""
    spool = Path(svc.cfg.recording.spool_dir)
    data = {}
    for n in range(count):
        p = spool / f"failopen-1795.{n}.wav"
        data[p.name] = write_wav(p, seed=n)
        age(p, svc, 1000)
    return data


async def routed_and_ended(svc: Service, talk: str = "300") -> str:
    rec = await svc.fake.call(Channel(uniqueid="1.1"), CallerScript(["1"]))
    call_id = rec.variables["IVR_CALL_ID"]
    await svc.app.journal.flush()
    await hang_up(svc, call_id, talk)
    return call_id


async def row(svc: Service, name: str) -> dict[str, Any]:
    async with svc.engine.connect() as conn:
        r = await rec_repo.get(conn, name)
    assert r is not None
    return r


def cli_env(svc: Service, toml: Path, extra: str = "") -> dict[str, str]:
    """The environment for `ivr` commands on `svc`'s database, spool and data folder, with this
    OS user as a supervisor; `extra` is more TOML."""
    toml.write_text(
        f'data_dir = "{svc.cfg.data_dir}"\n[database]\nurl = "{svc.cfg.database_url()}"\n'
        f'[recording]\nspool_dir = "{svc.cfg.recording.spool_dir}"\n{extra}'
        f'[supervisors]\n{ME} = "supervisor"\n'
    )
    return dict(os.environ, IVR_CONFIG=str(toml))
