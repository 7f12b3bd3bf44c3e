"""A real MQTT broker (amqtt, from PyPI) as a subprocess, and a TCP gate in front of it."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
from pathlib import Path

AMQTT = str(Path(sys.executable).with_name("amqtt"))

BROKER_YAML = """
listeners:
  default:
    type: tcp
    bind: 127.0.0.1:{port}
plugins:
  amqtt.plugins.authentication.AnonymousAuthPlugin:
    allow_anonymous: true
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Broker:
    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self._conf = workdir / "amqtt.yaml"
        self._conf.write_text(BROKER_YAML.format(port=self.port))
        self._log = workdir / "amqtt.log"
        self._proc: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        with self._log.open("ab") as log:
            self._proc = subprocess.Popen(
                [AMQTT, "-c", str(self._conf)], stdout=log, stderr=subprocess.STDOUT
            )
        for _ in range(500):
            with contextlib.suppress(OSError):
                _, w = await asyncio.open_connection("127.0.0.1", self.port)
                w.close()
                return
            await asyncio.sleep(0.02)
        raise RuntimeError(f"amqtt did not start: {self._log.read_text()[-2000:]}")

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
