"""A real S3-compatible HTTP server (moto's server mode, from PyPI) that tests stop and restart."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from tests.support.servers import ServerProcess

MOTO = str(Path(sys.executable).with_name("moto_server"))
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


class S3Server(ServerProcess):
    """moto keeps its objects in memory: a restart empties it, so an outage is simulated by
    refusing connections in front of it (`tests.support.servers.Gate`), and `stop()` is only
    for the end."""

    name = "moto"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def argv(self) -> list[str]:
        return [MOTO, "-H", "127.0.0.1", "-p", str(self.port)]

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )
