"""A real MQTT broker (amqtt, from PyPI) as a subprocess."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.support.servers import ServerProcess

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


class Broker(ServerProcess):
    name = "amqtt"

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self._conf = workdir / "amqtt.yaml"
        self._conf.write_text(BROKER_YAML.format(port=self.port))

    def argv(self) -> list[str]:
        return [AMQTT, "-c", str(self._conf)]
