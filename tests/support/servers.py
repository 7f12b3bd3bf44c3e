"""Servers the tests start as subprocesses (a broker, an S3 server), and a TCP gate that the
tests open and close in front of one to simulate an outage."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """A server on a free loopback port, started and killed by the test, its output in a log."""

    name = "server"

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self._log = workdir / f"{self.name}.log"
        self._proc: subprocess.Popen[bytes] | None = None

    def argv(self) -> list[str]:
        raise NotImplementedError

    async def start(self) -> None:
        """Start it and wait until it accepts connections."""
        with self._log.open("ab") as log:
            self._proc = subprocess.Popen(self.argv(), stdout=log, stderr=subprocess.STDOUT)
        for _ in range(1000):
            with contextlib.suppress(OSError):
                _, w = await asyncio.open_connection("127.0.0.1", self.port)
                w.close()
                return
            await asyncio.sleep(0.02)
        raise RuntimeError(f"{self.name} did not start: {self._log.read_text()[-2000:]}")

    async def stop(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            await asyncio.to_thread(self._proc.wait)
            self._proc = None


class Gate:
    """A TCP relay to the broker that the test opens and closes: the service connects here, so
    the test decides when the service can reach the broker again."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.open = True
        self.port = 0
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        self.cut()

    def cut(self) -> None:
        for w in list(self._pipes):
            w.close()
        self._pipes.clear()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.open:
            writer.close()
            return
        try:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self._pipes |= {writer, up_w}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_w), pipe(up_r, writer))
        self._pipes -= {writer, up_w}
