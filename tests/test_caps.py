"""Caps through the fake Asterisk: limits, the daily budget, repeat calls, exempt callers, and
end-of-call accounting from the hang-up handler and AMI events."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from ivr.sim.fake_ami import frame
from ivr.sim.fake_asterisk import CallerScript, Channel
from tests.support.caps import CAPS, hang_up
from tests.support.inbound import GET_MENU, row, stream
from tests.support.service import OPEN_TIME, Service

NUMBER = "0312345678"
ALWAYS_OPEN: dict[str, Any] = {
    **{day: ["00:00-24:00"] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
    "public_holidays": False,
    "closed_dates": [],
}


async def call(svc: Service, n: int, *, number: str = NUMBER, digits: str = "1") -> Any:
    return await svc.fake.call(
        Channel(callerid=number, uniqueid=f"1795352271.{n}"), CallerScript(digits=[digits])
    )


def limits(rec: Any) -> tuple[str, str]:
    return rec.variables["IVR_LIMIT_MS"], rec.variables["IVR_WARNING_MS"]


async def test_a_call_gets_the_per_call_cap(make_service: Any) -> None:
    svc: Service = await make_service({"caps": {**CAPS, "per_call_minutes": 20}})
    rec = await call(svc, 1)
    assert limits(rec) == ("1200000", "60000")
    assert rec.variables["IVR_SOUNDS"] == "ivr-guard/ja"
    assert (await row(svc, "call0001"))["limit_s"] == 1200


async def test_the_daily_budget_shrinks_by_each_calls_real_talk_time(make_service: Any) -> None:
    svc: Service = await make_service({"caps": CAPS})
    rec = await call(svc, 1)
    assert limits(rec) == ("3600000", "60000")
    await hang_up(svc, "call0001", "1500")  # 25 minutes with the agent
    r = await row(svc, "call0001")
    assert (r["talk_s"], r["talk_source"], r["end_reason"]) == (1500, "hangup-handler", "completed")

    svc.clock.at += timedelta(hours=1)
    rec = await call(svc, 2)
    assert limits(rec) == ("2100000", "60000")  # 35 minutes left today
    await hang_up(svc, "call0002", "2000")

    svc.clock.at += timedelta(hours=1)
    rec = await call(svc, 3)
    assert limits(rec) == ("100000", "50000")  # 100 s left: warned half-way
    await hang_up(svc, "call0003", "100")
    assert (await row(svc, "call0003"))["end_reason"] == "cap-reached"

    svc.clock.at += timedelta(hours=1)
    rec = await call(svc, 4)
    assert rec.commands == ["ANSWER", stream("daily-limit-reached"), *rec.commands[2:]]
    assert GET_MENU not in rec.commands
    assert (rec.variables["IVR_DECISION"], rec.variables["IVR_REASON"]) == (
        "hangup",
        "daily-limit",
    )
    assert limits(rec) == ("", "")
    r = await row(svc, "call0004")
    assert (r["decision"], r["reason"], r["limit_s"]) == ("hangup", "daily-limit", None)

    # Another number is not affected; the next calendar day (Tokyo) starts afresh.
    assert limits(await call(svc, 5, number="0398765432")) == ("3600000", "60000")
    svc.clock.at = OPEN_TIME + timedelta(days=1)
    assert limits(await call(svc, 6)) == ("3600000", "60000")


async def test_an_exhausted_budget_may_go_to_an_escalation_route(make_service: Any) -> None:
    svc: Service = await make_service({"caps": {**CAPS, "exhausted_route": "operator"}})
    await call(svc, 1)
    await hang_up(svc, "call0001", "3600")
    rec = await call(svc, 2)
    assert stream("daily-limit-reached") in rec.commands
    assert (rec.variables["IVR_DECISION"], rec.variables["IVR_ROUTE"]) == ("route", "operator")
    assert limits(rec) == ("3600000", "60000")  # the escalation team gets the per-call cap


@pytest.mark.parametrize("action", ["route", "refuse"])
async def test_the_fourth_call_in_24_hours_takes_the_repeat_action(
    make_service: Any, action: str
) -> None:
    svc: Service = await make_service(
        {"caps": {**CAPS, "repeat_threshold": 3, "repeat_action": action}, "hours": ALWAYS_OPEN}
    )
    for n in range(1, 4):
        rec = await call(svc, n)
        assert rec.variables["IVR_REASON"] == "menu"
        await svc.app.journal.flush()
        svc.clock.at += timedelta(hours=7)
    rec = await call(svc, 4)  # 21 h after the first
    assert rec.variables["IVR_REASON"] == "repeat-calls"
    assert GET_MENU not in rec.commands
    if action == "route":
        assert rec.commands[:5] == [
            "ANSWER",
            'EXEC MixMonitor "/var/spool/asterisk/monitor/ivr-guard/call0004.wav"',
            stream("recording-notice"),
            stream("harassment-policy"),
            stream("repeat-limit"),
        ]
        assert (rec.variables["IVR_DECISION"], rec.variables["IVR_ROUTE"]) == (
            "route",
            "operator",
        )
        assert limits(rec) == ("3600000", "60000")
    else:
        assert rec.commands[:2] == ["ANSWER", stream("repeat-refused")]
        assert rec.variables["IVR_DECISION"] == "hangup"
    await svc.app.journal.flush()
    # 25 h after the first call only calls 2, 3 and 4 are in the window: still tripped;
    # a day later the window has emptied.
    svc.clock.at += timedelta(days=2)
    assert (await call(svc, 5)).variables["IVR_REASON"] == "menu"


async def test_exempt_numbers_are_never_capped(make_service: Any) -> None:
    svc: Service = await make_service(
        {"caps": {**CAPS, "repeat_threshold": 1, "exempt_numbers": ["03-1234-5678"]}}
    )
    for n in range(1, 4):
        rec = await call(svc, n)
        assert limits(rec) == ("", "")
        assert rec.variables["IVR_REASON"] == "menu"
        await hang_up(svc, f"call000{n}", "3600")
    assert (await row(svc, "call0003"))["limit_s"] is None
    assert "call0003" not in {w.call_id for w in svc.app.monitor._by_id.values()}


async def test_a_duplicated_hangup_or_bridge_report_counts_once(
    make_service: Any, fake_ami: Any
) -> None:
    svc = await with_ami(make_service, fake_ami)
    rec = await call(svc, 1)
    assert rec.variables["IVR_DECISION"] == "route"
    await svc.app.journal.flush()
    await hang_up(svc, "call0001", "600")
    await hang_up(svc, "call0001", "600")  # the handler ran twice
    uid = "1795352271.1"
    events = bridge_event(uid, "BridgeEnter") + bridge_event(uid, "BridgeLeave")
    await fake_ami.server.send(events + hangup_event(uid) + hangup_event(uid))  # and AMI, twice
    await until(lambda: svc.app.journal.written >= 3)
    await svc.app.journal.flush()
    r = await row(svc, "call0001")
    assert (r["talk_s"], r["talk_source"]) == (600, "hangup-handler")
    rec = await call(svc, 2)
    assert limits(rec) == ("3000000", "60000")  # 60 min less the 10 counted once


async def test_bridge_events_count_when_the_hangup_handler_never_reported(
    make_service: Any, fake_ami: Any
) -> None:
    svc = await with_ami(make_service, fake_ami)
    await call(svc, 1)
    await svc.app.journal.flush()
    uid = "1795352271.1"
    await bridged_for(svc, fake_ami, uid, 900)  # 15 minutes with the agent
    await fake_ami.server.send(hangup_event(uid))
    await until(lambda: len(svc.app.monitor) == 0)
    await until_row(svc, "call0001", lambda r: r["talk_s"] is not None)
    r = await row(svc, "call0001")
    assert (r["talk_s"], r["talk_source"], r["end_reason"]) == (900, "ami-bridge", "hangup-16")
    await hang_up(svc, "call0001", "880")  # a late handler report changes nothing
    assert (await row(svc, "call0001"))["talk_s"] == 900


async def with_ami(make_service: Any, fake_ami: Any) -> Service:
    """The service with [ami] set, once it has logged in to the fake AMI."""
    svc: Service = await make_service({"caps": CAPS, **fake_ami.config})
    assert svc.app.ami is not None
    await svc.app.ami.wait_connected(5)
    return svc


async def bridged_for(svc: Service, fake_ami: Any, uniqueid: str, seconds: float) -> None:
    """The caller's channel is bridged with the agent for `seconds` of the service's clock."""
    await fake_ami.server.send(bridge_event(uniqueid, "BridgeEnter"))
    await until(lambda: uniqueid in svc.app.reactor._talk)
    svc.clock.at += timedelta(seconds=seconds)
    await fake_ami.server.send(bridge_event(uniqueid, "BridgeLeave"))


def bridge_event(uniqueid: str, name: str) -> bytes:
    """`BridgeEnter` or `BridgeLeave` of the caller's channel, as Asterisk 22 sends it."""
    return frame(
        [
            ("Event", name),
            ("Privilege", "call,all"),
            ("BridgeUniqueid", "5f1b7c5e-9a59-4bd6-8a8b-3c1f0e0a0b01"),
            ("BridgeType", "basic"),
            ("Channel", "Local/s@ivr-in-00000002;2"),
            ("Uniqueid", uniqueid),
            ("Linkedid", "1795352271.0"),
        ]
    )


def hangup_event(uniqueid: str) -> bytes:
    return frame(
        [
            ("Event", "Hangup"),
            ("Privilege", "call,all"),
            ("Channel", "Local/s@ivr-in-00000002;2"),
            ("Uniqueid", uniqueid),
            ("Linkedid", "1795352271.0"),
            ("Cause", "16"),
            ("Cause-txt", "Normal Clearing"),
        ]
    )


async def until(cond: Any, timeout: float = 5.0) -> None:
    import asyncio

    async def wait() -> None:
        while not cond():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(wait(), timeout)


async def until_row(svc: Service, call_id: str, cond: Any, timeout: float = 5.0) -> None:
    import asyncio

    async def wait() -> None:
        while not cond(await row(svc, call_id)):
            await asyncio.sleep(0.02)

    await asyncio.wait_for(wait(), timeout)


async def test_calls_that_ended_while_ami_was_away_are_closed_on_reconnect(
    make_service: Any, fake_ami: Any
) -> None:
    svc = await with_ami(make_service, fake_ami)
    await call(svc, 1)
    await call(svc, 2, number="0398765432")
    await svc.app.journal.flush()
    assert svc.app.monitor.uniqueids() == {"1795352271.1", "1795352271.2"}
    # Asterisk restarts; call 1 ended meanwhile, call 2 is still up.
    fake_ami.server.channels = [{"Channel": "PJSIP/trunk-00000002", "Uniqueid": "1795352271.2"}]
    await fake_ami.server.drop_all()
    await until(lambda: svc.app.reactor.resyncs == 2)
    assert svc.app.monitor.uniqueids() == {"1795352271.2"}
    await until_row(svc, "call0001", lambda r: r["ended_at"] is not None)
    r1, r2 = await row(svc, "call0001"), await row(svc, "call0002")
    assert (r1["end_reason"], r1["talk_s"]) == ("ended-unobserved", None)
    assert r2["ended_at"] is None
    # Its bridge was never seen: no talk time can be counted from AMI.
    await fake_ami.server.send(hangup_event("1795352271.1"))
    assert (await row(svc, "call0001"))["end_reason"] == "ended-unobserved"


async def test_a_call_that_left_the_agent_and_ended_unseen_is_counted_on_reconnect(
    make_service: Any, fake_ami: Any
) -> None:
    svc = await with_ami(make_service, fake_ami)
    await call(svc, 1)
    await svc.app.journal.flush()
    uid = "1795352271.1"
    await bridged_for(svc, fake_ami, uid, 120)  # then redirected to a prompt
    await until(lambda: len(svc.app.monitor) == 0)
    # AMI goes away; the caller hangs up meanwhile, so its Hangup is never seen.
    fake_ami.server.channels = []
    await fake_ami.server.drop_all()
    await until(lambda: svc.app.reactor.resyncs == 2)
    await until_row(svc, "call0001", lambda r: r["talk_s"] is not None)
    r = await row(svc, "call0001")
    assert (r["talk_s"], r["talk_source"], r["end_reason"]) == (
        120,
        "ami-bridge",
        "ended-unobserved",
    )
    assert svc.app.reactor._talk == {}


async def test_a_refused_ami_login_does_not_stop_calls(
    make_service: Any, fake_ami: Any, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    monkeypatch.setenv("IVR_AMI_SECRET", "wrong")
    svc: Service = await make_service({"caps": CAPS, **fake_ami.config})
    await until(lambda: "AMI disabled until restart" in caplog.text)
    assert "refused" in caplog.text
    rec = await call(svc, 1)
    assert rec.variables["IVR_DECISION"] == "route"
    await hang_up(svc, "call0001", "60")
    assert (await row(svc, "call0001"))["talk_s"] == 60


async def test_cap_timers_restart_when_the_agent_answers(make_service: Any, fake_ami: Any) -> None:
    import asyncio

    svc = await with_ami(make_service, fake_ami)
    await call(svc, 1)
    watch = svc.app.monitor._by_uid["1795352271.1"]
    loop = asyncio.get_running_loop()
    routed_at = loop.time()
    warn_before = watch.deadlines[0]
    assert warn_before - routed_at == pytest.approx(3540, abs=1)
    dial_end = frame(
        [
            ("Event", "DialEnd"),
            ("Privilege", "call,all"),
            ("Channel", "Local/s@ivr-in-00000002;2"),
            ("Uniqueid", "1795352271.1"),
            ("Linkedid", "1795352271.0"),
            ("DestChannel", "PJSIP/sales-00000007"),
            ("DestUniqueid", "1795352271.3"),
            ("DialStatus", "ANSWER"),
        ]
    )
    await fake_ami.server.send(dial_end)
    await until(lambda: watch.answered)
    warn, reached = watch.deadlines
    now = loop.time()
    assert warn - now == pytest.approx(3540, abs=1) and warn > warn_before
    assert reached - now == pytest.approx(3600, abs=1)
    await hang_up(svc, "call0001", "10")
    assert not svc.app.monitor.knows("1795352271.1") and watch.deadlines == ()
