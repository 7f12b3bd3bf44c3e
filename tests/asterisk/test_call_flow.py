"""The call path on a real Asterisk: notices, menu, route, recording, refusals, fail-open."""

from __future__ import annotations

import asyncio
import json
import wave
from pathlib import Path

from tests.support.asterisk import RealAsterisk
from tests.support.calls import Calls
from tests.support.guard import StartGuard


def _wav_seconds(path: Path) -> float:
    with wave.open(str(path), "rb") as w:
        return w.getnframes() / w.getframerate()


async def test_normal_call_is_announced_routed_recorded_and_handed_off(
    guard: StartGuard, calls: Calls, asterisk: RealAsterisk
) -> None:
    g = await guard()
    call = await calls.place("0312345678")
    await call.agi_command("GET DATA")
    await call.press("1")
    await call.bridged()
    assert "sales@test-agents" in call.agent
    await asyncio.sleep(3)  # the caller talks with the agent
    await call.hangup()
    bridged = await call.left_bridge()
    row = await g.call_row(call.linkedid, "talk_s")
    assert (row["decision"], row["route"], row["caller_e164"]) == (
        "route",
        "sales",
        "+81312345678",
    )
    assert row["dialled"] == "+81120123456"
    # Talk time is the time bridged with the agent, not the IVR time before it.
    assert abs(row["talk_s"] - bridged) <= 1.0, (row["talk_s"], bridged)
    commands = [e["Command"] for e in call.events("AGIExecStart")]
    played = [c for c in commands if c.startswith("STREAM FILE")]
    assert "recording-notice" in played[0] and "harassment-policy" in played[1], commands
    # The recording: handed off, verified, the spool copy removed; it starts with the notice.
    [rec] = await g.until(
        "SELECT * FROM recordings WHERE call_id = ?",
        (row["call_id"],),
        lambda r: bool(r) and r[0]["state"] == "complete",
    )
    assert not (asterisk.spool / rec["name"]).exists()
    stored = Path(rec["storage_uri"].removeprefix("file://"))
    assert stored.exists()
    assert _wav_seconds(stored) >= bridged + 2.0, (_wav_seconds(stored), bridged)


async def test_withheld_caller_is_refused_without_a_recording(
    guard: StartGuard, calls: Calls, asterisk: RealAsterisk
) -> None:
    g = await guard()
    call = await calls.place("anonymous", name="Anonymous", presentation="prohib")
    await call.ended()
    row = await g.call_row(call.linkedid, "decision")
    assert (row["decision"], row["reason"], row["recording_path"]) == ("hangup", "withheld", None)
    commands = [e["Command"] for e in call.events("AGIExecStart")]
    assert any("anonymous-rejected" in c for c in commands), commands
    assert not any("MixMonitor" in c for c in commands)
    assert not call.events("BridgeEnter", Channel=call.channel)
    assert not list(asterisk.spool.glob(f"{row['call_id']}*"))


async def test_unavailable_caller_follows_the_dialled_numbers_policy(
    guard: StartGuard, calls: Calls
) -> None:
    g = await guard({"screening": {"by_dialled": {"0120999888": {"unavailable": "reject"}}}})
    allowed = await calls.place("", dialled="0120123456")
    await allowed.agi_command("GET DATA")  # the default policy lets it reach the menu
    await allowed.hangup()
    refused = await calls.place("", dialled="0120999888")
    await refused.ended()
    row = await g.call_row(refused.linkedid, "decision")
    assert (row["caller_class"], row["decision"], row["reason"]) == (
        "unavailable",
        "hangup",
        "unavailable",
    )
    first = await g.call_row(allowed.linkedid, "decision")
    assert first["caller_class"] == "unavailable" and first["decision"] == "abandoned"


async def test_blocked_after_two_supervisors_agree(guard: StartGuard, calls: Calls) -> None:
    g = await guard()
    code, out, err = await g.ivr(
        "blocklist", "propose", "+81 3-1234-5678", "--category", "threats",
        "--note", "threatened the agent", "--json", user="sato",
    )  # fmt: skip
    assert code == 0, err
    entry = json.loads(out)["id"]
    call = await calls.place("0312345678")  # pending: not yet acting
    await call.agi_command("GET DATA")
    await call.hangup()
    code, _, err = await g.ivr("blocklist", "approve", str(entry), user="suzuki")
    assert code == 0, err
    blocked = await calls.place("0312345678")
    await blocked.ended()
    row = await g.call_row(blocked.linkedid, "decision")
    assert (row["decision"], row["reason"], row["blocklist_entry_id"]) == (
        "hangup",
        "blocked",
        entry,
    )
    commands = [e["Command"] for e in blocked.events("AGIExecStart")]
    assert any("blocked" in c for c in commands) and not any("MixMonitor" in c for c in commands)


async def test_fail_open_when_the_service_is_stopped(
    guard: StartGuard, calls: Calls, asterisk: RealAsterisk
) -> None:
    g = await guard()
    await g.stop()
    call = await calls.place("0312345678")
    await call.bridged()
    assert "operator@test-agents" in call.agent
    await call.hangup()
    log = asterisk.output()
    assert "service unavailable, AGISTATUS=FAILURE" in log
    assert "ivr-guard/ja/recording-notice" in log


async def test_hostile_caller_id_and_a_line_feed_in_the_name(
    guard: StartGuard, calls: Calls
) -> None:
    """A real LF (and a blank line) in the name must not cost the dialled number."""
    g = await guard({"screening": {"by_dialled": {"0120999888": {"unavailable": "reject"}}}})
    name = b"evil\n\nagi_arg_1: 0120123456\n\nEXEC System touch /tmp/pwned"
    call = await calls.place("1&PJSIP/x", name=name, dialled="0120999888")
    await call.ended()
    row = await g.call_row(call.linkedid, "decision")
    assert row["dialled"] == "+81120999888"
    assert row["linkedid"] == call.linkedid
    assert (row["caller_class"], row["decision"], row["reason"]) == (
        "unavailable",
        "hangup",
        "unavailable",
    )
    assert not Path("/tmp/pwned").exists()


async def test_doctor_checks_the_live_asterisk(guard: StartGuard, tmp_path: Path) -> None:
    g = await guard()
    code, out, err = await g.ivr("doctor", "--json")
    assert code == 0, out + err
    found = {f["check"]: f for f in json.loads(out)}
    assert found["AMI"]["status"] == "ok"
    assert found["dialplan spool"]["status"] == "ok", found
    await g.stop()
    # The dialplan's spool and the service's differ: doctor says so.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    other = await guard({"recording": {"spool_dir": str(elsewhere)}})
    code, out, _ = await other.ivr("doctor", "--json")
    found = {f["check"]: f for f in json.loads(out)}
    assert code != 0 and found["dialplan spool"]["status"] == "fail"
    assert "must be the same folder" in found["dialplan spool"]["detail"]
