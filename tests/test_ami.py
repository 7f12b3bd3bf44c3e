"""The AMI client against a fake AMI server that speaks the captured Asterisk 22 protocol."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from ivr.ami.client import (
    AmiAuthError,
    AmiClient,
    AmiError,
    AmiSettings,
    AmiTimeout,
    AmiUnavailable,
)
from ivr.sim.fake_ami import FakeAmi, split_messages

RAW = Path(__file__).parent / "fixtures" / "asterisk22" / "ami-events.raw"
CAPTURED = [
    m
    for m in split_messages(RAW.read_bytes())
    if m.startswith(b"Event:")
    and not m.startswith((b"Event: FullyBooted", b"Event: SuccessfulAuth"))
]


@pytest.fixture
async def fake() -> AsyncIterator[FakeAmi]:
    server = FakeAmi("ivr", "s3cret")
    await server.start()
    yield server
    await server.close()


def settings(fake: FakeAmi, **kw: Any) -> AmiSettings:
    base: dict[str, Any] = dict(
        port=fake.port,
        username="ivr",
        secret="s3cret",
        action_timeout_s=0.5,
        ping_interval_s=0.2,
        backoff_initial_s=0.05,
        backoff_max_s=0.2,
    )
    return AmiSettings(**(base | kw))


@contextlib.asynccontextmanager
async def running(client: AmiClient) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(client.run())
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def until(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    async def poll() -> None:
        while not cond():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), timeout)


async def test_captured_events_reach_handlers(fake: FakeAmi) -> None:
    client = AmiClient(settings(fake))
    seen: list[Mapping[str, str]] = []
    hangups: list[str] = []
    client.on("*", lambda ev: None if ev["Event"] == "FullyBooted" else seen.append(ev))

    async def on_hangup(ev: Mapping[str, str]) -> None:
        hangups.append(ev["Uniqueid"])

    client.on("Hangup", on_hangup)
    async with running(client):
        await client.wait_connected(5)
        assert fake.actions[0]["Action"] == "Login" and fake.actions[0]["Events"] == "on"
        await fake.send(b"".join(CAPTURED))
        await until(lambda: len(seen) == len(CAPTURED))
    assert len(hangups) == 12
    cdrs = [e for e in seen if e["Event"] == "Cdr"]
    assert len(cdrs) == 9 and {
        "Source",
        "Duration",
        "BillableSeconds",
        "Disposition",
        "UniqueID",
    } <= set(cdrs[0])


async def test_refused_credentials_are_a_clear_error(fake: FakeAmi) -> None:
    client = AmiClient(settings(fake, secret="wrong"))
    with pytest.raises(ExceptionGroup) as info:
        await asyncio.wait_for(client.run(), 5)
    (exc,) = info.value.exceptions
    assert isinstance(exc, AmiAuthError)
    assert "login as 'ivr' refused" in str(exc) and "manager.conf" in str(exc)


async def test_reconnects_after_the_server_drops_and_keeps_handlers(fake: FakeAmi) -> None:
    client = AmiClient(settings(fake), rng=random.Random(1))
    events: list[str] = []
    logins: list[int] = []
    client.on("Hangup", lambda ev: events.append(ev["Uniqueid"]))

    async def resync(c: AmiClient) -> None:
        logins.append(c.connects)

    client.on_connect(resync)
    fake.channels = [{"Channel": "PJSIP/trunk-00000001", "Uniqueid": "1795352340.30"}]
    async with running(client):
        await client.wait_connected(5)
        await fake.drop_all()
        await until(lambda: fake.logins == 2 and client.connected)
        hangup = next(m for m in CAPTURED if m.startswith(b"Event: Hangup\r\n"))
        await fake.send(hangup)
        await until(lambda: len(events) == 1)
        resp = await client.action(
            "Redirect",
            {
                "Channel": "PJSIP/trunk-00000001",
                "Context": "ivr-guard-harassment-end",
                "Exten": "s",
                "Priority": "1",
            },
        )
        assert resp["Message"] == "Redirect successful"
        with pytest.raises(AmiError, match="Channel specified does not exist"):
            await client.action("Redirect", {"Channel": "PJSIP/gone-00000009"})
        listed = await client.action_list("CoreShowChannels")
        assert [m["Uniqueid"] for m in listed] == ["1795352340.30"]
    assert logins == [1, 2]


async def test_an_unanswered_action_times_out(fake: FakeAmi) -> None:
    client = AmiClient(settings(fake, ping_interval_s=60))
    async with running(client):
        await client.wait_connected(5)
        fake.answering = False
        with pytest.raises(AmiTimeout, match=r"Redirect: no response within 0\.5 s"):
            await client.action("Redirect", {"Channel": "PJSIP/x-1"})


async def test_the_ping_watchdog_finds_a_silent_server(fake: FakeAmi) -> None:
    client = AmiClient(settings(fake, action_timeout_s=0.2))
    async with running(client):
        await client.wait_connected(5)
        fake.answering = False
        await until(lambda: not client.connected)
        pings = [a for a in fake.actions if a.get("Action") == "Ping"]
        assert pings
        fake.answering = True
        await until(lambda: client.connected and client.connects == 2)


async def test_actions_need_a_connection_and_safe_fields(fake: FakeAmi) -> None:
    client = AmiClient(settings(fake))
    with pytest.raises(AmiUnavailable):
        await client.action("Ping")
    async with running(client):
        await client.wait_connected(5)
        before = len(fake.actions)
        with pytest.raises(ValueError, match="line break"):
            await client.action("Setvar", {"Variable": "X", "Value": "a\r\nAction: Hangup"})
        resp = await client.action("Ping")
        assert resp["Ping"] == "Pong"
        assert [a["Action"] for a in fake.actions[before:]] == ["Ping"]
        with pytest.raises(Exception, match="Invalid/unknown command: Nope"):
            await client.action("Nope")


async def test_the_event_queue_is_bounded(fake: FakeAmi) -> None:
    client = AmiClient(settings(fake, queue_size=5, ping_interval_s=60))
    release = asyncio.Event()
    got: list[str] = []

    async def slow(ev: Mapping[str, str]) -> None:
        got.append(ev["Uniqueid"])
        await release.wait()

    client.on("Hangup", slow)
    hangup = next(m for m in CAPTURED if m.startswith(b"Event: Hangup\r\n"))
    async with running(client):
        await client.wait_connected(5)
        await fake.send(hangup)
        await until(lambda: len(got) == 1)
        await fake.send(hangup * 20)
        await until(lambda: client.dropped_events == 15)
        release.set()
        await until(lambda: len(got) == 6)


async def test_retries_until_the_server_is_there() -> None:
    server = FakeAmi("ivr", "s3cret")
    await server.start()
    port = server.port
    await server.close()
    client = AmiClient(
        AmiSettings(
            port=port, username="ivr", secret="s3cret", backoff_initial_s=0.05, backoff_max_s=0.1
        )
    )
    async with running(client):
        await asyncio.sleep(0.3)
        assert not client.connected
        late = FakeAmi("ivr", "s3cret")
        await late.start(port=port)
        try:
            await client.wait_connected(5)
        finally:
            await late.close()
