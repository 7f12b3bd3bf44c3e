"""`ivr serve` as a subprocess beside a real Asterisk, as an admin runs it, and its database."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from tests.support.asterisk import AMI_SECRET, RealAsterisk
from tests.support.cli import as_user
from tests.support.people import GROUP, ensure_people, public_dir

IVR = str(Path(sys.executable).with_name("ivr"))
# A Tuesday, 10:00 in Tokyo: the centre is open. The service's clock starts about here and runs.
OPEN_AT = datetime(2026, 11, 24, 10, 0, tzinfo=ZoneInfo("Asia/Tokyo"))
ME = os.environ.get("USER") or "root"


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    raise TypeError(value)


def render(data: Mapping[str, Any], path: str = "") -> str:
    """A small TOML writer: plain keys first, then each table (quoted names where needed)."""
    lines = [f"{k} = {_toml(v)}" for k, v in data.items() if not isinstance(v, dict)]
    for name, table in data.items():
        if isinstance(table, dict):
            bare = name.replace("_", "").replace("-", "").isalnum() and not name[0].isdigit()
            key = name if bare else f'"{name}"'
            full = f"{path}.{key}" if path else key
            lines.append(f"[{full}]")
            lines.append(render(table, full).rstrip("\n"))
    return "\n".join(line for line in lines if line) + "\n"


class Guard:
    """The service under test, configured for `asterisk`; `overrides` merge into its TOML."""

    def __init__(
        self, asterisk: RealAsterisk, work: Path, overrides: Mapping[str, Any] | None = None
    ) -> None:
        self.asterisk = asterisk
        self.work = work
        work.mkdir(parents=True, exist_ok=True)
        self.data = work / "data"
        self.db_path = self.data / "ivr.sqlite3"
        self.socket = public_dir() / "api.sock"  # where supervisors (other OS users) reach it
        agents = "Local/{}@test-agents/n"
        cfg: dict[str, Any] = {
            "data_dir": str(self.data),
            "agi": {"listen": f"127.0.0.1:{asterisk.agi_port}"},
            "ami": {"host": "127.0.0.1", "port": asterisk.ami_port, "cdr_grace_s": 1.0},
            "recording": {"spool_dir": str(asterisk.spool)},
            "storage": {"scan_interval_s": 0.5, "settle_s": 0.5},
            "routes": {r: {"dial": agents.format(r)} for r in ("sales", "support", "operator")},
            "caps": {"repeat_threshold": 0},
            "supervisors": {ME: "admin", "sato": "supervisor", "suzuki": "supervisor"},
            "api": {"socket": str(self.socket), "group": GROUP},
        }
        ensure_people()
        for key, value in (overrides or {}).items():
            if isinstance(value, dict) and isinstance(cfg.get(key), dict):
                cfg[key] = {**cfg[key], **value}
            else:
                cfg[key] = value
        self.config = work / "ivr.toml"
        self.config.write_text(render(cfg))
        self.log = work / "serve.log"
        # One offset for the service and every CLI command: they agree on "now", whatever the day.
        self.clock = f"offset:{(OPEN_AT - datetime.now(UTC)).total_seconds():.3f}"
        self._proc: asyncio.subprocess.Process | None = None

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ, IVR_CONFIG=str(self.config), IVR_AMI_SECRET=AMI_SECRET)
        env.setdefault("IVR_CLOCK", self.clock)
        env.pop("IVR_DATA_DIR", None)
        env.update(extra)
        return env

    async def start(self) -> None:
        if not self.db_path.exists():
            code, _, err = await self.ivr("db", "upgrade")
            assert code == 0, err
        with self.log.open("ab") as log:
            self._proc = await asyncio.create_subprocess_exec(
                IVR, "serve", env=self.env(), stdout=log, stderr=subprocess.STDOUT
            )
        for _ in range(500):
            if self._proc.returncode is not None:
                raise RuntimeError(f"ivr serve exited: {self.output()[-3000:]}")
            with contextlib.suppress(OSError):
                _, w = await asyncio.open_connection("127.0.0.1", self.asterisk.agi_port)
                w.close()
                if "AMI connected" in self.output() or "logged in" in self.output().lower():
                    return
            await asyncio.sleep(0.05)
        raise RuntimeError(f"ivr serve did not start: {self.output()[-3000:]}")

    async def stop(self) -> None:
        if self._proc is None or self._proc.returncode is not None:
            return
        self._proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self._proc.wait(), 20)
        except TimeoutError:
            self._proc.kill()
            await self._proc.wait()

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    async def ivr(
        self, *args: str, env: Mapping[str, str] | None = None, user: str | None = None
    ) -> tuple[int, str, str]:
        """Run the CLI against this service: as this OS user with its configuration, or as
        the OS user `user` (a supervisor, who has the API socket and nothing else)."""
        run_env = dict(env) if env is not None else self.env()
        who: dict[str, Any] = {}
        if user is not None:
            run_env = as_user({**run_env, "IVR_API_SOCKET": str(self.socket)}, user)
            pw = pwd.getpwnam(user)
            who = {
                "user": pw.pw_uid,
                "group": pw.pw_gid,
                "extra_groups": os.getgrouplist(user, pw.pw_gid),
                "cwd": "/",
            }
        proc = await asyncio.create_subprocess_exec(
            IVR,
            *args,
            env=run_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            **who,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode is not None
        return proc.returncode, out.decode(), err.decode()

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        """Read the service's database (read-only, as a check: the service stays its writer)."""
        with contextlib.closing(sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True)) as c:
            c.row_factory = sqlite3.Row
            return [dict(r) for r in c.execute(sql, params)]

    async def until(
        self,
        sql: str,
        params: tuple[Any, ...],
        ready: Callable[[list[dict[str, Any]]], bool],
        timeout: float = 20.0,
    ) -> list[dict[str, Any]]:
        """Poll the database until `ready` holds for the rows (the journal writes in batches)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            rows = self.rows(sql, params)
            if ready(rows):
                return rows
            if loop.time() > deadline:
                raise AssertionError(f"timed out; last rows: {rows}\n{self.output()[-3000:]}")
            await asyncio.sleep(0.1)

    async def call_row(self, linkedid: str, filled: str, timeout: float = 20.0) -> dict[str, Any]:
        """The call row of the call whose linkedid the test set, once its `filled` column is."""
        rows = await self.until(
            "SELECT * FROM calls WHERE linkedid = ?",
            (linkedid,),
            lambda r: bool(r) and r[0][filled] is not None,
            timeout,
        )
        [row] = rows
        return row


# The `guard` fixture: starts `ivr serve` with overrides of its configuration.
StartGuard = Callable[..., Awaitable[Guard]]
