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
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from tests.support.people import GROUP, ensure_people, public_dir

IVR = str(Path(sys.executable).with_name("ivr"))


def ivr_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return dict(os.environ, IVR_DATA_DIR=str(tmp_path / "data"), **extra)


class UserEnv(dict[str, str]):
    """The environment of a command run as another OS user (`as_user`)."""

    user: str = ""


def as_user(env: dict[str, str], user: str) -> UserEnv:
    """What `user` has to run the supervisor commands: the API socket, and nothing of the
    service's (no configuration, no data folder)."""
    keep = ("PATH", "LANG", "LC_ALL", "IVR_API_SOCKET")
    out = UserEnv({k: env[k] for k in keep if k in env}, HOME="/tmp")
    if "IVR_API_SOCKET" not in out:
        raise AssertionError("as_user: the environment names no IVR_API_SOCKET")
    out.user = user
    return out


def run_ivr(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`ivr ARGS` as this process's user, or as `env.user` for an `as_user` environment."""
    who: dict[str, Any] = {}
    if isinstance(env, UserEnv) and env.user:
        pw = pwd.getpwnam(env.user)
        who = {
            "user": pw.pw_uid,
            "group": pw.pw_gid,
            "extra_groups": os.getgrouplist(env.user, pw.pw_gid),
            "cwd": "/",
        }
    return subprocess.run(
        [IVR, *args], env=env, capture_output=True, text=True, timeout=60, check=False, **who
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
    env: dict[str, str], port: int, *extra: str, listening: int = 1, drain: bool = False
) -> AsyncIterator[asyncio.subprocess.Process]:
    """`ivr serve` as a subprocess in its own process group, yielded once `listening` processes
    listen; the group is killed on exit if still running. `drain`: keep reading its log, for a
    test that does not (a full pipe would stall the service)."""
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
    reader: asyncio.Task[None] | None = None
    try:
        assert proc.stderr is not None
        for _ in range(listening):
            await wait_for_line(proc.stderr, "FastAGI listening")
        if drain:  # for a test that does not read the log: a full pipe stalls the service
            reader = asyncio.create_task(_drain(proc.stderr))
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
        if reader is not None:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.read(65536):
        pass


ME = pwd.getpwuid(os.geteuid()).pw_name


ROSTER = {ME: "admin", "sato": "supervisor", "suzuki": "supervisor"}


def setup(
    tmp_path: Path,
    roster: dict[str, str] | None = None,
    url: str | None = None,
    extra: str = "",
    api: str = "",
) -> dict[str, str]:
    """A configuration with supervisors, a migrated database, and the environment to use them.

    The API socket is in a folder every user can enter, in the group of `sato` and `suzuki`
    (`tests.support.people`), so that the tests can act as them."""
    ensure_people()
    roster = ROSTER if roster is None else roster
    people = "\n".join(f'{name} = "{role}"' for name, role in roster.items())
    database = f'[database]\nurl = "{url}"\n' if url else ""
    socket = public_dir() / "api.sock"
    cfg = tmp_path / "ivr.toml"
    cfg.write_text(
        f'data_dir = "{tmp_path / "data"}"\n{extra}{database}'
        f'[api]\nsocket = "{socket}"\ngroup = "{GROUP}"\n{api}[supervisors]\n{people}\n'
    )
    # A fixed day: the expiry dates written below stay in the future whatever today is.
    env = dict(
        os.environ,
        IVR_CONFIG=str(cfg),
        IVR_CLOCK="fixed:2026-11-24T10:00:00+09:00",
        IVR_API_SOCKET=str(socket),
    )
    env.pop("IVR_DATA_DIR", None)
    assert run_ivr(["db", "upgrade"], env).returncode == 0
    return env


@contextlib.contextmanager
def supervised(env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """`ivr serve` on `env` (from `setup`) while the block runs: the supervisor commands
    talk to it. Stopped with SIGTERM; its log is shown if it does not start."""
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            [IVR, "serve", "--agi-listen", "127.0.0.1:0"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 20
            while True:
                log.seek(0)
                text = log.read().decode(errors="replace")
                if "FastAGI listening" in text:
                    break
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"ivr serve did not start:\n{text}")
                time.sleep(0.05)
            yield proc
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def ivr_json(args: list[str], env: dict[str, str], code: int = 0) -> Any:
    res = run_ivr([*args, "--json"], env)
    assert res.returncode == code, res.stderr
    return json.loads(res.stdout) if res.stdout.strip() else None
