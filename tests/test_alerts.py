"""Supervisor alerts over MQTT against a real broker (amqtt) started by the tests."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import insert

from ivr.db.models import blocklist_entries
from ivr.sim.fake_asterisk import CallerScript, Channel
from tests.support.alerts import mqtt, subscribed
from tests.support.caps import CAPS, hang_up
from tests.support.mqtt import Broker
from tests.support.servers import Gate
from tests.support.service import OPEN_TIME, Service

FIELDS = {"type", "call_id", "caller", "elapsed_s", "cap_s", "at", "id"}


async def test_every_alert_type_arrives_with_the_documented_payload(
    make_service: Any, broker: Broker, fake_ami: Any
) -> None:
    svc: Service = await make_service(
        {
            "caps": {**CAPS, "per_call_minutes": 0.05, "warning_lead_s": 1, "repeat_threshold": 2},
            "screening": {"unavailable": "reject"},
            **mqtt(broker.port),
            **fake_ami.config,
        }
    )
    async with subscribed(broker.port) as inbox:
        async with svc.engine.begin() as conn:
            await conn.execute(
                insert(blocklist_entries).values(
                    pattern="+81311112222",
                    is_prefix=False,
                    status="approved",
                    action="reject",
                    category="threats",
                    note="",
                    evidence="[]",
                    proposed_by="alice",
                    proposed_at=OPEN_TIME,
                )
            )
        fake = svc.fake
        await fake.call(Channel(callerid="anonymous", callingpres=35, uniqueid="1.1"))
        await fake.call(Channel(callerid="unknown", callingpres=67, uniqueid="1.2"))
        await fake.call(Channel(callerid="0311112222", uniqueid="1.3"))
        # A routed call with a 3-second cap: warned at 2 s, cut at 3 s.
        rec = await fake.call(Channel(uniqueid="1.4"), CallerScript(digits=["1"]))
        capped = rec.variables["IVR_CALL_ID"]
        assert rec.variables["IVR_LIMIT_MS"] == "3000"
        warning, reached = await inbox.wait("cap-warning"), await inbox.wait("cap-reached")
        await hang_up(svc, capped, "3")
        # The same caller twice more: the third call trips the repeat limit (threshold 2).
        await fake.call(Channel(uniqueid="1.5"), CallerScript(digits=["1"]))
        await svc.app.journal.flush()
        await fake.call(Channel(uniqueid="1.6"), CallerScript(digits=["1"]))
        # Another caller who spent the day's budget.
        first = await fake.call(Channel(callerid="0399998888", uniqueid="1.7"), CallerScript(["1"]))
        await hang_up(svc, first.variables["IVR_CALL_ID"], "3600")
        await fake.call(Channel(callerid="0399998888", uniqueid="1.8"))
        # The agent ends a live call for harassment.
        live = await fake.call(Channel(callerid="0355556666", uniqueid="1.9"), CallerScript(["1"]))
        fake_ami.server.channels = [{"Channel": "Local/s@ivr-in-00000002;2", "Uniqueid": "1.9"}]
        await svc.app.journal.flush()
        await fake.call(
            Channel(
                script="harassment",
                args=(live.variables["IVR_CALL_ID"], live.variables["IVR_TOKEN"]),
                uniqueid="2.1",
            )
        )
        got = {k: (await inbox.wait(k))[0] for k in KINDS}

    for kind, p in got.items():
        assert FIELDS <= set(p), kind
        assert p["at"].endswith("Z")
    topics = {t for t, _, _ in inbox.messages}
    assert topics == {f"ivr/alerts/{k}" for k in KINDS}
    assert {q for _, _, q in inbox.messages} == {1}
    assert got["withheld"]["caller"] is None and got["unavailable"]["caller"] is None
    assert got["blocked"]["caller"] == "+81311112222" and got["blocked"]["entry_id"] == 1
    assert (warning[0]["call_id"], warning[0]["elapsed_s"], warning[0]["cap_s"]) == (capped, 2, 3)
    assert (reached[0]["call_id"], reached[0]["elapsed_s"], reached[0]["cap_s"]) == (capped, 3, 3)
    assert warning[0]["caller"] == "+81312345678"
    rep = got["repeat-limit"]
    assert (rep["calls_in_window"], rep["action"], rep["route"]) == (2, "route", "operator")
    daily = got["daily-limit"]
    assert (daily["caller"], daily["elapsed_s"], daily["cap_s"]) == ("+81399998888", 3600, 3600)
    hx = got["harassment-end"]
    assert (hx["caller"], hx["category"], hx["call_id"]) == (
        "+81355556666",
        "abusive-language",
        live.variables["IVR_CALL_ID"],
    )


KINDS = (
    "withheld",
    "unavailable",
    "blocked",
    "cap-warning",
    "cap-reached",
    "repeat-limit",
    "daily-limit",
    "harassment-end",
)


async def test_alerts_raised_while_the_broker_is_down_arrive_after_it_returns(
    make_service: Any, broker: Broker
) -> None:
    gate = Gate(broker.port)
    await gate.start()
    svc: Service = await make_service(mqtt(gate.port))
    alerts = svc.app.alerts
    async with subscribed(broker.port) as inbox:
        await svc.fake.call(Channel(callerid="anonymous", callingpres=35, uniqueid="1.1"))
        await inbox.wait("withheld", 1)
    # The broker goes away; the service keeps taking calls and queues their alerts.
    gate.open = False
    await broker.stop()
    gate.cut()
    for n in range(5):
        svc.clock.at += timedelta(minutes=1)
        await svc.fake.call(Channel(callerid="anonymous", callingpres=35, uniqueid=f"2.{n}"))
    assert alerts.backlog == 5 and not alerts.connected
    await broker.start()
    async with subscribed(broker.port) as inbox:
        gate.open = True  # the service reaches the broker again only once we listen
        got = await inbox.wait("withheld", 5, timeout=15)
    await alerts.flush(5)
    assert alerts.backlog == 0 and alerts.dropped == 0
    assert len({p["id"] for p in got}) == 5
    assert [p["at"] for p in got] == sorted(p["at"] for p in got)  # in order
    await gate.close()


async def test_a_full_alert_queue_drops_the_oldest_and_counts(make_service: Any) -> None:
    svc: Service = await make_service(
        {"mqtt": {"host": "127.0.0.1", "port": 9, "queue_size": 3, "retry_max_s": 60}}
    )
    for n in range(5):
        await svc.fake.call(Channel(callerid="anonymous", callingpres=35, uniqueid=f"3.{n}"))
    alerts = svc.app.alerts
    assert (alerts.backlog, alerts.dropped) == (3, 2)
    assert [a.call_id for a in alerts._queue] == ["call0003", "call0004", "call0005"]


async def test_without_a_broker_alerts_are_logged(
    make_service: Any, caplog: pytest.LogCaptureFixture
) -> None:
    svc: Service = await make_service()
    await svc.fake.call(Channel(callerid="anonymous", callingpres=35, uniqueid="4.1"))
    line = next(r.getMessage() for r in caplog.records if r.name == "ivr.alerts")
    assert line.startswith("alert withheld {")
    assert json.loads(line.split(" ", 2)[2])["call_id"] == "call0001"
    assert svc.app.alerts.backlog == 0
