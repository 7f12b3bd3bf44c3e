"""The `ivr` command as a user runs it: as a subprocess, on real sockets."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pwd
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

IVR = str(Path(sys.executable).with_name("ivr"))


def ivr_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return dict(os.environ, IVR_DATA_DIR=str(tmp_path / "data"), **extra)


def run_ivr(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [IVR, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


async def wait_for_line(stream: asyncio.StreamReader, needle: str, timeout: float = 20) -> str:
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
async def serving(
    env: dict[str, str], port: int, *extra: str, listening: int = 1
) -> AsyncIterator[asyncio.subprocess.Process]:
    """`ivr serve` as a subprocess in its own process group, yielded once `listening` processes
    listen; the group is killed on exit if still running."""
    proc = await asyncio.create_subprocess_exec(
        IVR,
        "serve",
        "--agi-listen",
        f"127.0.0.1:{port}",
        *extra,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert proc.stderr is not None
        for _ in range(listening):
            await wait_for_line(proc.stderr, "FastAGI listening")
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()


ME = pwd.getpwuid(os.geteuid()).pw_name


def setup(
    tmp_path: Path, roster: dict[str, str] | None = None, url: str | None = None
) -> dict[str, str]:
    """A configuration with supervisors, a migrated database, and the environment to use them."""
    roster = {ME: "admin", "alice": "supervisor", "bob": "supervisor"} if roster is None else roster
    people = "\n".join(f'{name} = "{role}"' for name, role in roster.items())
    database = f'[database]\nurl = "{url}"\n' if url else ""
    cfg = tmp_path / "ivr.toml"
    cfg.write_text(f'data_dir = "{tmp_path / "data"}"\n{database}[supervisors]\n{people}\n')
    # A fixed day: the expiry dates written below stay in the future whatever today is.
    env = dict(os.environ, IVR_CONFIG=str(cfg), IVR_CLOCK="fixed:2026-11-24T10:00:00+09:00")
    env.pop("IVR_DATA_DIR", None)
    assert run_ivr(["db", "upgrade"], env).returncode == 0
    return env


def ivr_json(args: list[str], env: dict[str, str], code: int = 0) -> Any:
    res = run_ivr([*args, "--json"], env)
    assert res.returncode == code, res.stderr
    return json.loads(res.stdout) if res.stdout.strip() else None
