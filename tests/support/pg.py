"""A throwaway PostgreSQL server for the suite: Debian's binaries, a temporary cluster, loopback."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import asyncpg


def _bindir() -> Path:
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name)
    )
    if not found:
        raise RuntimeError("PostgreSQL is not installed: run the suite with `make test`")
    return found[-1].parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgServer:
    """initdb + pg_ctl start; as root the server runs as the `postgres` user (it refuses root)."""

    def __init__(self) -> None:
        self.bindir = _bindir()
        self.port = _free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="ivr-pg-"))
        self.data = self.dir / "data"
        self._as: list[str] = []
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as, *args], check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            "ivr",
            "-E",
            "UTF8",
            "--locale",
            "C",
        )
        self.resume()

    def resume(self, *, standby: bool = False) -> None:
        """Start the server (again) on its data directory and port. `standby`: as a standby
        with no primary and no hot standby, which answers every connection "the database system
        is starting up" (57P03) until `promote`."""
        opts = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        if standby:
            self._run("touch", str(self.data / "standby.signal"))
            opts += " -c hot_standby=off"
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            opts,
            "-l",
            str(self.dir / "log"),
            "-W" if standby else "-w",
            "-t",
            "60",
            "start",
        )

    def promote(self) -> None:
        """End standby mode: the server accepts connections again."""
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-w", "-t", "60", "promote")

    def halt(self, mode: str = "immediate") -> None:
        """Stop the server; `resume` starts it again. The suite's servers run without
        synchronous commit, so only a `fast` stop keeps the last commits."""
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "stop")

    def stop(self) -> None:
        try:
            self.halt()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, db: str) -> str:
        return f"postgresql+asyncpg://ivr@127.0.0.1:{self.port}/{db}"

    async def create_database(self, name: str, template: str | None = None) -> str:
        conn = await asyncpg.connect(
            user="ivr", host="127.0.0.1", port=self.port, database="postgres"
        )
        try:
            tmpl = f" TEMPLATE {template}" if template else ""
            await conn.execute(f'CREATE DATABASE "{name}"{tmpl}')
        finally:
            await conn.close()
        return self.url(name)
