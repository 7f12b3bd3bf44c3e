"""Malformed AGI traffic over raw sockets: only the bad session closes, good calls go on."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import pytest

from ivr.agi.protocol import parse_args
from ivr.sim.fake_asterisk import CallerScript, Channel
from tests.support.service import Service

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


async def test_each_command_has_its_own_deadline_from_when_it_was_sent(
    make_service: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Slow replies within their command's deadline are taken, long after the environment's
    deadline has passed; a command never answered is cut at its own deadline."""
    agi = {"environment_timeout_s": 0.3, "command_timeout_s": 0.6, "media_timeout_s": 1.0}
    svc: Service = await make_service({"agi": agi})
    reader, writer = await asyncio.open_connection("127.0.0.1", svc.app.agi.port)
    writer.write(Channel().env_block("127.0.0.1", svc.app.agi.port))
    await writer.drain()
    with caplog.at_level(logging.WARNING):
        assert await asyncio.wait_for(reader.readline(), 2) == b"ANSWER\n"
        await asyncio.sleep(0.5)  # within ANSWER's 0.6 s, past the environment's 0.3 s
        writer.write(b"200 result=0\n")
        assert (await asyncio.wait_for(reader.readline(), 2)).startswith(b"EXEC MixMonitor")
        await asyncio.sleep(0.8)  # longer than a command's deadline, within media's 1 s
        writer.write(b"200 result=0\n")
        line = await asyncio.wait_for(reader.readline(), 2)
        sent = time.monotonic()
        assert line.startswith(b'STREAM FILE "ivr-guard/ja/recording-notice"')
        assert await _read_all(reader, timeout=5) == b""  # never answered: closed
        waited = time.monotonic() - sent
        writer.close()
    assert 0.95 < waited < 3.0
    assert "no reply within 1s to b'STREAM FILE" in caplog.text
    await svc.app.journal.flush()
    assert svc.app.agi.active_sessions == 0


async def test_a_command_deadline_shorter_than_the_environments_applies(
    make_service: Any,
) -> None:
    svc: Service = await make_service(
        {"agi": {"environment_timeout_s": 5, "command_timeout_s": 0.4}}
    )
    reader, writer = await asyncio.open_connection("127.0.0.1", svc.app.agi.port)
    writer.write(Channel().env_block("127.0.0.1", svc.app.agi.port))
    await writer.drain()
    assert await asyncio.wait_for(reader.readline(), 2) == b"ANSWER\n"
    sent = time.monotonic()
    assert await _read_all(reader, timeout=4) == b""  # cut at ANSWER's 0.4 s, not at 5 s
    assert 0.35 < time.monotonic() - sent < 2.5
    writer.close()


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
    # The arguments came after the break too: asked of Asterisk.
    assert await asyncio.wait_for(reader.readline(), 2) == b"GET VARIABLE IVR_DIALLED\n"
    writer.write(b"200 result=1 (0120123456)\n")
    await writer.drain()
    assert await asyncio.wait_for(reader.readline(), 2) == b"GET VARIABLE CHANNEL(linkedid)\n"
    writer.write(b"200 result=1 (1795352271.0)\n")
    await writer.drain()
    assert await asyncio.wait_for(reader.readline(), 2) == b"ANSWER\n"
    writer.write(b"200 result=0\n")
    await writer.drain()
    assert (await asyncio.wait_for(reader.readline(), 2)).startswith(b"EXEC MixMonitor")
    writer.close()


async def _bad_peer(
    port: int, send: list[bytes], *, pause: float = 0.0, eof: bool = False
) -> tuple[bytes, float]:
    """Send `send` piece by piece (`pause` apart), half-close if `eof`; return what the server
    sent and the seconds until it closed the connection."""
    t0 = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for piece in send:
            writer.write(piece)
            await writer.drain()
            if pause:
                with contextlib.suppress(TimeoutError):
                    out = await asyncio.wait_for(reader.read(), pause)
                    return out, time.monotonic() - t0
        if eof:
            writer.write_eof()
        return await _read_all(reader, timeout=10), time.monotonic() - t0
    except ConnectionError:
        return b"", time.monotonic() - t0
    finally:
        writer.close()


async def test_only_the_bad_sessions_close_while_good_calls_complete(
    make_service: Any, caplog: pytest.LogCaptureFixture
) -> None:
    svc: Service = await make_service(
        {
            "agi": {
                "environment_timeout_s": 2.5,
                "command_timeout_s": 1,
                "max_environment_bytes": 4096,
            }
        }
    )
    port = svc.app.agi.port
    env = Channel().env_block("127.0.0.1", port)
    garbage = bytes(range(256)) * 4 + b"\r\n\x00\xff\n" + b"\x1b[2J" * 10
    slow = [bytes([b]) for b in env[:8]]  # one byte a second: never finishes in 2.5 s
    bad = {
        "oversized": _bad_peer(port, [b"agi_network: yes\nagi_x: " + b"x" * 8000 + b"\n"]),
        "unterminated": _bad_peer(port, [env[:-1]]),
        "garbage": _bad_peer(port, [garbage]),
        "garbage-lines": _bad_peer(port, [b"not an env line\n" * 20]),
        "eof-mid-environment": _bad_peer(port, [env[: len(env) // 2]], eof=True),
        "eof-after-environment": _bad_peer(port, [env], eof=True),
        "one-byte-a-second": _bad_peer(port, slow, pause=1.0),
    }
    with caplog.at_level(logging.INFO):
        bad_tasks = {name: asyncio.create_task(coro) for name, coro in bad.items()}
        t0 = time.monotonic()
        good = await asyncio.gather(
            *(
                svc.fake.call(
                    Channel(callerid=f"03{n:08d}", uniqueid=f"1795.{n}"),
                    CallerScript(digits=["1"]),
                )
                for n in range(20)
            )
        )
        good_s = time.monotonic() - t0
        results = {name: await task for name, task in bad_tasks.items()}
    said = {name: out for name, (out, _) in results.items()}
    slow_s = results["one-byte-a-second"][1]
    assert all(rec.variables["IVR_DECISION"] == "route" for rec in good)
    assert good_s < 2.0  # the good calls did not wait for the bad peers
    # The slow peer was cut at the environment deadline, though it never went quiet for long.
    assert 2.4 < slow_s < 3.5
    # Nothing is sent to a peer whose environment never arrived; after EOF only the first
    # command went out before the server saw the connection close.
    assert {name: out for name, out in said.items() if name != "eof-after-environment"} == {
        name: b"" for name in said if name != "eof-after-environment"
    }
    assert said["eof-after-environment"] in (b"", b"ANSWER\n")
    await svc.app.journal.flush()
    assert svc.app.agi.active_sessions == 0 and svc.app.agi.open_connections == 0
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    text = caplog.text
    assert "environment block over the size limit" in text
    assert "sent no complete environment in time" in text
