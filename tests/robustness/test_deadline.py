"""A handler over its deadline sets the fail-open decision, and the dialplan's default applies."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest

from ivr.agi.errors import AgiDeadline
from ivr.agi.server import AgiServer
from ivr.agi.session import AgiSession
from ivr.db.calls import get_call
from ivr.sim.fake_asterisk import CallerScript, Channel
from tests.support.dialplan import walk
from tests.support.service import Service

FAILOPEN = ("Goto", "ivr-guard-failopen,s,1")


def test_the_walker_follows_the_shipped_dialplan() -> None:
    routed = {
        "IVR_DECISION": "route",
        "IVR_DIAL": "PJSIP/sales",
        "IVR_DIAL_TIMEOUT": "30",
        "IVR_LIMIT_MS": "3600000",
        "IVR_WARNING_MS": "60000",
        "CHANNEL": "PJSIP/trunk-00000001",
    }
    # U(): the agent's leg marks the answer on the caller's channel and gets the feature code.
    u = "U(ivr-guard-answered^PJSIP/trunk-00000001)"
    assert walk(routed) == ("Dial", f"PJSIP/sales,30,L(3600000:60000){u}")
    assert walk({**routed, "IVR_WARNING_MS": ""}) == ("Dial", f"PJSIP/sales,30,L(3600000){u}")
    assert walk({**routed, "IVR_LIMIT_MS": ""}) == ("Dial", f"PJSIP/sales,30,{u}")
    assert walk({"IVR_DECISION": "hangup"}) == ("Hangup", "")
    assert walk({}) == FAILOPEN  # the service never set a decision
    assert walk(routed, agistatus="FAILURE") == FAILOPEN  # the service was not reachable


async def test_a_handler_over_its_deadline_fails_open(
    make_service: Any, caplog: pytest.LogCaptureFixture
) -> None:
    svc: Service = await make_service({"agi": {"handler_deadline_s": 0.5}})
    svc.fake.audio_delay = 0.2  # the notices take longer than the whole deadline
    with caplog.at_level(logging.ERROR):
        rec = await svc.fake.call(Channel(), CallerScript(digits=["1"]))
    # The command under way when the deadline passed got its reply before anything else went.
    assert rec.commands[-2].startswith("STREAM FILE") and rec.commands[-1] == (
        'EXEC MSet "IVR_REASON=deadline,IVR_DECISION=failopen"'
    )
    assert all(len(r) == 1 and r[0].startswith("200 ") for r in rec.replies)
    assert walk(rec.variables) == FAILOPEN
    assert "not decided within agi.handler_deadline_s (0.5 s): failing open" in caplog.text
    await svc.app.journal.flush()
    async with svc.engine.connect() as conn:
        r = await get_call(conn, "call0001")
    assert r is not None
    assert (r["decision"], r["reason"], r["end_reason"]) == ("failopen", "deadline", "ivr-ended")
    assert svc.app.agi.active_sessions == 0


async def test_a_hang_up_while_failing_open_is_an_abandoned_call(make_service: Any) -> None:
    svc: Service = await make_service({"agi": {"handler_deadline_s": 0.3}})
    svc.fake.audio_delay = 0.2
    rec = await svc.fake.call(Channel(), CallerScript(digits=["1"], hangup_after_commands=3))
    # The variables reached a dead channel (EXEC is allowed there), where no dialplan reads them.
    assert rec.hung_up and rec.replies[-1][0] == "HANGUP"
    await svc.app.journal.flush()
    async with svc.engine.connect() as conn:
        r = await get_call(conn, "call0001")
    assert r is not None and (r["decision"], r["end_reason"]) == ("abandoned", "caller-hangup")


class _Limited:
    """A handler that gives itself `limit` seconds, then runs `body`; records what happened."""

    def __init__(self, limit: float, body: Any) -> None:
        self.limit, self.body = limit, body
        self.events: list[tuple[str, float]] = []
        self.done = asyncio.Event()

    async def __call__(self, session: AgiSession) -> None:
        t0 = time.monotonic()
        session.limit(self.limit)
        try:
            await self.body(session)
        except AgiDeadline:
            self.events.append(("deadline", time.monotonic() - t0))
            session.limit(None)
            await session.settle()
            await session.verbose("after the deadline")
            self.events.append(("verbose sent", time.monotonic() - t0))
        finally:
            self.done.set()


async def _connect(handler: _Limited) -> tuple[AgiServer, asyncio.StreamReader, Any]:
    server = AgiServer({"inbound": handler}, allow=["127.0.0.1/32"])
    await server.start("127.0.0.1", 0)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(Channel().env_block("127.0.0.1", server.port))
    await writer.drain()
    return server, reader, writer


async def _verbose_after_the_deadline(
    handler: _Limited, reader: asyncio.StreamReader, writer: Any
) -> None:
    """The next line is the handler's command after its deadline; answer it, see it end."""
    line = await asyncio.wait_for(reader.readline(), 2)
    assert line == b'VERBOSE "after the deadline" 1\n'
    writer.write(b"200 result=1\n")
    await asyncio.wait_for(handler.done.wait(), 2)
    assert [e for e, _ in handler.events] == ["deadline", "verbose sent"]


async def test_the_handler_deadline_cuts_a_wait_and_its_late_reply_is_settled() -> None:
    """Past `limit`, the command awaited raises AgiDeadline though its own deadline (media,
    300 s) is far off; the connection stays open and its reply is awaited before the next
    command goes out."""

    async def play(session: AgiSession) -> None:
        await session.stream_file("ivr-guard/ja/recording-notice")

    handler = _Limited(0.2, play)
    server, reader, writer = await _connect(handler)
    try:
        line = await asyncio.wait_for(reader.readline(), 2)
        assert line.startswith(b"STREAM FILE")
        await asyncio.sleep(0.5)
        assert handler.events and handler.events[0][0] == "deadline"
        assert 0.15 < handler.events[0][1] < 0.45
        assert not reader.at_eof() and len(handler.events) == 1  # waiting for the owed reply
        writer.write(b"200 result=0 endpos=1000\n")
        await _verbose_after_the_deadline(handler, reader, writer)
    finally:
        writer.close()
        await server.close(grace=1)


async def test_a_command_after_the_handler_deadline_is_not_sent() -> None:
    async def slow_then_answer(session: AgiSession) -> None:
        await asyncio.sleep(0.3)  # past the 0.1 s limit with nothing awaited from Asterisk
        await session.answer()

    handler = _Limited(0.1, slow_then_answer)
    server, reader, writer = await _connect(handler)
    try:
        await _verbose_after_the_deadline(handler, reader, writer)  # ANSWER never went out
    finally:
        writer.close()
        await server.close(grace=1)
