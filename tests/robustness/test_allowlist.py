"""FastAGI has no authentication: a peer outside `agi.allow` is refused, counted and logged."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from ivr.config import ConfigError, build_config
from ivr.sim.fake_asterisk import CallerScript, Channel
from tests.support.service import Service


async def _from(source: str, port: int, env: bytes) -> bytes:
    """Connect from `source` (any 127.x address is this host), send `env`, read to the end."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    try:
        writer.write(env)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 5)
    except ConnectionError:
        return b""
    finally:
        writer.close()


async def test_a_peer_outside_the_allowlist_is_refused_and_logged(
    make_service: Any, caplog: pytest.LogCaptureFixture
) -> None:
    svc: Service = await make_service({"agi": {"allow": ["127.0.0.1/32", "10.0.0.0/8"]}})
    port = svc.app.agi.port
    env = Channel().env_block("127.0.0.1", port)
    with caplog.at_level(logging.WARNING):
        refused = await _from("127.0.0.2", port, env)
        allowed = await svc.fake.call(Channel(), CallerScript(digits=["1"]))
    assert refused == b""  # not one command went to the stranger
    assert allowed.variables["IVR_DECISION"] == "route"
    assert svc.app.agi.refused_peers == 1 and svc.app.agi.sessions_started == 1
    assert "FastAGI connection from 127.0.0.2 refused: not in the allowlist" in caplog.text


def test_an_empty_allowlist_is_a_configuration_error(catalog: Any) -> None:
    with pytest.raises(ConfigError, match=r"agi\.allow: must not be empty"):
        build_config({"agi": {"allow": []}}, {}, catalog)
