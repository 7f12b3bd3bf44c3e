"""`ivr blocklist` and `ivr audit` as supervisors run them, beside a running `ivr serve`."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from ivr.review.csvfile import parse_import
from ivr.review.service import Proposal
from ivr.sim.fake_asterisk import CallerScript, Channel, FakeAsterisk
from tests.support.cli import ME, ivr_json, run_ivr, serving, setup
from tests.support.servers import free_port


async def test_approval_refuses_the_next_call_while_serve_runs(tmp_path: Path, db_url: str) -> None:
    env = setup(tmp_path, url=db_url)
    port = free_port()
    fake = FakeAsterisk("127.0.0.1", port)

    async def reason() -> str:
        rec = await fake.call(Channel(callerid="090-1234-5678"), CallerScript(digits=["1"]))
        return rec.variables["IVR_REASON"]

    async with serving(env, port):
        entry = ivr_json(
            [
                "blocklist",
                "propose",
                "090 1234 5678",
                "--category",
                "threats",
                "--note",
                "threatened staff twice",
                "--as",
                "alice",
            ],
            env,
        )
        assert entry["status"] == "pending" and entry["pattern"] == "+819012345678"
        assert await reason() != "blocked"  # pending does not act
        ivr_json(["blocklist", "approve", str(entry["id"]), "--as", "bob"], env)
        approved_at = time.monotonic()
        assert await reason() == "blocked"  # the very next call, no restart
        print(f"approval to refused call: {time.monotonic() - approved_at:.3f} s")
        ivr_json(
            ["blocklist", "revoke", str(entry["id"]), "--note", "apologised", "--as", "bob"], env
        )
        assert await reason() != "blocked"
        shown = ivr_json(["blocklist", "show", str(entry["id"])], env)
        assert shown["calls_refused"] == 1
        assert [h["action"] for h in shown["history"]] == ["propose", "approve", "revoke"]
        assert [h["via"] for h in shown["history"]] == [ME] * 3


def test_who_may_act(tmp_path: Path) -> None:
    env = setup(tmp_path)
    entry = ivr_json(
        [
            "blocklist",
            "propose",
            "0312345678",
            "--category",
            "abusive-language",
            "--note",
            "x",
            "--as",
            "alice",
        ],
        env,
    )
    eid = str(entry["id"])
    res = run_ivr(["blocklist", "approve", eid, "--as", "alice"], env)
    assert res.returncode == 5 and "another supervisor must approve" in res.stderr
    res = run_ivr(["blocklist", "approve", eid, "--as", "mallory"], env)
    assert res.returncode == 5 and "'mallory' is not a supervisor" in res.stderr
    # The OS user alone, when the configuration does not list it, may not act.
    (tmp_path / "other").mkdir()
    outsider = setup(tmp_path / "other", {"alice": "supervisor", "bob": "supervisor"})
    res = run_ivr(["blocklist", "approve", eid], outsider)
    assert res.returncode == 5 and f"OS user {ME!r} is not a supervisor" in res.stderr
    # A supervisor who is not an admin may not act for someone else.
    (tmp_path / "plain").mkdir()
    plain = setup(tmp_path / "plain", {ME: "supervisor", "bob": "supervisor"})
    res = run_ivr(["blocklist", "approve", "1", "--as", "bob"], plain)
    assert res.returncode == 5 and "--as is for admins only" in res.stderr
    assert run_ivr(["blocklist", "approve", "99", "--as", "bob"], env).returncode == 6
    assert run_ivr(["blocklist", "reject", eid, "--as", "bob"], env).returncode == 4  # no --note
    assert run_ivr(["blocklist", "approve", eid, "--as", "bob"], env).returncode == 0
    res = run_ivr(["blocklist", "approve", eid, "--as", ME], env)
    assert res.returncode == 7 and "approved" in res.stderr
    res = run_ivr(
        [
            "blocklist",
            "propose",
            "not-a-number",
            "--category",
            "threats",
            "--note",
            "x",
            "--as",
            "alice",
        ],
        env,
    )
    assert res.returncode == 4 and "is not a phone number" in res.stderr
    assert [e["status"] for e in ivr_json(["blocklist", "list"], env)] == ["approved"]


def test_csv_import_is_all_or_nothing_and_export_reads_back(tmp_path: Path, db_url: str) -> None:
    env = setup(tmp_path, url=db_url)
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "number,prefix,category,note,expires\n"
        "090-1111-2222,no,threats,threatened,90d\n"
        "090-1111-3333,no,shouting,loud,90d\n"
        "03-5555,yes,repeated-calls,forty calls a day,2027-03-31\n",
        encoding="utf-8",
    )
    res = run_ivr(["blocklist", "import", str(bad), "--as", "alice"], env)
    assert res.returncode == 4
    assert "line 3: unknown category 'shouting'" in res.stderr and "line 2" not in res.stderr
    assert ivr_json(["blocklist", "list"], env) == []
    assert ivr_json(["audit", "log"], env) == []
    good = tmp_path / "good.csv"
    good.write_text(bad.read_text().replace("shouting", "abusive-language"), encoding="utf-8-sig")
    res = run_ivr(["blocklist", "import", str(good), "--as", "alice"], env)
    assert res.returncode == 0 and "3 entries proposed" in res.stdout, res.stderr
    exported = run_ivr(["blocklist", "export"], env)
    assert exported.returncode == 0
    rows = parse_import(exported.stdout)
    first, second = rows[0][1], rows[1][1]
    assert isinstance(first, Proposal) and isinstance(second, Proposal)
    assert [p for _, p in rows] == [
        Proposal("+819011112222", "threats", "threatened", False, (), first.expires, "reject"),
        Proposal("+819011113333", "abusive-language", "loud", False, (), second.expires, "reject"),
        Proposal(
            "+8135555", "repeated-calls", "forty calls a day", True, (), "2027-03-31", "reject"
        ),
    ]
    res = run_ivr(["blocklist", "import", str(tmp_path / "missing.csv"), "--as", "alice"], env)
    assert res.returncode == 4 and "missing.csv" in res.stderr
    assert [e["action"] for e in ivr_json(["audit", "log"], env)] == ["import"] * 3


def test_list_filters_and_categories(tmp_path: Path, db_url: str) -> None:
    env = setup(tmp_path, url=db_url)
    for number, expires in [("090-1000-0001", "10d"), ("090-1000-0002", "60d")]:
        ivr_json(
            [
                "blocklist",
                "propose",
                number,
                "--category",
                "lecturing",
                "--note",
                "n",
                "--expires",
                expires,
                "--as",
                "alice",
            ],
            env,
        )
    ivr_json(["blocklist", "approve", "2", "--as", "bob"], env)
    assert [e["id"] for e in ivr_json(["blocklist", "list", "--due-within", "14d"], env)] == [1]
    assert [e["id"] for e in ivr_json(["blocklist", "list", "--status", "approved"], env)] == [2]
    assert [e["id"] for e in ivr_json(["blocklist", "list", "--number", "+819010000002"], env)] == [
        2
    ]
    assert run_ivr(["blocklist", "list", "--status", "maybe"], env).returncode == 4
    cats = ivr_json(["blocklist", "categories"], env)
    assert len(cats) == 12 and cats[0] == {
        "code": "time-restraint",
        "ja": "時間拘束型",
        "en": "Time restraint",
    }
    table = run_ivr(["blocklist", "list"], env)
    assert "+819010000001" in table.stdout and "pending" in table.stdout


def test_audit_verify_exit_codes(tmp_path: Path) -> None:
    env = setup(tmp_path)
    ivr_json(
        [
            "blocklist",
            "propose",
            "090-1000-0001",
            "--category",
            "threats",
            "--note",
            "n",
            "--as",
            "alice",
        ],
        env,
    )
    ivr_json(["blocklist", "approve", "1", "--as", "bob"], env)
    res = run_ivr(["audit", "verify"], env)
    assert res.returncode == 0 and res.stdout.startswith("OK: 2 events, head ")
    db = sqlite3.connect(tmp_path / "data" / "ivr.sqlite3")
    with db:
        db.execute("DROP TRIGGER audit_events_no_update")
        db.execute("UPDATE audit_events SET actor = 'alice' WHERE seq = 2")
    db.close()
    res = run_ivr(["audit", "verify"], env)
    assert res.returncode == 8
    assert res.stdout.strip() == "BROKEN at row 2: contents do not match the row's hash: edited"
    assert ivr_json(["audit", "verify"], env, code=8)["row"] == 2


def test_simulate_uses_its_own_database_unless_told(tmp_path: Path) -> None:
    """A number blocked on the server is not blocked in a throwaway simulation."""
    env = setup(tmp_path)
    propose = ["blocklist", "propose", "0312345678", "--category", "threats", "--note", "x"]
    entry = ivr_json([*propose, "--as", "alice"], env)
    ivr_json(["blocklist", "approve", str(entry["id"]), "--as", "bob"], env)
    call = ["simulate", "--caller", "0312345678", "--at", "2026-11-24T10:00", "--digits", "1"]
    res = run_ivr(call, env)
    assert res.returncode == 0, res.stderr
    assert "reason menu" in res.stdout and "blocked" not in res.stdout
    res = run_ivr([*call, "--use-db"], env)
    assert res.returncode == 0, res.stderr
    assert "hang up (reason blocked" in res.stdout
