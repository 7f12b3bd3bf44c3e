"""Recording hand-off, retention, hold, export and verify, on the local backend and on a real
S3-compatible server (moto) started by the tests."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from ivr.core.review import Actor, Conflict
from ivr.db.models import calls, recordings
from ivr.db.recordings import reseal
from ivr.recordings.service import Mismatch
from ivr.review.trail import log_events as audit_log
from ivr.review.trail import verify as audit_verify
from ivr.sim.fake_asterisk import CallerScript, Channel
from tests.support.recordings import (
    ALICE,
    age,
    routed_and_ended,
    row,
    spool_failopen,
    storage_cfg,
    write_wav,
)
from tests.support.service import OPEN_TIME, Service


async def test_a_finished_call_is_stored_verified_and_removed_from_the_spool(
    make_service: Any, tmp_path: Path
) -> None:
    svc: Service = await make_service(storage_cfg(tmp_path))
    call_id = await routed_and_ended(svc)
    spool = Path(svc.cfg.recording.spool_dir)
    wav = spool / f"{call_id}.wav"
    data = write_wav(wav)
    age(wav, svc, 1)
    await svc.app.handoff.scan_once()
    assert wav.exists()  # not settled yet (settle_s = 2)
    age(wav, svc, 5)
    await svc.app.handoff.scan_once()
    assert not wav.exists() and list(spool.iterdir()) == []
    r = await row(svc, wav.name)
    stored = svc.cfg.storage_dir() / "2026/11/24" / wav.name
    assert (r["state"], r["storage_uri"]) == ("complete", f"file://{stored}")
    assert (r["bytes"], r["sha256"]) == (len(data), hashlib.sha256(data).hexdigest())
    assert (r["call_id"], r["caller"], r["duration_s"]) == (call_id, "+81312345678", 0.0)
    assert r["retain_until"] == r["started_at"] + timedelta(days=365)
    assert stored.read_bytes() == data and oct(stored.stat().st_mode & 0o777) == "0o640"
    assert [p.name for p in stored.parent.iterdir()] == [wav.name]  # no temporary left

    out = tmp_path / "out.wav"
    got = await svc.app.recordings.export(ALICE, wav.name, "out.wav", out, "for the police report")
    assert out.read_bytes() == data and got.sha256 == r["sha256"]
    [ev] = [e for e in await audit_log(svc.engine) if e.action == "rec-export"]
    assert (ev.actor, ev.entry_id) == ("alice", None) and "out.wav" in ev.reason
    with pytest.raises(FileExistsError):
        await svc.app.recordings.export(ALICE, wav.name, "out.wav", out)


async def test_a_call_still_in_progress_is_not_taken(make_service: Any, tmp_path: Path) -> None:
    svc: Service = await make_service(storage_cfg(tmp_path))
    rec = await svc.fake.call(Channel(uniqueid="1.1"), CallerScript(["1"]))
    await svc.app.journal.flush()
    wav = Path(svc.cfg.recording.spool_dir) / f"{rec.variables['IVR_CALL_ID']}.wav"
    write_wav(wav)
    age(wav, svc, 60)  # quiet for a minute, but the call has not ended: wait for idle_s
    await svc.app.handoff.scan_once()
    assert wav.exists()
    age(wav, svc, 700)
    await svc.app.handoff.scan_once()
    assert not wav.exists()


async def test_files_not_named_by_us_are_left_alone(make_service: Any, tmp_path: Path) -> None:
    svc: Service = await make_service(storage_cfg(tmp_path))
    spool = Path(svc.cfg.recording.spool_dir)
    for name in ("notes.txt", "../x.wav", "a b.wav", "-x.wav"):
        p = spool / name.replace("/", "_")
        p.write_bytes(b"x")
        age(p, svc, 10_000)
    await svc.app.handoff.scan_once()
    assert len(list(spool.iterdir())) == 4
    async with svc.engine.connect() as conn:
        assert (await conn.execute(select(recordings))).all() == []


@pytest.mark.parametrize("state", ["spooled", "stored", "verified"])
async def test_hand_off_resumes_from_any_step(
    make_service: Any, tmp_path: Path, state: str
) -> None:
    svc: Service = await make_service(storage_cfg(tmp_path))
    spool = Path(svc.cfg.recording.spool_dir)
    wav = spool / "failopen-1795.7.wav"
    data = write_wav(wav)
    age(wav, svc, 1000)
    await svc.app.handoff.scan_once()
    r = await row(svc, wav.name)
    assert r["state"] == "complete"
    # Put the world back as a crash at `state` would have left it, and scan again.
    stored = Path(r["storage_uri"].removeprefix("file://"))
    wav.write_bytes(data)
    if state == "spooled":
        stored.unlink()
    async with svc.engine.begin() as conn:
        where = recordings.c.name == wav.name
        await conn.execute(update(recordings).where(where).values(state=state))
        await reseal(conn, svc.app.seals, where)  # the service sealed each step it took
    await svc.app.handoff.scan_once()
    assert (await row(svc, wav.name))["state"] == "complete"
    assert not wav.exists() and stored.read_bytes() == data


async def test_a_corrupted_stored_copy_is_reported_and_never_exported(
    make_service: Any, tmp_path: Path
) -> None:
    svc: Service = await make_service(storage_cfg(tmp_path))
    spool_failopen(svc, 3)
    await svc.app.handoff.scan_once()
    bad = await row(svc, "failopen-1795.1.wav")
    path = Path(bad["storage_uri"].removeprefix("file://"))
    blob = bytearray(path.read_bytes())
    blob[100] ^= 0xFF  # one flipped byte, same size
    path.write_bytes(bytes(blob))
    checked = await svc.app.recordings.verify()
    assert [(c.name, c.ok) for c in checked if not c.ok] == [("failopen-1795.1.wav", False)]
    assert len(checked) == 3
    out = tmp_path / "x.wav"
    with pytest.raises(Mismatch, match="not exported"):
        await svc.app.recordings.export(ALICE, "failopen-1795.1.wav", "x.wav", out)
    assert not out.exists()


async def test_purge_never_deletes_a_held_recording_and_audits_each_deletion(
    make_service: Any, tmp_path: Path
) -> None:
    svc: Service = await make_service(storage_cfg(tmp_path, retention_days=30))
    names = list(spool_failopen(svc, 4))
    await svc.app.handoff.scan_once()
    await svc.app.recordings.set_hold(ALICE, names[0], True, "complaint pending")
    with pytest.raises(Conflict):
        await svc.app.recordings.set_hold(ALICE, names[0], True, "again")
    svc.clock.at += timedelta(days=29)
    assert (await svc.app.recordings.purge(Actor("system"))).deleted == []
    svc.clock.at += timedelta(days=2)
    dry = await svc.app.recordings.purge(Actor("system"), dry_run=True)
    assert sorted(dry.deleted) == names[1:]
    assert [(await row(svc, n))["state"] for n in names] == ["complete"] * 4
    done = await svc.app.recordings.purge(Actor("system"))
    assert sorted(done.deleted) == names[1:]
    kept = await row(svc, names[0])
    assert kept["state"] == "complete" and Path(kept["storage_uri"][7:]).exists()
    for n in names[1:]:
        r = await row(svc, n)
        assert r["state"] == "purged" and not Path(r["storage_uri"][7:]).exists()
    events = [e for e in await audit_log(svc.engine) if e.action.startswith("rec-")]
    assert [e.action for e in events] == ["rec-hold", *["rec-purge"] * 3]
    assert {e.snapshot.split('"name":"')[1].split('"')[0] for e in events[1:]} == set(names[1:])
    assert (await audit_verify(svc.engine, svc.app.seals)).ok
    # Released, it goes at the next purge.
    await svc.app.recordings.set_hold(ALICE, names[0], False, "complaint closed")
    assert (await svc.app.recordings.purge(Actor("system"))).deleted == [names[0]]


async def test_a_hold_lifted_behind_the_service_fails_verify_and_purge(
    make_service: Any, tmp_path: Path
) -> None:
    """Finding 5: with database access, someone lifts a legal hold and back-dates retention
    by SQL. The recording's seal no longer matches: verify says so, and purge keeps it."""
    svc: Service = await make_service(storage_cfg(tmp_path, retention_days=30))
    names = list(spool_failopen(svc, 2))
    await svc.app.handoff.scan_once()
    await svc.app.recordings.set_hold(ALICE, names[0], True, "complaint pending")
    assert (await audit_verify(svc.engine, svc.app.seals)).ok
    async with svc.engine.begin() as conn:
        await conn.execute(
            update(recordings)
            .where(recordings.c.name == names[0])
            .values(legal_hold=False, retain_until=OPEN_TIME - timedelta(days=1))
        )
    verdict = await audit_verify(svc.engine, svc.app.seals)
    assert verdict.problem is None and verdict.rows == [
        f"recording {names[0]}: location, hash, state, hold or retention differs from its seal"
    ]
    svc.clock.at += timedelta(days=31)
    done = await svc.app.recordings.purge(Actor("system"))
    assert sorted(done.deleted) == [names[1]]
    assert done.failed == [
        (names[0], "its hold, retention or location differs from its seal: not deleted")
    ]
    kept = await row(svc, names[0])
    assert kept["state"] == "complete" and Path(kept["storage_uri"][7:]).exists()
    with pytest.raises(Mismatch, match="differs from its seal"):
        await svc.app.recordings.set_hold(ALICE, names[0], True, "again")
    # Talk time is sealed the same way.
    call_id = await routed_and_ended(svc)
    async with svc.engine.begin() as conn:
        await conn.execute(update(calls).where(calls.c.call_id == call_id).values(talk_s=86400))
    verdict = await audit_verify(svc.engine, svc.app.seals)
    assert f"call {call_id}: talk time differs from its seal" in verdict.rows


async def test_a_harassment_hold_reaches_the_recording(make_service: Any, tmp_path: Path) -> None:
    svc: Service = await make_service(storage_cfg(tmp_path))
    call_id = await routed_and_ended(svc)
    wav = Path(svc.cfg.recording.spool_dir) / f"{call_id}.wav"
    write_wav(wav)
    age(wav, svc, 10)
    await svc.app.handoff.scan_once()
    async with svc.engine.begin() as conn:
        from ivr.db.calls import hold

        await hold(conn, call_id, "harassment end by agent", "harassment", svc.app.seals)
        assert (await conn.execute(select(calls.c.legal_hold))).scalar() is True
    r = await row(svc, wav.name)
    assert (r["legal_hold"], r["hold_note"]) == (True, "harassment end by agent")


async def test_a_stored_recording_is_valid_blocklist_evidence(
    make_service: Any, tmp_path: Path
) -> None:
    from ivr.review.service import Proposal

    svc: Service = await make_service(storage_cfg(tmp_path))
    wav = Path(svc.cfg.recording.spool_dir) / "failopen-1795.3.wav"
    write_wav(wav)
    age(wav, svc, 1000)
    await svc.app.handoff.scan_once()
    proposed = await svc.app.blocklist.propose(
        ALICE,
        Proposal(number="0312345678", category="threats", note="x", evidence=(wav.name,)),
    )
    assert proposed.entry["evidence"] == f'["{wav.name}"]'
    with pytest.raises(Exception, match=r"no call or recording with id: nope\.wav"):
        await svc.app.blocklist.propose(
            ALICE,
            Proposal(number="0399999999", category="threats", note="x", evidence=("nope.wav",)),
        )


async def test_a_full_spool_raises_one_alert(make_service: Any, tmp_path: Path) -> None:
    # A broker that is not there: alerts stay queued where the test can read them.
    cfg = storage_cfg(tmp_path, spool_alert_percent=0.001)
    cfg["mqtt"] = {"host": "127.0.0.1", "port": 9, "retry_max_s": 600}
    svc: Service = await make_service(cfg)
    await svc.app.handoff.scan_once()
    await svc.app.handoff.scan_once()
    queued = [a for a in svc.app.alerts._queue if a.type.value == "spool-usage"]
    assert len(queued) == 1  # raised when it crosses the threshold, not on every scan
    assert queued[0].details["spool"] == svc.cfg.recording.spool_dir
    assert 0 < float(queued[0].details["percent"] or 0) <= 100


async def test_a_file_that_grows_after_it_was_hashed_is_hashed_again(
    make_service: Any, tmp_path: Path
) -> None:
    svc: Service = await make_service(storage_cfg(tmp_path))
    wav = Path(svc.cfg.recording.spool_dir) / "failopen-1795.5.wav"
    write_wav(wav)
    age(wav, svc, 1000)
    await svc.app.handoff._adopt()  # hashed and spooled, not stored yet
    with wav.open("ab") as fh:
        fh.write(b"more audio")  # Asterisk was still writing after all
    data = wav.read_bytes()
    await svc.app.handoff.scan_once()
    r = await row(svc, wav.name)
    assert (r["state"], r["bytes"], r["attempts"]) == ("spooled", len(data), 0)
    assert r["sha256"] == hashlib.sha256(data).hexdigest()
    # Nothing was stored, not even a temporary file.
    assert not [p for p in svc.cfg.storage_dir().rglob("*") if p.is_file()]
    svc.clock.at += timedelta(seconds=svc.cfg.storage.settle_s)
    await svc.app.handoff.scan_once()
    r = await row(svc, wav.name)
    assert r["state"] == "complete"
    assert Path(r["storage_uri"].removeprefix("file://")).read_bytes() == data
