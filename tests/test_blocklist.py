"""Blocklist governance against real databases: the rules, calls through the fake Asterisk,
tampering caught by verify, concurrent approvals (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from ivr.clock import FixedClock
from ivr.config import build_config
from ivr.core.review import Actor, Conflict, NotPermitted, ReviewError
from ivr.db.models import audit_events, blocklist_entries
from ivr.review import trail
from ivr.review.service import ImportRejected, Proposal
from ivr.sim.fake_asterisk import Channel
from ivr.wiring import Parts
from tests.support.service import OPEN_TIME, TEST_KEY, Service
from tests.support.tampering import EXPECTED, TAMPERING, tamper_sqlite

ALICE, BOB, CAROL = Actor("alice"), Actor("bob"), Actor("carol")
NUMBER = "090-1234-5678"
E164 = "+819012345678"


def proposal(number: str = NUMBER, **kw: Any) -> Proposal:
    return Proposal(
        number, kw.pop("category", "abusive-language"), kw.pop("note", "shouting"), **kw
    )


def service(url: str, clock: FixedClock | None = None, **cfg: Any) -> Parts:
    """The composition root's parts on `url`: `.blocklist` to act, `.engine` to look."""
    config = build_config({"database": {"url": url}, **cfg}, {}, None)
    return Parts(config, clock or FixedClock(OPEN_TIME), timeout_s=10, key=TEST_KEY)


async def refused(svc: Service, callerid: str = NUMBER) -> bool:
    rec = await svc.fake.call(Channel(callerid=callerid))
    return rec.variables.get("IVR_REASON") == "blocked"


async def test_proposer_cannot_approve_or_reject_own_entry(db_url: str) -> None:
    parts = service(db_url)
    bl = parts.blocklist
    entry = (await bl.propose(ALICE, proposal())).entry
    with pytest.raises(NotPermitted, match="another supervisor must approve"):
        await bl.approve(ALICE, entry["id"])
    # An admin acting for the proposer is the proposer.
    with pytest.raises(NotPermitted):
        await bl.approve(Actor("alice", via="root"), entry["id"])
    with pytest.raises(NotPermitted):
        await bl.reject(ALICE, entry["id"], "changed my mind")
    shown = await bl.show(entry["id"])
    assert shown.status == "pending" and [e.action for e in shown.history] == ["propose"]
    approved = await bl.approve(Actor("bob", via="root"), entry["id"], "heard the recording")
    assert (approved["status"], approved["decided_by"]) == ("approved", "bob")
    last = (await bl.show(entry["id"])).history[-1]
    assert (last.actor, last.via, last.action) == ("bob", "root", "approve")


async def test_entries_that_are_not_approved_and_current_do_not_refuse_calls(
    make_service: Any,
) -> None:
    svc: Service = await make_service()
    bl = svc.app.blocklist
    numbers = {
        s: f"090-0000-{i:04d}"
        for i, s in enumerate(["pending", "rejected", "revoked", "expired", "approved"])
    }
    ids = {
        s: (await bl.propose(ALICE, proposal(n, expires="10d"))).entry["id"]
        for s, n in numbers.items()
    }
    await bl.reject(BOB, ids["rejected"], "not enough evidence")
    await bl.approve(BOB, ids["revoked"])
    await bl.revoke(CAROL, ids["revoked"], "apologised in writing")
    await bl.approve(BOB, ids["approved"])
    # Expired: approved for a day, then the clock passes its expiry instant (no sweep yet).
    await bl.renew(ALICE, ids["expired"], "20d")  # a pending entry's proposer may renew it
    await bl.approve(BOB, ids["expired"])
    assert await refused(svc, numbers["expired"])
    svc.clock.at = OPEN_TIME + timedelta(days=20)
    assert await refused(svc, numbers["approved"]) is False  # expired at 10 days
    svc.clock.at = OPEN_TIME + timedelta(days=5)
    for status in ("pending", "rejected", "revoked"):
        assert not await refused(svc, numbers[status]), status
    assert await refused(svc, numbers["approved"])
    svc.clock.at = OPEN_TIME + timedelta(days=20, microseconds=1)
    assert not await refused(svc, numbers["expired"])
    # The sweep writes the audit events later; the chain stays whole.
    assert sorted(await bl.sweep()) == sorted([ids["expired"], ids["approved"], ids["pending"]])
    assert await bl.sweep() == []
    verdict = await trail.verify(svc.engine, svc.app.seals)
    assert verdict.problem is None and verdict.events == 14
    await svc.app.journal.flush()  # the calls' rows are written behind them
    shown = await bl.show(ids["approved"])
    assert shown.calls == {"hangup": 1} and shown.history[-1].action == "expire"


async def test_proposal_validation(make_service: Any) -> None:
    svc: Service = await make_service({"screening": {"blocklist_min_prefix_len": 8}})
    bl = svc.app.blocklist
    await svc.fake.call(Channel(callerid="03-1234-5678"))  # call0001
    await svc.fake.call(Channel(callerid="03-1234-9999"))  # call0002
    await svc.app.journal.flush()
    cases = [
        (proposal("call me"), "is not a phone number"),
        (proposal(category="rude"), "unknown category"),
        (proposal(note="  "), "needs --note"),
        (proposal(evidence=("call0001", "call9999")), "no call or recording with id: call9999"),
        (proposal(evidence=("../../etc/passwd",)), "evidence ids look wrong"),
        (proposal(expires="2020-01-01"), "in the past"),
        (proposal(action="route:nowhere"), "no route 'nowhere'"),
        (proposal("03-12", prefix=True), "shorter than 8"),
    ]
    for p, message in cases:
        with pytest.raises(ReviewError, match=message):
            await bl.propose(ALICE, p)
    res = await bl.propose(ALICE, proposal("03-1234", prefix=True, evidence=("call0001.wav",)))
    assert res.prefix_callers == 2 and res.warnings == []
    assert res.entry["expires_at"] == OPEN_TIME + timedelta(days=180)
    with pytest.raises(Conflict, match="already covers \\+8131234"):
        await bl.propose(BOB, proposal("+81 3 1234", prefix=True))
    res = await bl.propose(ALICE, proposal(evidence=("call0002",)))
    assert res.warnings == [
        "evidence call0002 is a call from +81312349999, which +819012345678 does not match"
    ]
    async with svc.engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(audit_events)) == 2


async def test_csv_with_one_bad_row_applies_nothing(db_url: str) -> None:
    parts = service(db_url)
    bl = parts.blocklist
    rows: list[tuple[int, Proposal | str]] = [
        (2, proposal("090-1111-2222")),
        (3, proposal("090-1111-3333", category="nope")),
        (4, proposal("090-1111-4444")),
        (5, proposal("090-1111-2222")),
        (6, "prefix 'maybe': use yes or no"),
    ]
    with pytest.raises(ImportRejected) as info:
        await bl.import_rows(ALICE, rows, "import list.csv")
    assert [line for line, _ in info.value.problems] == [3, 5, 6]
    assert "unknown category 'nope'" in info.value.problems[0][1]
    assert info.value.problems[1][1] == "+819011112222 is also on line 2"
    async with parts.engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(blocklist_entries)) == 0
        assert await conn.scalar(select(func.count()).select_from(audit_events)) == 0
    done = await bl.import_rows(ALICE, [rows[0], rows[2]], "import list.csv")
    assert [d.entry["status"] for d in done] == ["pending", "pending"]
    log = await trail.log_events(parts.engine)
    assert [(e.action, e.reason) for e in log] == [("import", "import list.csv: shouting")] * 2
    await parts.engine.dispose()


async def _race(url: str) -> None:
    setup = service(url)
    ids = [
        (await setup.blocklist.propose(ALICE, proposal(f"090-2222-{i:04d}"))).entry["id"]
        for i in range(5)
    ]
    await setup.engine.dispose()
    # Two supervisors, two processes' worth of connections, the same entries, the same moment.
    bob_parts, carol_parts = service(url), service(url)
    bob, carol = bob_parts.blocklist, carol_parts.blocklist
    for entry_id in ids:
        results = await asyncio.gather(
            bob.approve(BOB, entry_id), carol.approve(CAROL, entry_id), return_exceptions=True
        )
        ok = [r for r in results if isinstance(r, dict)]
        lost = [r for r in results if isinstance(r, Exception)]
        assert len(ok) == 1 and len(lost) == 1, results
        assert isinstance(lost[0], Conflict)
        shown = await bob.show(entry_id)
        assert [e.action for e in shown.history] == ["propose", "approve"]
    verdict = await trail.verify(bob_parts.engine, bob_parts.seals)
    assert verdict.problem is None and verdict.events == 10
    await bob_parts.engine.dispose()
    await carol_parts.engine.dispose()


async def test_two_concurrent_approvals_give_one_sqlite(sqlite_url: str) -> None:
    await _race(sqlite_url)


async def test_two_concurrent_approvals_give_one_postgresql(pg_url: str) -> None:
    await _race(pg_url)


async def _history(url: str) -> Parts:
    parts = service(url)
    bl = parts.blocklist
    a = (await bl.propose(ALICE, proposal("090-3333-0001"))).entry["id"]
    b = (await bl.propose(BOB, proposal("090-3333-0002"))).entry["id"]
    await bl.approve(BOB, a)
    await bl.reject(ALICE, b, "wrong number")
    assert (await trail.verify(parts.engine, parts.seals)).problem is None
    return parts


@pytest.mark.parametrize("case", list(TAMPERING))
async def test_verify_catches_tampering_sqlite(sqlite_url: str, case: str) -> None:
    parts = await _history(sqlite_url)
    path = sqlite_url.removeprefix("sqlite+aiosqlite:///")
    with sqlite3.connect(path) as db:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute("DELETE FROM audit_events WHERE seq = 1")
        tamper_sqlite(db, case)
    verdict = await trail.verify(parts.engine, parts.seals)
    assert verdict.problem is not None and str(verdict.problem).startswith(EXPECTED[case])
    await parts.engine.dispose()


async def test_postgresql_triggers_forbid_changing_audit_rows(pg_url: str) -> None:
    parts = await _history(pg_url)
    for statement in [
        "UPDATE audit_events SET reason = 'x' WHERE seq = 1",
        "DELETE FROM audit_events WHERE seq = 4",
        "TRUNCATE audit_events",
    ]:
        with pytest.raises(DBAPIError, match="append-only"):
            async with parts.engine.begin() as conn:
                await conn.execute(text(statement))
    # A superuser who disables the trigger is still caught by verify.
    async with parts.engine.begin() as conn:
        await conn.execute(text("ALTER TABLE audit_events DISABLE TRIGGER USER"))
        await conn.execute(text("UPDATE audit_events SET actor = 'carol' WHERE seq = 3"))
    verdict = await trail.verify(parts.engine, parts.seals)
    assert str(verdict.problem) == "row 3: contents do not match the row's seal: edited"
    await parts.engine.dispose()
