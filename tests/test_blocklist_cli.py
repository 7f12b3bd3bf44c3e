"""`ivr blocklist` and `ivr audit` as supervisors run them: real OS users, through the API of
a running `ivr serve`."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from ivr.review.csvfile import parse_import
from ivr.review.service import Proposal
from ivr.sim.fake_asterisk import CallerScript, Channel, FakeAsterisk
from tests.support.cli import ME, as_user, ivr_json, run_ivr, serving, setup
from tests.support.people import own_dir, public_dir
from tests.support.servers import free_port

Supervise = Callable[..., dict[str, str]]
THREATS = ["--category", "threats", "--note", "threatened staff twice"]


async def test_approval_refuses_the_next_call_while_serve_runs(tmp_path: Path, db_url: str) -> None:
    env = setup(tmp_path, url=db_url)
    sato, suzuki = as_user(env, "sato"), as_user(env, "suzuki")
    port = free_port()
    fake = FakeAsterisk("127.0.0.1", port)

    async def reason() -> str:
        rec = await fake.call(Channel(callerid="090-1234-5678"), CallerScript(digits=["1"]))
        return rec.variables["IVR_REASON"]

    async with serving(env, port):
        entry = ivr_json(["blocklist", "propose", "090 1234 5678", *THREATS], sato)
        assert entry["status"] == "pending" and entry["pattern"] == "+819012345678"
        assert await reason() != "blocked"  # pending does not act
        ivr_json(["blocklist", "approve", str(entry["id"])], suzuki)
        approved_at = time.monotonic()
        assert await reason() == "blocked"  # the very next call, no restart
        print(f"approval to refused call: {time.monotonic() - approved_at:.3f} s")
        ivr_json(["blocklist", "revoke", str(entry["id"]), "--note", "apologised"], suzuki)
        assert await reason() != "blocked"
        shown = ivr_json(["blocklist", "show", str(entry["id"])], sato)
        assert shown["calls_refused"] == 1
        assert [h["action"] for h in shown["history"]] == ["propose", "approve", "revoke"]
        assert [h["actor"] for h in shown["history"]] == ["sato", "suzuki", "suzuki"]
        assert [h["via"] for h in shown["history"]] == [None] * 3


def test_who_may_act(tmp_path: Path, supervise: Supervise) -> None:
    env = supervise(tmp_path)
    sato, suzuki = as_user(env, "sato"), as_user(env, "suzuki")
    entry = ivr_json(["blocklist", "propose", "0312345678", *THREATS], sato)
    eid = str(entry["id"])
    res = run_ivr(["blocklist", "approve", eid], sato)
    assert res.returncode == 5 and "another supervisor must approve" in res.stderr
    # Naming someone else is for admins only, whoever is named.
    res = run_ivr(["blocklist", "approve", eid, "--as", "suzuki", "--note", "form 7"], sato)
    assert res.returncode == 5 and "--as is for admins only" in res.stderr
    res = run_ivr(["blocklist", "approve", eid, "--as", "mallory", "--note", "form 7"], env)
    assert res.returncode == 5 and "'mallory' is not a supervisor" in res.stderr
    assert run_ivr(["blocklist", "approve", "99"], suzuki).returncode == 6
    assert run_ivr(["blocklist", "reject", eid], suzuki).returncode == 4  # no --note
    assert run_ivr(["blocklist", "approve", eid], suzuki).returncode == 0
    res = run_ivr(["blocklist", "approve", eid], env)
    assert res.returncode == 7 and "approved" in res.stderr
    res = run_ivr(["blocklist", "propose", "not-a-number", *THREATS], sato)
    assert res.returncode == 4 and "is not a phone number" in res.stderr
    assert [e["status"] for e in ivr_json(["blocklist", "list"], sato)] == ["approved"]


def test_an_admin_records_a_paper_approval_only_as_the_rules_allow(
    tmp_path: Path, supervise: Supervise
) -> None:
    """Finding 2(a): root proposed, then approved `--as suzuki`. Now an admin may record a
    written approval only with a note, never for the proposer, never on their own proposal."""
    env = supervise(tmp_path)
    sato = as_user(env, "sato")
    own = str(ivr_json(["blocklist", "propose", "0312345678", *THREATS], env)["id"])
    res = run_ivr(["blocklist", "approve", own, "--as", "suzuki", "--note", "form 7"], env)
    assert res.returncode == 5, res.stderr
    assert f"{ME!r} proposed this entry and may not record its approve" in res.stderr
    theirs = str(ivr_json(["blocklist", "propose", "0312345679", *THREATS], sato)["id"])
    res = run_ivr(["blocklist", "approve", theirs, "--as", "sato", "--note", "form 8"], env)
    assert res.returncode == 5 and "'sato' proposed this entry" in res.stderr
    res = run_ivr(["blocklist", "approve", theirs, "--as", "suzuki"], env)
    assert res.returncode == 4 and "needs --note" in res.stderr
    res = run_ivr(["blocklist", "revoke", theirs, "--as", "suzuki", "--note", "x"], env)
    assert res.returncode == 2  # no such option for revoke
    done = ivr_json(
        ["blocklist", "approve", theirs, "--as", "suzuki", "--note", "form 8, 2026-11-23"], env
    )
    assert done["status"] == "approved" and done["decided_by"] == "suzuki"
    history = ivr_json(["blocklist", "show", theirs], sato)["history"]
    assert [(h["actor"], h["via"]) for h in history] == [("sato", None), ("suzuki", ME)]
    assert ivr_json(["blocklist", "show", own], sato)["entry"]["status"] == "pending"


def test_roles_come_from_the_service_alone(tmp_path: Path, supervise: Supervise) -> None:
    """Finding 2(b): sato named himself admin in a configuration of his own. The service's
    configuration decides; a supervisor's environment and files change nothing."""
    env = supervise(tmp_path)
    suzuki = as_user(env, "suzuki")
    eid = str(ivr_json(["blocklist", "propose", "0312345678", *THREATS], suzuki)["id"])
    mine = own_dir(public_dir(), "sato")
    fake = mine / "ivr.toml"
    fake.write_text(
        f'data_dir = "{mine}"\n[api]\nsocket = "{env["IVR_API_SOCKET"]}"\n'
        '[supervisors]\nsato = "admin"\nsuzuki = "supervisor"\n'
    )
    sato = as_user(env, "sato")
    res = run_ivr(
        ["blocklist", "approve", eid, "--as", "suzuki", "--note", "x", "-c", str(fake)], sato
    )
    assert res.returncode == 5 and "--as is for admins only; 'sato' is not an admin" in res.stderr
    # With no socket named, his configuration's socket is used: still the same service.
    res = run_ivr(["blocklist", "approve", eid], sato)
    assert res.returncode == 0, res.stderr
    assert ivr_json(["blocklist", "show", eid], sato)["history"][-1]["actor"] == "sato"


def test_who_is_not_a_supervisor_gets_nothing(tmp_path: Path, supervise: Supervise) -> None:
    """mallory is not in the API's group: the socket refuses him. In the group but not in
    [supervisors], the service refuses him. The service's own user may not act unless listed."""
    env = supervise(tmp_path, {"sato": "supervisor", "suzuki": "supervisor"})
    mallory = as_user(env, "mallory")
    for args in (["blocklist", "list"], ["calls", "active"], ["audit", "log"]):
        res = run_ivr(args, mallory)
        assert res.returncode == 1 and "Permission denied" in res.stderr, res.stderr
    res = run_ivr(["blocklist", "list"], env)
    assert res.returncode == 5 and f"OS user {ME!r} is not a supervisor" in res.stderr


def test_csv_import_is_all_or_nothing_and_export_reads_back(
    tmp_path: Path, db_url: str, supervise: Supervise
) -> None:
    env = supervise(tmp_path, url=db_url)
    sato = as_user(env, "sato")
    files = own_dir(public_dir(), "sato")
    bad = files / "bad.csv"
    bad.write_text(
        "number,prefix,category,note,expires\n"
        "090-1111-2222,no,threats,threatened,90d\n"
        "090-1111-3333,no,shouting,loud,90d\n"
        "03-5555,yes,repeated-calls,forty calls a day,2027-03-31\n",
        encoding="utf-8",
    )
    res = run_ivr(["blocklist", "import", str(bad)], sato)
    assert res.returncode == 4
    assert "line 3: unknown category 'shouting'" in res.stderr and "line 2" not in res.stderr
    assert ivr_json(["blocklist", "list"], sato) == []
    assert ivr_json(["audit", "log"], sato) == []
    good = files / "good.csv"
    good.write_text(bad.read_text().replace("shouting", "abusive-language"), encoding="utf-8-sig")
    res = run_ivr(["blocklist", "import", str(good)], sato)
    assert res.returncode == 0 and "3 entries proposed" in res.stdout, res.stderr
    exported = run_ivr(["blocklist", "export"], sato)
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
    res = run_ivr(["blocklist", "import", str(files / "missing.csv")], sato)
    assert res.returncode == 4 and "missing.csv" in res.stderr
    log = ivr_json(["audit", "log"], sato)
    assert [(e["action"], e["actor"]) for e in log] == [("import", "sato")] * 3


def test_list_filters_and_categories(tmp_path: Path, db_url: str, supervise: Supervise) -> None:
    env = supervise(tmp_path, url=db_url)
    sato = as_user(env, "sato")
    for number, expires in [("090-1000-0001", "10d"), ("090-1000-0002", "60d")]:
        propose = ["blocklist", "propose", number, "--category", "lecturing", "--note", "n"]
        ivr_json([*propose, "--expires", expires], sato)
    ivr_json(["blocklist", "approve", "2"], as_user(env, "suzuki"))
    assert [e["id"] for e in ivr_json(["blocklist", "list", "--due-within", "14d"], sato)] == [1]
    assert [e["id"] for e in ivr_json(["blocklist", "list", "--status", "approved"], sato)] == [2]
    matching = ivr_json(["blocklist", "list", "--number", "+819010000002"], sato)
    assert [e["id"] for e in matching] == [2]
    assert run_ivr(["blocklist", "list", "--status", "maybe"], sato).returncode == 4
    cats = ivr_json(["blocklist", "categories"], sato)
    assert len(cats) == 12 and cats[0] == {
        "code": "time-restraint",
        "ja": "時間拘束型",
        "en": "Time restraint",
    }
    table = run_ivr(["blocklist", "list"], sato)
    assert "+819010000001" in table.stdout and "pending" in table.stdout


def test_audit_verify_exit_codes(tmp_path: Path, supervise: Supervise) -> None:
    env = supervise(tmp_path)
    ivr_json(["blocklist", "propose", "090-1000-0001", *THREATS], as_user(env, "sato"))
    ivr_json(["blocklist", "approve", "1"], as_user(env, "suzuki"))
    res = run_ivr(["audit", "verify"], env)
    assert res.returncode == 0 and res.stdout.startswith("OK: 2 events, head ")
    db = sqlite3.connect(tmp_path / "data" / "ivr.sqlite3")
    with db:
        db.execute("DROP TRIGGER audit_events_no_update")
        db.execute("UPDATE audit_events SET actor = 'sato' WHERE seq = 2")
    db.close()
    res = run_ivr(["audit", "verify"], env)
    assert res.returncode == 8
    assert (
        res.stdout.splitlines()[0]
        == "BROKEN at row 2: contents do not match the row's seal: edited"
    )
    assert ivr_json(["audit", "verify"], env, code=8)["row"] == 2


def test_simulate_uses_its_own_database_unless_told(tmp_path: Path, supervise: Supervise) -> None:
    """A number blocked on the server is not blocked in a throwaway simulation."""
    env = supervise(tmp_path)
    propose = ["blocklist", "propose", "0312345678", "--category", "threats", "--note", "x"]
    entry = ivr_json(propose, as_user(env, "sato"))
    ivr_json(["blocklist", "approve", str(entry["id"])], as_user(env, "suzuki"))
    call = ["simulate", "--caller", "0312345678", "--at", "2026-11-24T10:00", "--digits", "1"]
    res = run_ivr(call, env)
    assert res.returncode == 0, res.stderr
    assert "reason menu" in res.stdout and "blocked" not in res.stdout
    res = run_ivr([*call, "--use-db"], env)
    assert res.returncode == 0, res.stderr
    assert "hang up (reason blocked" in res.stdout
