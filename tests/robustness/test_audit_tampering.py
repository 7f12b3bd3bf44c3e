"""Audit-trail tampering, end to end: supervisors work through the CLI, someone edits the
database file behind the service's back (dropping the append-only triggers first), and
`ivr audit verify` (answered by the service, which alone holds the key) exits 8 naming the
first broken row, for every kind of edit."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from tests.support.cli import as_user, ivr_json, run_ivr, setup, supervised
from tests.support.people import public_dir
from tests.support.tampering import EXPECTED, TAMPERING, tamper_sqlite


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """The folder and environment after four supervisor actions, all through the CLI."""
    tmp = tmp_path_factory.mktemp("audit")
    env = setup(tmp)
    sato, suzuki = as_user(env, "sato"), as_user(env, "suzuki")
    with supervised(env):
        for number, who in (("090-3333-0001", sato), ("090-3333-0002", suzuki)):
            propose = ["blocklist", "propose", number, "--category", "threats", "--note", "n"]
            ivr_json(propose, who)
        ivr_json(["blocklist", "approve", "1"], suzuki)
        ivr_json(["blocklist", "reject", "2", "--note", "wrong number"], sato)
        res = run_ivr(["audit", "verify"], env)
        assert res.returncode == 0 and res.stdout.startswith("OK: 4 events, head ")
    return tmp, env


@pytest.mark.parametrize("case", list(TAMPERING))
def test_every_kind_of_tampering_is_found_by_audit_verify(
    history: tuple[Path, dict[str, str]], tmp_path: Path, case: str
) -> None:
    base, env = history
    shutil.copytree(base, tmp_path / "case")
    case_dir = tmp_path / "case"
    config = case_dir / "ivr.toml"
    socket = public_dir() / "api.sock"
    config.write_text(
        config.read_text()
        .replace(str(base), str(case_dir))
        .replace(env["IVR_API_SOCKET"], str(socket))
    )
    env = {**env, "IVR_CONFIG": str(config), "IVR_API_SOCKET": str(socket)}
    db_file = case_dir / "data" / "ivr.sqlite3"
    db = sqlite3.connect(db_file)
    with db:
        tamper_sqlite(db, case)
    db.close()
    with supervised(env):
        res = run_ivr(["audit", "verify"], env)
    assert res.returncode == 8, res.stdout + res.stderr
    assert res.stdout.startswith(f"BROKEN at {EXPECTED[case]}"), res.stdout
