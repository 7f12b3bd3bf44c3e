"""The fake Asterisk answers every captured command exactly as the real Asterisk 22 did."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from ivr.sim.fake_asterisk import CallerScript, Channel, FakeAsterisk, hang_up_during

TRANSCRIPTS = Path(__file__).resolve().parent / "fixtures" / "asterisk22" / "agi-transcripts.jsonl"


def _load() -> list[dict[str, Any]]:
    return [json.loads(line) for line in TRANSCRIPTS.read_text().splitlines() if line.strip()]


def _env_values(env_raw: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in env_raw.splitlines():
        if line:
            key, _, value = line.partition(": ")
            values[key.rstrip(":") if not _ else key] = value
    return values


def _channel(env: dict[str, str]) -> Channel:
    return Channel(
        callerid=env["agi_callerid"],
        calleridname=env["agi_calleridname"],
        callingpres=int(env["agi_callingpres"]),
        script=env["agi_network_script"],
        uniqueid=env["agi_uniqueid"],
        channel=env["agi_channel"],
        language=env["agi_language"],
        dnid=env["agi_dnid"],
        context=env["agi_context"],
        extension=env["agi_extension"],
        threadid=env["agi_threadid"],
    )


def _caller(t: dict[str, Any]) -> CallerScript:
    """The caller's behaviour in the capture, read off its replies."""
    digits: list[str | None] = []
    hangup = None
    for ex in t["exchanges"]:
        reply = ex["received"][-1].strip()
        if ex["sent"].startswith(("GET DATA", "WAIT FOR DIGIT")):
            pressed = reply.removeprefix("200 result=")
            digits.append(None if pressed in (" (timeout)", "0") else pressed)
        if (
            ex["sent"].startswith("STREAM FILE")
            and reply.startswith("200 result=-1")
            and not reply.endswith("endpos=0")
        ):
            hangup = hang_up_during(ex["sent"].split()[2])
    return CallerScript(digits=digits, hangup_when=hangup)


def test_transcripts_present() -> None:
    scenarios = {t["scenario"] for t in _load()}
    assert {"normal", "anon", "hangupearly", "timeout", "inject"} <= scenarios


@pytest.mark.parametrize("index", range(len(_load())))
async def test_replay_transcript(index: int) -> None:
    t = _load()[index]
    env = _env_values(t["env_raw"])
    channel = _channel(env)
    # The environment block the fake writes is byte-for-byte the captured one.
    assert channel.env_block("127.0.0.1", 14573).decode() == t["env_raw"]

    received: list[list[str]] = []
    got_env: list[str] = []

    async def capture_server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raw = b""
        while (line := await reader.readline()) not in (b"\n", b""):
            raw += line
        got_env.append((raw + b"\n").decode())
        for ex in t["exchanges"]:
            writer.write((ex["sent"] + "\n").encode())
            await writer.drain()
            lines: list[str] = []
            while True:
                line = await asyncio.wait_for(reader.readline(), 5)
                if not line:
                    lines.append("<EOF>")
                    break
                lines.append(line.decode())
                if line.startswith(b"HANGUP"):
                    continue
                if line[:3] in (b"200", b"510", b"511") or line.startswith(b"520 End"):
                    break
            received.append(lines)
        writer.close()

    server = await asyncio.start_server(capture_server, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    fake = FakeAsterisk("127.0.0.1", port, sounds={"custom/notice": 83203, "custom/menu": 61716})
    async with server:
        await fake.call(channel, _caller(t), timeout=10)
    assert got_env[0].replace(f":{port}/", ":14573/") == t["env_raw"]
    assert received == [ex["received"] for ex in t["exchanges"]]
