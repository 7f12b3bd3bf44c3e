"""The `ivr` command as a user runs it: real processes, real sockets."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from ivr.sim.fake_asterisk import CallerScript, Channel, FakeAsterisk
from tests.support.cli import ivr_env, run_ivr, serving
from tests.support.servers import free_port


async def test_serve_takes_calls_and_stops_on_sigterm(tmp_path: Path) -> None:
    env = ivr_env(tmp_path)
    assert run_ivr(["db", "upgrade"], env).returncode == 0
    port = free_port()
    async with serving(env, port) as proc:
        rec = await FakeAsterisk("127.0.0.1", port).call(
            Channel(callerid="0312345678"), CallerScript(digits=["1"])
        )
        # Whatever the day, the service decided (routed, or closed for the day) and said so.
        assert rec.variables["IVR_DECISION"] in ("route", "hangup")
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 15) == 0


def test_serve_refuses_an_out_of_date_schema(tmp_path: Path) -> None:
    res = run_ivr(["serve", "--agi-listen", f"127.0.0.1:{free_port()}"], ivr_env(tmp_path))
    assert res.returncode == 3
    assert "ivr db upgrade" in res.stderr


def test_migrations_go_down_and_up(tmp_path: Path) -> None:
    env = ivr_env(tmp_path)
    assert run_ivr(["db", "upgrade"], env).returncode == 0
    assert run_ivr(["db", "current"], env).returncode == 0
    assert run_ivr(["db", "downgrade", "base"], env).returncode == 0
    assert run_ivr(["db", "current"], env).returncode == 3
    assert run_ivr(["db", "upgrade"], env).returncode == 0


def test_config_error_names_the_key(tmp_path: Path) -> None:
    cfg = tmp_path / "ivr.toml"
    cfg.write_text("[menu]\nretries = -1\n")
    res = run_ivr(["config", "check", "--config", str(cfg)], ivr_env(tmp_path))
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
    res = run_ivr(["simulate", *args], ivr_env(tmp_path))
    assert res.returncode == 0, res.stderr
    for text in expected:
        assert text in res.stdout, res.stdout


def test_simulate_rejects_bad_arguments(tmp_path: Path) -> None:
    res = run_ivr(["simulate", "--caller", "1", "--presentation", "odd"], ivr_env(tmp_path))
    assert res.returncode == 2 and "--presentation" in res.stderr
