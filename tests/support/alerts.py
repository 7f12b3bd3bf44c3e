"""An MQTT subscriber and the configuration that sends alerts to the test broker."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import aiomqtt

from ivr.events.publisher import settle


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, dict[str, Any], int]] = []
        self.ready = asyncio.Event()

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [p for t, p, _ in self.messages if p["type"] == kind]

    async def wait(self, kind: str, count: int = 1, timeout: float = 10) -> list[dict[str, Any]]:
        async def until() -> None:
            while len(self.of(kind)) < count:
                await asyncio.sleep(0.02)

        await asyncio.wait_for(until(), timeout)
        return self.of(kind)


@contextlib.asynccontextmanager
async def subscribed(port: int) -> AsyncIterator[Inbox]:
    inbox = Inbox()

    async def run() -> None:
        client = aiomqtt.Client("127.0.0.1", port)
        try:
            async with client:
                await client.subscribe("ivr/alerts/#", qos=1)
                inbox.ready.set()
                async for m in client.messages:
                    assert isinstance(m.payload, bytes)
                    inbox.messages.append((str(m.topic), json.loads(m.payload), m.qos))
        finally:
            settle(client)

    task = asyncio.create_task(run())
    try:
        await asyncio.wait_for(inbox.ready.wait(), 10)
        yield inbox
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
            await task


def mqtt(port: int) -> dict[str, Any]:
    return {"mqtt": {"host": "127.0.0.1", "port": port, "retry_max_s": 1}}
