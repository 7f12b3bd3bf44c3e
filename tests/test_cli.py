"""The `ivr` command as a user runs it: real processes, real sockets."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ivr.sim.fake_asterisk import CallerScript, Channel, FakeAsterisk

IVR = str(Path(sys.executable).with_name("ivr"))


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return dict(os.environ, IVR_DATA_DIR=str(tmp_path / "data"), **extra)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [IVR, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


async def _wait_for_line(stream: asyncio.StreamReader, needle: str, timeout: float = 20) -> str:
    async def scan() -> str:
        seen = ""
        while True:
            line = (await stream.readline()).decode()
            if not line:
                raise AssertionError(f"process ended before printing {needle!r}:\n{seen}")
            seen += line
            if needle in line:
                return seen

    return await asyncio.wait_for(scan(), timeout)


@contextlib.asynccontextmanager
async def serving(env: dict[str, str], port: int) -> AsyncIterator[asyncio.subprocess.Process]:
    """`ivr serve` as a subprocess, yielded once it listens; killed on exit if still running."""
    proc = await asyncio.create_subprocess_exec(
        IVR,
        "serve",
        "--agi-listen",
        f"127.0.0.1:{port}",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stderr is not None
        await _wait_for_line(proc.stderr, "FastAGI listening")
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_serve_takes_calls_and_stops_on_sigterm(tmp_path: Path) -> None:
    env = _env(tmp_path)
    assert _run(["db", "upgrade"], env).returncode == 0
    port = _free_port()
    async with serving(env, port) as proc:
        rec = await FakeAsterisk("127.0.0.1", port).call(
            Channel(callerid="0312345678"), CallerScript(digits=["1"])
        )
        # Whatever the day, the service decided (routed, or closed for the day) and said so.
        assert rec.variables["IVR_DECISION"] in ("route", "hangup")
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 15) == 0


def test_serve_refuses_an_out_of_date_schema(tmp_path: Path) -> None:
    res = _run(["serve", "--agi-listen", f"127.0.0.1:{_free_port()}"], _env(tmp_path))
    assert res.returncode == 3
    assert "ivr db upgrade" in res.stderr


def test_migrations_go_down_and_up(tmp_path: Path) -> None:
    env = _env(tmp_path)
    assert _run(["db", "upgrade"], env).returncode == 0
    assert _run(["db", "current"], env).returncode == 0
    assert _run(["db", "downgrade", "base"], env).returncode == 0
    assert _run(["db", "current"], env).returncode == 3
    assert _run(["db", "upgrade"], env).returncode == 0


def test_config_error_names_the_key(tmp_path: Path) -> None:
    cfg = tmp_path / "ivr.toml"
    cfg.write_text("[menu]\nretries = -1\n")
    res = _run(["config", "check", "--config", str(cfg)], _env(tmp_path))
    assert res.returncode == 2
    assert "menu.retries" in res.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["--caller", "03-1234-5678", "--digits", "2", "--at", "2026-11-24T10:00"],
            [
                "[recording-notice]",
                "[harassment-policy]",
                "the caller presses 2",
                "route support",
                "talk-time limit 3600 s",
            ],
        ),
        (
            ["--caller", "anonymous", "--presentation", "withheld", "--at", "2026-11-24T10:00"],
            ["[anonymous-rejected]", "番号非通知", "hang up (reason withheld"],
        ),
        (["--caller", "0312345678", "--at", "2026-11-23T10:00"], ["[holiday]", "reason holiday"]),
        (
            [
                "--caller",
                "0312345678",
                "--at",
                "2026-11-24T10:00",
                "--hangup-during",
                "harassment-policy",
            ],
            ["hangs up during this prompt", "the caller hung up"],
        ),
    ],
)
def test_simulate_prints_the_conversation(
    tmp_path: Path, args: list[str], expected: list[str]
) -> None:
    res = _run(["simulate", *args], _env(tmp_path))
    assert res.returncode == 0, res.stderr
    for text in expected:
        assert text in res.stdout, res.stdout


def test_simulate_rejects_bad_arguments(tmp_path: Path) -> None:
    res = _run(["simulate", "--caller", "1", "--presentation", "odd"], _env(tmp_path))
    assert res.returncode == 2 and "--presentation" in res.stderr
