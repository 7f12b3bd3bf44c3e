"""Issue 26, finding 3: `ivr db downgrade 0001 && ivr db upgrade` wiped the audit trail, the
recordings table and the cap columns. A downgrade that would drop history rows is refused now,
unless it is given an export of the database exactly as it is."""

from __future__ import annotations

import stat
from pathlib import Path

from tests.support.cli import as_user, ivr_json, run_ivr, setup, supervised

PROPOSE = ["blocklist", "propose", "--category", "threats", "--note", "x"]


def propose(env: dict[str, str], number: str) -> None:
    """A supervisor's proposal, through the service (stopped again: `db` commands are the
    service account's, run while it is down)."""
    with supervised(env):
        ivr_json([*PROPOSE[:2], number, *PROPOSE[2:]], as_user(env, "sato"))


def test_a_downgrade_that_would_drop_history_needs_a_current_export(
    tmp_path: Path, db_url: str
) -> None:
    env = setup(tmp_path, url=db_url)
    propose(env, "0312345678")
    res = run_ivr(["db", "downgrade", "0001"], env)
    assert res.returncode == 7, res.stderr
    assert "would drop history (1 blocklist_entries, 1 audit_events)" in res.stderr
    with supervised(env):  # nothing was dropped
        assert "OK: 1 events" in run_ivr(["audit", "verify"], env).stdout

    export = tmp_path / "history.json"
    res = run_ivr(["db", "export", "--to", str(export)], env)
    assert res.returncode == 0, res.stderr
    assert stat.S_IMODE(export.stat().st_mode) == 0o600
    # A row written after the export: the export no longer covers what would be lost.
    propose(env, "0398765432")
    res = run_ivr(["db", "downgrade", "0001", "--discard-history", str(export)], env)
    assert res.returncode == 7 and "not an export of the database as it is now" in res.stderr

    # An export altered by hand is refused as well.
    fresh = tmp_path / "history2.json"
    assert run_ivr(["db", "export", "--to", str(fresh)], env).returncode == 0
    forged = tmp_path / "forged.json"
    forged.write_text(fresh.read_text().replace('"sato"', '"mallory"'))
    res = run_ivr(["db", "downgrade", "0001", "--discard-history", str(forged)], env)
    assert res.returncode == 7 and "do not match its digest" in res.stderr

    res = run_ivr(["db", "downgrade", "0001", "--discard-history", str(fresh)], env)
    assert res.returncode == 0, res.stderr
    assert "history dropped: 2 blocklist_entries, 2 audit_events" in res.stdout
    assert run_ivr(["db", "upgrade"], env).returncode == 0


def test_an_empty_database_downgrades_without_an_export(tmp_path: Path) -> None:
    env = setup(tmp_path)
    res = run_ivr(["db", "downgrade", "base"], env)
    assert res.returncode == 0, res.stderr
    assert run_ivr(["db", "upgrade"], env).returncode == 0
