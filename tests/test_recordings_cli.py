"""`ivr recordings ...` as a subprocess on a database the service filled."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from tests.support.cli import ME, run_ivr
from tests.support.recordings import cli_env, spool_failopen, storage_cfg
from tests.support.service import Service

FIRST = "failopen-1795.0.wav"


async def test_recordings_cli(make_service: Any, tmp_path: Path) -> None:
    cfg = storage_cfg(tmp_path, retention_days=1)
    cfg["supervisors"] = {ME: "supervisor"}
    svc: Service = await make_service(cfg)
    data = spool_failopen(svc, 2)
    await svc.app.handoff.scan_once()
    env = cli_env(svc, tmp_path / "cli.toml", "[storage]\nretention_days = 1\n")

    async def ivr(*args: str, code: int = 0) -> str:
        # In a thread: the service answering the command runs on this test's event loop.
        res = await asyncio.to_thread(run_ivr, list(args), env)
        assert res.returncode == code, res.stdout + res.stderr
        return res.stdout + res.stderr

    listed = json.loads(await ivr("recordings", "list", "--json"))
    assert sorted(r["name"] for r in listed) == sorted(data)
    assert json.loads(await ivr("recordings", "show", FIRST, "--json"))["state"] == ("complete")
    out = tmp_path / "copy.wav"
    assert "(verified)" in await ivr("recordings", "export", FIRST, "--to", str(out))
    assert out.read_bytes() == data[FIRST]
    await ivr("recordings", "export", FIRST, "--to", str(out), code=4)
    await ivr("recordings", "hold", "failopen-1795.1.wav", code=4)  # a hold needs --note
    await ivr("recordings", "hold", "failopen-1795.1.wav", "--note", "lawsuit")
    held = json.loads(await ivr("recordings", "list", "--held", "--json"))
    assert [r["name"] for r in held] == ["failopen-1795.1.wav"]
    assert "2 checked, 0 bad" in await ivr("recordings", "verify", "--all")
    stored = Path(
        json.loads(await ivr("recordings", "show", FIRST, "--json"))["storage_uri"].removeprefix(
            "file://"
        )
    )
    stored.write_bytes(b"RIFF tampered")
    assert "MISMATCH failopen-1795.0.wav" in await ivr("recordings", "verify", "--all", code=8)
    await ivr("recordings", "export", FIRST, "--to", str(tmp_path / "x.wav"), code=8)
    await ivr("recordings", "show", "nope.wav", code=6)
    await ivr("recordings", "list", "--caller", "abc", code=4)
    # Both recordings' retention ends: only the one not on hold goes, and it is audited.
    svc.clock.at += timedelta(days=2)
    purge = await ivr("recordings", "purge", "--dry-run")
    assert "would delete failopen-1795.0.wav" in purge and "1795.1" not in purge
    assert "1 deleted" in await ivr("recordings", "purge")
    trail = json.loads(await ivr("audit", "log", "--json"))
    assert [e["action"] for e in trail if e["action"].startswith("rec-")] == [
        "rec-export",
        "rec-hold",
        "rec-purge",
    ]
    await ivr("audit", "verify")
    # Roles are the service's: a configuration of the command's own naming no one changes
    # nothing (before, it made this user no supervisor; now it is only where the socket is).
    stranger = dict(env, IVR_CONFIG=str(tmp_path / "none.toml"))
    (tmp_path / "none.toml").write_text(f'data_dir = "{svc.cfg.data_dir}"\n')
    res = await asyncio.to_thread(run_ivr, ["recordings", "list", "--json"], stranger)
    assert res.returncode == 0 and len(json.loads(res.stdout)) == 2
