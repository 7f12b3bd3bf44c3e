"""The pure parts of blocklist governance: actors, the review state machine, input, the chain."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from ivr.core import audit
from ivr.core.blocklist import EntryStatus
from ivr.core.categories import CATEGORIES, category
from ivr.core.proposal import normalise_pattern, parse_action, parse_days, parse_expiry
from ivr.core.review import (
    Action,
    Actor,
    Conflict,
    EntryState,
    NotPermitted,
    ReviewError,
    Role,
    decide,
    effective_status,
    resolve_actor,
)

JST = ZoneInfo("Asia/Tokyo")
NOW = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)
LATER = NOW + timedelta(days=30)
KEY = bytes(range(32))
ROSTER = {"alice": Role.SUPERVISOR, "bob": Role.SUPERVISOR, "root": Role.ADMIN}


def test_twelve_categories_with_stable_unique_codes() -> None:
    assert len(CATEGORIES) == 12
    assert len({c.code for c in CATEGORIES}) == 12
    assert all(c.ja and c.en for c in CATEGORIES)
    assert category(" Threats ").code == "threats"
    with pytest.raises(ValueError, match="unknown category 'abuse'; one of: time-restraint"):
        category("abuse")


@pytest.mark.parametrize(
    ("user", "override", "expect"),
    [
        ("alice", None, Actor("alice")),
        ("alice", "alice", Actor("alice")),
        ("root", None, Actor("root")),
        ("root", "bob", Actor("bob", via="root")),
    ],
)
def test_resolve_actor(user: str, override: str | None, expect: Actor) -> None:
    assert resolve_actor(user, override, "form 12 signed 2026-11-20", ROSTER) == expect


@pytest.mark.parametrize(
    ("user", "override", "message"),
    [
        ("mallory", None, "'mallory' is not a supervisor"),
        ("alice", "bob", "--as is for admins only"),
        ("root", "mallory", "'mallory' is not a supervisor"),
        ("root", "system", "'system' is not a supervisor"),
    ],
)
def test_resolve_actor_refuses(user: str, override: str | None, message: str) -> None:
    with pytest.raises(NotPermitted, match=message):
        resolve_actor(user, override, "form 12", ROSTER)


def test_a_paper_decision_needs_a_note() -> None:
    with pytest.raises(ReviewError, match="needs --note"):
        resolve_actor("root", "bob", " ", ROSTER)


def test_an_admin_may_not_record_a_decision_on_their_own_proposal() -> None:
    by_root = EntryState(EntryStatus.PENDING, "root", LATER)
    for action in (Action.APPROVE, Action.REJECT):
        with pytest.raises(NotPermitted, match="'root' proposed this entry and may not"):
            decide(action, by_root, Actor("bob", via="root"), NOW, note="form 12")
    with pytest.raises(NotPermitted, match="'alice' proposed this entry"):
        decide(Action.APPROVE, PENDING, Actor("alice", via="root"), NOW, note="form 12")


PENDING = EntryState(EntryStatus.PENDING, "alice", LATER)
APPROVED = EntryState(EntryStatus.APPROVED, "alice", LATER)
BOB = Actor("bob")
ALICE = Actor("alice")


@pytest.mark.parametrize(
    ("action", "state", "actor", "kwargs", "result"),
    [
        (Action.APPROVE, PENDING, BOB, {}, EntryStatus.APPROVED),
        (Action.REJECT, PENDING, BOB, {"note": "no evidence"}, EntryStatus.REJECTED),
        (Action.REVOKE, APPROVED, BOB, {"note": "apologised"}, EntryStatus.REVOKED),
        (Action.REVOKE, PENDING, ALICE, {"note": "withdrawn"}, EntryStatus.REVOKED),
        (Action.RENEW, APPROVED, BOB, {"expires_at": LATER + timedelta(1)}, EntryStatus.APPROVED),
        (Action.RENEW, PENDING, ALICE, {"expires_at": LATER + timedelta(1)}, EntryStatus.PENDING),
        (Action.APPROVE, PENDING, Actor("bob", via="root"), {}, EntryStatus.APPROVED),
    ],
)
def test_decide_allows(
    action: Action, state: EntryState, actor: Actor, kwargs: dict[str, Any], result: EntryStatus
) -> None:
    assert decide(action, state, actor, NOW, **kwargs) is result


@pytest.mark.parametrize(
    ("action", "state", "actor", "kwargs", "error", "message"),
    [
        (Action.APPROVE, PENDING, ALICE, {}, NotPermitted, "another supervisor must approve"),
        (Action.APPROVE, PENDING, Actor("alice", via="root"), {}, NotPermitted, "another"),
        (Action.REJECT, PENDING, ALICE, {"note": "x"}, NotPermitted, "another supervisor"),
        (Action.REJECT, PENDING, BOB, {"note": "  "}, ReviewError, "needs --note"),
        (Action.APPROVE, APPROVED, BOB, {}, Conflict, "entry that is approved"),
        (
            Action.APPROVE,
            replace(PENDING, expires_at=NOW),
            BOB,
            {},
            Conflict,
            "entry that is expired",
        ),
        (Action.REVOKE, APPROVED, BOB, {}, ReviewError, "needs --note"),
        (
            Action.REVOKE,
            replace(APPROVED, status=EntryStatus.REJECTED),
            BOB,
            {"note": "x"},
            Conflict,
            "rejected",
        ),
        (
            Action.RENEW,
            APPROVED,
            ALICE,
            {"expires_at": LATER + timedelta(1)},
            NotPermitted,
            "renew",
        ),
        (Action.RENEW, APPROVED, BOB, {"expires_at": LATER - timedelta(1)}, ReviewError, "later"),
        (Action.RENEW, APPROVED, BOB, {"expires_at": NOW}, ReviewError, "future"),
        (
            Action.RENEW,
            replace(APPROVED, expires_at=NOW - timedelta(1)),
            BOB,
            {"expires_at": LATER},
            Conflict,
            "propose it again",
        ),
        (Action.EXPIRE, APPROVED, Actor("system"), {}, Conflict, "past its expiry"),
        (Action.PROPOSE, PENDING, BOB, {}, ReviewError, "does not apply"),
    ],
)
def test_decide_refuses(
    action: Action,
    state: EntryState,
    actor: Actor,
    kwargs: dict[str, Any],
    error: type[Exception],
    message: str,
) -> None:
    with pytest.raises(error, match=message):
        decide(action, state, actor, NOW, **kwargs)


def test_expiry_is_an_instant() -> None:
    state = replace(APPROVED, expires_at=NOW)
    assert effective_status(state, NOW - timedelta(microseconds=1)) is EntryStatus.APPROVED
    assert effective_status(state, NOW) is EntryStatus.EXPIRED
    assert decide(Action.EXPIRE, state, Actor("system"), NOW) is EntryStatus.EXPIRED
    assert effective_status(replace(state, status=EntryStatus.REVOKED), NOW) is EntryStatus.REVOKED


@pytest.mark.parametrize(
    ("text", "prefix", "expect"),
    [
        ("090-1234-5678", False, "+819012345678"),
        ("+81 90 1234 5678", False, "+819012345678"),
        ("(03) 1234-5678", False, "+81312345678"),
        ("０９０－１２３４－５６７８", False, "+819012345678"),
        ("090ー1234ー5678", False, "+819012345678"),
        ("０３‐１２３４", True, "+8131234"),
        ("03-1234", True, "+8131234"),
        ("+81 3 1234", True, "+8131234"),
        ("0081-3-1234", True, "+8131234"),
        ("0312", True, "+81312"),
    ],
)
def test_normalise_pattern(text: str, prefix: bool, expect: str) -> None:
    assert normalise_pattern(text, prefix, "JP", 6) == expect


@pytest.mark.parametrize(
    ("text", "prefix", "message"),
    [
        ("not a number", False, "is not a phone number"),
        ("12", False, "is not a phone number"),
        ("090-1234-5678'; DROP", False, "is not a phone number"),
        ("031", True, "shorter than 6"),
        ("3123456", True, "must start with 0"),
        ("03-12x4", True, "only digits"),
        ("0" + "1" * 20, True, "only digits"),
    ],
)
def test_normalise_pattern_errors(text: str, prefix: bool, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        normalise_pattern(text, prefix, "JP", 6)


def test_parse_expiry() -> None:
    assert parse_expiry("90d", NOW, JST, 730) == NOW + timedelta(days=90)
    assert parse_expiry("2w", NOW, JST, 730) == NOW + timedelta(days=14)
    # A date means "through that day" in the centre's zone.
    assert parse_expiry("2027-01-31", NOW, JST, 730) == datetime(2027, 2, 1, tzinfo=JST)
    for bad, message in [
        ("2026-11-01", "in the past"),
        ("800d", "more than 730 days"),
        ("0d", "is not a duration"),
        ("soon", "use a duration"),
    ]:
        with pytest.raises(ValueError, match=message):
            parse_expiry(bad, NOW, JST, 730)
    assert parse_days("14d") == timedelta(days=14)


def test_parse_action() -> None:
    assert parse_action("reject", ["sales"]) == "reject"
    assert parse_action("route:sales", ["sales"]) == "route:sales"
    with pytest.raises(ValueError, match="no route 'nope'"):
        parse_action("route:nope", ["sales"])
    with pytest.raises(ValueError, match="use reject or route:NAME"):
        parse_action("drop", ["sales"])


def _chain(n: int, reason: str = "r") -> list[audit.AuditEvent]:
    events, prev = [], (0, audit.GENESIS)
    for i in range(1, n + 1):
        ev = audit.seal(
            prev,
            NOW + timedelta(seconds=i),
            "alice",
            None,
            "propose",
            i,
            reason,
            audit.snapshot({"id": i, "status": "pending"}),
            KEY,
        )
        events.append(ev)
        prev = (ev.seq, ev.hash)
    return events


def _entries(n: int) -> dict[int, str]:
    return {i: audit.snapshot({"id": i, "status": "pending"}) for i in range(1, n + 1)}


def test_chain_verifies() -> None:
    events = _chain(4)
    assert audit.verify(events, (4, events[-1].hash), _entries(4), KEY) is None
    assert audit.verify([], (0, audit.GENESIS), {}, KEY) is None


def test_chain_breaks_are_found() -> None:
    ev = _chain(4)
    head = (4, ev[-1].hash)
    cases = {
        "edited": ([ev[0], replace(ev[1], reason="other"), *ev[2:]], head, _entries(4)),
        "removed": ([ev[0], *ev[2:]], head, _entries(4)),
        "reordered": (
            [ev[0], replace(ev[2], seq=2), replace(ev[1], seq=3), ev[3]],
            head,
            _entries(4),
        ),
        "end": (ev[:3], head, _entries(4)),
        "entry": (ev, head, {**_entries(4), 2: audit.snapshot({"id": 2, "status": "approved"})}),
        "deleted entry": (ev, head, {k: v for k, v in _entries(4).items() if k != 3}),
        "unaudited entry": (ev, head, {**_entries(4), 9: "{}"}),
        "no head": (ev, None, _entries(4)),
    }
    found = {name: audit.verify(*args, KEY) for name, args in cases.items()}
    assert {k: str(v) for k, v in found.items()} == {
        "edited": "row 2: contents do not match the row's seal: edited",
        "removed": "row 3: expected row 2: rows were removed or renumbered",
        "reordered": "row 2: prev_hash does not match the row before: removed or reordered",
        "end": "the chain ends at row 3 but the head record says row 4: rows were removed from "
        "the end",
        "entry": "row 2: blocklist entry 2 differs from its last audited state",
        "deleted entry": "row 3: blocklist entry 3 was deleted outside the audit trail",
        "unaudited entry": "blocklist entry 9 has no audit history",
        "no head": "the audit head record is missing",
    }


def test_hash_covers_every_field() -> None:
    ev = _chain(1)[0]
    changes: list[dict[str, Any]] = [
        {"at": ev.at + timedelta(microseconds=1)},
        {"actor": "bob"},
        {"via": "root"},
        {"action": "approve"},
        {"entry_id": 2},
        {"reason": "r "},
        {"snapshot": ev.snapshot.replace("pending", "approved")},
    ]
    for change in changes:
        bad = replace(ev, **change)
        assert audit.verify([bad], (1, ev.hash), {}, KEY) is not None, change


def test_a_row_sealed_without_the_key_fails() -> None:
    """Finding 2(c): someone with database access appends a row with the code's own `seal`
    but another key (or plain SHA-256, as before the key): the chain no longer verifies."""
    ev = _chain(3)
    forged = audit.seal(
        (3, ev[-1].hash), NOW, "suzuki", None, "approve", 3, "ok", _entries(3)[3], bytes(32)
    )
    unkeyed = replace(forged, hash=audit.digest(forged, None))
    for row in (forged, unkeyed):
        assert str(audit.verify([*ev, row], (4, row.hash), _entries(3), KEY)) == (
            "row 4: contents do not match the row's seal: edited"
        )
    # Rows from before the key (seq < keyed_from) are checked as they were sealed.
    old = [replace(e, hash="") for e in ev]
    prev = audit.GENESIS
    for i, e in enumerate(old):
        e = replace(e, prev_hash=prev)
        old[i] = replace(e, hash=audit.digest(e, None))
        prev = old[i].hash
    assert audit.verify(old, (3, prev), _entries(3), KEY, keyed_from=4) is None
    assert audit.verify(old, (3, prev), _entries(3), KEY, keyed_from=1) is not None


def test_an_anchor_catches_a_rebuilt_chain() -> None:
    ev = _chain(4)
    anchor = audit.Anchor(2, ev[1].hash)
    assert audit.Anchor.parse(str(anchor)) == anchor
    assert audit.verify(ev, (4, ev[-1].hash), _entries(4), KEY, anchor=anchor) is None
    # A whole chain sealed again (with the key, or as rows from before it): valid in itself.
    rebuilt = _chain(4, reason="rewritten")
    assert audit.verify(rebuilt, (4, rebuilt[-1].hash), _entries(4), KEY) is None
    assert (
        str(audit.verify(rebuilt, (4, rebuilt[-1].hash), _entries(4), KEY, anchor=anchor))
        == "row 2: the anchored row differs from the anchor: rebuilt"
    )
    assert "the anchored row is gone" in str(
        audit.verify(ev[:1], (1, ev[0].hash), _entries(1), KEY, anchor=anchor)
    )
    with pytest.raises(ValueError, match="SEQ:HASH"):
        audit.Anchor.parse("2:abc")
