"""The FastAGI server's limits over raw sockets: only the bad session closes."""

from __future__ import annotations

import asyncio
from typing import Any

from ivr.agi.protocol import parse_args
from ivr.sim.fake_asterisk import CallerScript, Channel
from tests.conftest import Service

FAST = {
    "agi": {"environment_timeout_s": 0.3, "command_timeout_s": 0.3, "max_environment_bytes": 4096}
}


async def _read_all(reader: asyncio.StreamReader, timeout: float = 2.0) -> bytes:
    return await asyncio.wait_for(reader.read(), timeout)


async def test_unfinished_environment_is_dropped_while_good_calls_go_on(make_service: Any) -> None:
    svc: Service = await make_service(FAST)
    reader, writer = await asyncio.open_connection("127.0.0.1", svc.app.agi.port)
    writer.write(b"agi_network: yes\nagi_network_script: inbound\n")  # never terminated
    await writer.drain()
    good = await svc.fake.call(Channel(), CallerScript(digits=["1"]))
    assert good.variables["IVR_DECISION"] == "route"
    assert await _read_all(reader) == b""  # closed by the server, nothing sent
    writer.close()


async def test_oversized_environment_is_refused(make_service: Any) -> None:
    svc: Service = await make_service(FAST)
    reader, writer = await asyncio.open_connection("127.0.0.1", svc.app.agi.port)
    writer.write(b"agi_network_script: inbound\nagi_calleridname: " + b"x" * 8000 + b"\n\n")
    await writer.drain()
    assert await _read_all(reader) == b""
    writer.close()
    assert svc.app.agi.sessions_started == 0


async def test_unanswered_command_times_out_and_closes(make_service: Any) -> None:
    svc: Service = await make_service(FAST)
    reader, writer = await asyncio.open_connection("127.0.0.1", svc.app.agi.port)
    writer.write(Channel().env_block("127.0.0.1", svc.app.agi.port))
    await writer.drain()
    first = await asyncio.wait_for(reader.readline(), 2)
    assert first == b"ANSWER\n"
    # Never answer: the server gives up after the command deadline and closes the socket.
    assert await _read_all(reader) == b""
    writer.close()
    await svc.app.journal.flush()
    assert svc.app.agi.active_sessions == 0


async def test_forged_replies_are_skipped_until_the_resync_echo(make_service: Any) -> None:
    svc: Service = await make_service()
    reader, writer = await asyncio.open_connection("127.0.0.1", svc.app.agi.port)
    env = Channel().env_block("127.0.0.1", svc.app.agi.port)
    writer.write(env + b"200 result=-1\nHANGUP-ish\n")  # lines Asterisk never sends unasked
    await writer.drain()
    line = (await asyncio.wait_for(reader.readline(), 2)).decode()
    assert line.startswith('GET FULL VARIABLE "')
    token = parse_args(line.rstrip("\n"))[3]
    # A forged reply arriving after the command went out is skipped, not paired with it.
    writer.write(b"200 result=1 (forged)\n200 result=-1 endpos=5\n")
    writer.write(f"200 result=1 ({token})\n".encode())
    await writer.drain()
    # The presentation arrived after the junk, so it is asked again.
    assert await asyncio.wait_for(reader.readline(), 2) == b"GET VARIABLE CALLERID(num-pres)\n"
    writer.write(b"200 result=1 (allowed_not_screened)\n")
    await writer.drain()
    assert await asyncio.wait_for(reader.readline(), 2) == b"ANSWER\n"
    writer.write(b"200 result=0\n")
    await writer.drain()
    assert (await asyncio.wait_for(reader.readline(), 2)).startswith(b"EXEC MixMonitor")
    writer.close()
