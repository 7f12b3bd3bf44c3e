"""Issue 26, finding 2(c), and the one-writer model: supervisors act through the service's
API with no access to its files, and a row forged by someone who can write the database but
cannot read the service's key fails `ivr audit verify`."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert, select, update

from ivr.core import audit
from ivr.db.engine import create_engine
from ivr.db.models import audit_events, audit_head, blocklist_entries
from tests.support.cli import as_user, ivr_json, run_ivr
from tests.support.people import public_dir

Supervise = Callable[..., dict[str, str]]
PROPOSE = ["blocklist", "propose", "0312345678", "--category", "threats", "--note", "n"]


def _as(user: str, code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["python3", "-c", code], user=user, capture_output=True, text=True, check=False, cwd="/"
    )


def test_supervisors_work_without_any_file_of_the_service(supervise: Supervise) -> None:
    """The data folder is in a folder anyone may enter: its own modes alone keep sato out,
    and his commands work all the same (through the socket)."""
    base = public_dir()
    env = supervise(base)
    sato = as_user(env, "sato")
    assert ivr_json(PROPOSE, sato)["proposed_by"] == "sato"
    data = base / "data"
    for target in (data, data / "ivr.sqlite3", data / "service.key"):
        res = _as("sato", f"open({str(target)!r}, 'rb')")
        assert "PermissionError" in res.stderr, (target, res.stderr)
    # Nor may he reach the database some other way: the service is its only writer.
    res = _as(
        "sato",
        f"import sqlite3; sqlite3.connect({str(data / 'ivr.sqlite3')!r}).execute('select 1')",
    )
    assert "unable to open database file" in res.stderr


async def test_an_approval_forged_in_the_database_fails_verify(
    tmp_path: Path, db_url: str, supervise: Supervise
) -> None:
    """Someone with write access to the database (its owner, a stolen backup restored) appends
    an "approve by suzuki" row sealed with the code's own `seal`, dated 2020, and approves the
    entry. Without the service's key the row cannot be sealed: verify finds it."""
    env = supervise(tmp_path, url=db_url)
    entry = ivr_json(PROPOSE, as_user(env, "sato"))
    engine = create_engine(db_url)
    try:
        async with engine.begin() as conn:
            seq, prev = (await conn.execute(select(audit_head.c.seq, audit_head.c.hash))).one()
            row = dict(
                (await conn.execute(select(blocklist_entries))).mappings().one(), status="approved"
            )
            row["decided_by"] = "suzuki"
            for key in (bytes(32), None):  # a guessed key; plain SHA-256 as before the key
                forged = audit.seal(
                    (seq, prev),
                    datetime(2020, 1, 1, tzinfo=UTC),
                    "suzuki",
                    None,
                    "approve",
                    entry["id"],
                    "ok",
                    audit.snapshot(row),
                    key,
                )
                await conn.execute(insert(audit_events).values(**asdict(forged)))
                seq, prev = forged.seq, forged.hash
            await conn.execute(update(audit_head).values(seq=seq, hash=prev))
            await conn.execute(
                update(blocklist_entries).values(status="approved", decided_by="suzuki")
            )
    finally:
        await engine.dispose()
    res = run_ivr(["audit", "verify", "--json"], as_user(env, "suzuki"))
    assert res.returncode == 8, res.stdout + res.stderr
    verdict = json.loads(res.stdout)
    assert verdict["problem"] == "row 2: contents do not match the row's seal: edited"
