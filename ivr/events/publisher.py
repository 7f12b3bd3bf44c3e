"""Alerts to MQTT with aiomqtt: QoS 1, queued (bounded) while the broker is away, always logged."""

from __future__ import annotations

import asyncio
import uuid
from collections import deque
from dataclasses import replace
from typing import Protocol

import aiomqtt

from ivr.config import MqttConfig
from ivr.core.alerts import Alert, encode, topic
from ivr.logs import Log

log = Log("ivr.alerts")


class AlertSink(Protocol):
    def raise_alert(self, alert: Alert) -> None:
        """Hand an alert over; never blocks and never raises."""
        ...


class AlertPublisher:
    """One long-lived MQTT connection; `run()` delivers the queue in order, at least once.

    An alert leaves the queue only after the broker's PUBACK, so a broker that drops mid-publish
    gets it again after reconnecting (consumers de-duplicate by `id`). When the queue is full the
    oldest alert is dropped and counted: the newest say most about what is happening now.
    """

    def __init__(self, cfg: MqttConfig, *, retry_initial_s: float = 0.5) -> None:
        self._cfg = cfg
        self._queue: deque[Alert] = deque()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._retry_initial = retry_initial_s
        self.connected = False
        self.published = 0
        self.dropped = 0

    @property
    def enabled(self) -> bool:
        return bool(self._cfg.host)

    @property
    def backlog(self) -> int:
        return len(self._queue)

    def raise_alert(self, alert: Alert) -> None:
        if "id" not in alert.details:
            alert = replace(alert, details={**alert.details, "id": uuid.uuid4().hex})
        # JSON with ASCII escapes: caller-derived text cannot forge log lines.
        log.warning("alert %s %s", alert.type.value, encode(alert).decode())
        if not self.enabled:
            return
        if len(self._queue) >= self._cfg.queue_size:
            self._queue.popleft()
            self.dropped += 1
            log.error("alert queue full (%d): oldest alert dropped", self._cfg.queue_size)
        self._queue.append(alert)
        self._idle.clear()
        self._wake.set()

    async def flush(self, timeout: float) -> None:
        """Wait until the queue is delivered (TimeoutError otherwise)."""
        await asyncio.wait_for(self._idle.wait(), timeout)

    async def run(self) -> None:
        """Stay connected and deliver; reconnect with backoff. Returns at once when disabled."""
        if not self.enabled:
            return
        c = self._cfg
        delay = self._retry_initial
        while True:
            client = mqtt_client(c, c.client_id or None, timeout=10)
            try:
                async with client:
                    self.connected = True
                    log.info("MQTT connected to %s:%s", c.host, c.port)
                    delay = self._retry_initial
                    await self._deliver(client)
            except aiomqtt.MqttError as exc:
                log.warning(
                    "MQTT %s:%s unavailable (%s); %d alerts queued, retry in %.1f s",
                    c.host,
                    c.port,
                    exc,
                    len(self._queue),
                    delay,
                )
            except Exception:
                # Keep the queue and try again rather than stop alerting for good.
                log.exception("MQTT publisher: unexpected error; retry in %.1f s", delay)
            finally:
                self.connected = False
                settle(client)
            await asyncio.sleep(delay)
            delay = min(delay * 2, c.retry_max_s)

    async def _deliver(self, client: aiomqtt.Client) -> None:
        prefix = self._cfg.topic_prefix
        while True:
            if not self._queue:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            alert = self._queue[0]
            await client.publish(topic(prefix, alert.type), encode(alert), qos=1)
            if self._queue and self._queue[0] is alert:
                self._queue.popleft()
            self.published += 1


def settle(client: aiomqtt.Client) -> None:
    """Take the outcome of a lost connection. aiomqtt 2.5 stores it in a future that its
    `__aexit__` leaves unread when the broker went away first, and asyncio then reports
    "Future exception was never retrieved" when the client is collected."""
    lost: asyncio.Future[None] = client._disconnected
    if lost.done() and not lost.cancelled():
        lost.exception()


def mqtt_client(c: MqttConfig, identifier: str | None, timeout: float) -> aiomqtt.Client:
    """A client for the configured broker (the password comes from IVR_MQTT_PASSWORD)."""
    return aiomqtt.Client(
        c.host,
        c.port,
        username=c.username or None,
        password=c.password or None,
        identifier=identifier,
        timeout=timeout,
    )
