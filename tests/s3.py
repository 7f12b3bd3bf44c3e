"""A real S3-compatible HTTP server (moto's server mode, from PyPI) that tests stop and restart."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.mqtt import free_port

MOTO = str(Path(sys.executable).with_name("moto_server"))
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


class S3Server:
    """moto keeps its objects in memory: a restart empties it, so an outage is simulated by
    refusing connections in front of it (`Gate`), and `stop()` is only for the end."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self._log = workdir / "moto.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        with self._log.open("ab") as log:
            self._proc = subprocess.Popen(
                [MOTO, "-H", "127.0.0.1", "-p", str(self.port)], stdout=log, stderr=log
            )
        for _ in range(1000):
            with contextlib.suppress(OSError):
                _, w = await asyncio.open_connection("127.0.0.1", self.port)
                w.close()
                return
            await asyncio.sleep(0.02)
        raise RuntimeError(f"moto did not start: {self._log.read_text()[-2000:]}")

    async def stop(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            await asyncio.to_thread(self._proc.wait)
            self._proc = None

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )
