"""`ivr recordings ...` as a subprocess on a database the service filled."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import update

from ivr.db.models import recordings
from tests.support.cli import ME, run_ivr
from tests.support.recordings import cli_env, spool_failopen, storage_cfg
from tests.support.service import Service


async def test_recordings_cli(make_service: Any, tmp_path: Path) -> None:
    cfg = storage_cfg(tmp_path, retention_days=1)
    cfg["supervisors"] = {ME: "supervisor"}
    svc: Service = await make_service(cfg)
    data = spool_failopen(svc, 2)
    await svc.app.handoff.scan_once()
    env = cli_env(svc, tmp_path / "cli.toml", "[storage]\nretention_days = 1\n")

    def ivr(*args: str, code: int = 0) -> str:
        res = run_ivr(list(args), env)
        assert res.returncode == code, res.stdout + res.stderr
        return res.stdout + res.stderr

    listed = json.loads(ivr("recordings", "list", "--json"))
    assert sorted(r["name"] for r in listed) == sorted(data)
    assert json.loads(ivr("recordings", "show", "failopen-1795.0.wav", "--json"))["state"] == (
        "complete"
    )
    out = tmp_path / "copy.wav"
    assert "(verified)" in ivr("recordings", "export", "failopen-1795.0.wav", "--to", str(out))
    assert out.read_bytes() == data["failopen-1795.0.wav"]
    ivr("recordings", "export", "failopen-1795.0.wav", "--to", str(out), code=4)
    ivr("recordings", "hold", "failopen-1795.1.wav", code=4)  # a hold needs --note
    ivr("recordings", "hold", "failopen-1795.1.wav", "--note", "lawsuit")
    held = json.loads(ivr("recordings", "list", "--held", "--json"))
    assert [r["name"] for r in held] == ["failopen-1795.1.wav"]
    assert "2 checked, 0 bad" in ivr("recordings", "verify", "--all")
    stored = Path(
        json.loads(ivr("recordings", "show", "failopen-1795.0.wav", "--json"))[
            "storage_uri"
        ].removeprefix("file://")
    )
    stored.write_bytes(b"RIFF tampered")
    assert "MISMATCH failopen-1795.0.wav" in ivr("recordings", "verify", "--all", code=8)
    ivr("recordings", "export", "failopen-1795.0.wav", "--to", str(tmp_path / "x.wav"), code=8)
    ivr("recordings", "show", "nope.wav", code=6)
    ivr("recordings", "list", "--caller", "abc", code=4)
    # Both recordings are made a year old: only the one not on hold goes, and it is audited.
    async with svc.engine.begin() as conn:
        await conn.execute(
            update(recordings).values(retain_until=datetime(2025, 11, 1, tzinfo=UTC))
        )
    purge = ivr("recordings", "purge", "--dry-run")
    assert "would delete failopen-1795.0.wav" in purge and "1795.1" not in purge
    assert "1 deleted" in ivr("recordings", "purge")
    trail = json.loads(ivr("audit", "log", "--json"))
    assert [e["action"] for e in trail if e["action"].startswith("rec-")] == [
        "rec-export",
        "rec-hold",
        "rec-purge",
    ]
    ivr("audit", "verify")
    stranger = dict(env, IVR_CONFIG=str(tmp_path / "none.toml"))
    (tmp_path / "none.toml").write_text(f'[database]\nurl = "{svc.cfg.database_url()}"\n')
    res = run_ivr(["recordings", "list"], stranger)
    assert res.returncode == 5
