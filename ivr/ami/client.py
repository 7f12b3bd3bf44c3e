"""AMI client: panoramisk's `Manager` behind our own connection loop.

panoramisk parses the protocol and pairs responses with actions. Around it we own the lifecycle:
login with a clear error, a deadline on every action, a ping watchdog, reconnect with jittered
exponential backoff, event handlers kept across reconnects, hooks run after every login (to
re-synchronise live calls), and a bounded event queue drained by one task.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from panoramisk import Manager
from panoramisk.ami_protocol import AMIProtocol
from panoramisk.message import Message

log = logging.getLogger("ivr.ami")

EventHandler = Callable[[Mapping[str, str]], Awaitable[None] | None]
ConnectHook = Callable[["AmiClient"], Awaitable[None]]


class AmiError(Exception):
    """An AMI action failed or could not be sent."""


class AmiAuthError(AmiError):
    """The server refused the username or secret: retrying will not help."""


class AmiTimeout(AmiError):
    """No response within the action's deadline."""


class AmiUnavailable(AmiError):
    """Not connected (or the connection dropped while the action was in flight)."""


@dataclass(frozen=True)
class AmiSettings:
    host: str = "127.0.0.1"
    port: int = 5038
    username: str = ""
    secret: str = ""
    action_timeout_s: float = 5.0
    connect_timeout_s: float = 5.0
    ping_interval_s: float = 10.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    queue_size: int = 10_000


# Longest message we wait for the end of (CoreShowChannel events are under 2 KiB each).
MAX_PENDING_BYTES = 256 * 1024


class AmiProtocol(AMIProtocol):  # type: ignore[misc]
    """panoramisk's parser, bounded, and with one string per header.

    A message that never ends would otherwise grow without limit, and a repeated header
    (`Uniqueid: a` twice) would arrive as a list where every reader expects a string.
    """

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.queue and len(self.queue[0]) > MAX_PENDING_BYTES:
            log.error(
                "AMI message over %d bytes without its end: connection dropped", MAX_PENDING_BYTES
            )
            self.queue.clear()
            self.transport.abort()

    def handle_message(self, message: Message) -> None:
        for key, value in list(message.items()):
            if isinstance(value, list):
                message[key] = value[0]
        super().handle_message(message)


class AmiManager(Manager):  # type: ignore[misc]
    """panoramisk's Manager with its own reconnect and ping timers switched off (we run those)."""

    pinger: asyncio.TimerHandle | None

    def __init__(self, lost: Callable[[object], None], **config: Any) -> None:
        super().__init__(**config)
        self._lost = lost

    def connection_made(self, f: asyncio.Future[Any]) -> None:
        if f.cancelled() or f.exception() is not None:
            return  # AmiClient sees the failure where it awaits connect(), and retries itself
        super().connection_made(f)

    def ping(self) -> None:
        """Replaced by AmiClient's watchdog, which has a deadline."""

    def connection_lost(self, exc: object) -> None:
        self._connected = False
        if self.pinger:
            self.pinger.cancel()
            self.pinger = None
        self._lost(exc)


def _check_fields(fields: Mapping[str, object]) -> dict[str, str]:
    """Field values must not carry line breaks: they would end the action and start another."""
    out: dict[str, str] = {}
    for key, value in fields.items():
        text = str(value)
        if any(ch in text or ch in key for ch in "\r\n"):
            raise ValueError(f"AMI field {key!r} contains a line break")
        out[key] = text
    return out


class AmiClient:
    def __init__(self, settings: AmiSettings, *, rng: random.Random | None = None) -> None:
        self.settings = settings
        self._rng = rng or random.Random()
        self._handlers: dict[str, list[EventHandler]] = {}
        self._hooks: list[ConnectHook] = []
        self._queue: asyncio.Queue[Mapping[str, str]] = asyncio.Queue(settings.queue_size)
        self._manager: AmiManager | None = None
        self._lost: asyncio.Event = asyncio.Event()
        self._ready = asyncio.Event()
        self._pending: set[asyncio.Future[Any]] = set()
        self.connects = 0
        self.dropped_events = 0

    # registration -------------------------------------------------------------------------
    def on(self, event: str, handler: EventHandler) -> None:
        """Call `handler` for every event named `event` (`*` for all), across reconnects."""
        self._handlers.setdefault(event.lower(), []).append(handler)

    def on_connect(self, hook: ConnectHook) -> None:
        """Run `hook` after every successful login (first and after each reconnect)."""
        self._hooks.append(hook)

    @property
    def connected(self) -> bool:
        return self._ready.is_set()

    @property
    def queued_events(self) -> int:
        """Events received and not yet handled (at most `settings.queue_size`)."""
        return self._queue.qsize()

    async def wait_connected(self, timeout: float) -> None:
        await asyncio.wait_for(self._ready.wait(), timeout)

    # actions ------------------------------------------------------------------------------
    async def action(self, name: str, fields: Mapping[str, object] | None = None) -> Message:
        """Send an action and return its response; AmiError when it fails or times out."""
        if self._manager is None or not self._ready.is_set():
            raise AmiUnavailable(f"{name}: not connected to AMI")
        first, _ = await self._send(self._manager, name, fields or {})
        return first

    async def redirect(self, channel: str, context: str) -> None:
        """Move `channel` to `context`,s,1 (AMI `Redirect`); AmiError when Asterisk refuses."""
        await self.action(
            "Redirect", {"Channel": channel, "Context": context, "Exten": "s", "Priority": "1"}
        )

    async def action_list(
        self, name: str, fields: Mapping[str, object] | None = None
    ) -> list[Message]:
        """Send an action answered by an event list; the events, without the response and the
        closing `...Complete` event."""
        if self._manager is None or not self._ready.is_set():
            raise AmiUnavailable(f"{name}: not connected to AMI")
        _, rest = await self._send(self._manager, name, fields or {})
        return [m for m in rest if not m.get("Event", "").endswith("Complete")]

    async def _send(
        self, manager: AmiManager, name: str, fields: Mapping[str, object]
    ) -> tuple[Message, list[Message]]:
        data = {"Action": name, **_check_fields(fields)}
        fut: asyncio.Future[Any] = manager.send_action(data)
        self._pending.add(fut)
        try:
            resp = await asyncio.wait_for(asyncio.shield(fut), self.settings.action_timeout_s)
        except TimeoutError:
            fut.cancel()
            raise AmiTimeout(
                f"{name}: no response within {self.settings.action_timeout_s} s"
            ) from None
        finally:
            self._pending.discard(fut)
        rest: list[Message] = []
        if isinstance(resp, list):
            resp, rest = resp[0], resp[1:]
        if resp.get("Response", "").lower() == "error":
            raise AmiError(f"{name}: {resp.get('Message', 'error')}")
        return resp, rest

    # the connection loop ------------------------------------------------------------------
    async def run(self) -> None:
        """Stay connected until cancelled; raises AmiAuthError on refused credentials."""
        delay = self.settings.backoff_initial_s
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._drain(), name="ami-events")
            while True:
                try:
                    await self._session()
                    delay = self.settings.backoff_initial_s
                except AmiAuthError:
                    raise
                except (OSError, AmiError) as exc:
                    log.warning("AMI %s:%s: %s", self.settings.host, self.settings.port, exc)
                wait = delay * self._rng.uniform(0.5, 1.0)
                log.info("AMI reconnect in %.1f s", wait)
                await asyncio.sleep(wait)
                delay = min(delay * 2, self.settings.backoff_max_s)

    async def _session(self) -> None:
        s = self.settings
        self._lost = asyncio.Event()
        manager = AmiManager(
            self._connection_lost,
            host=s.host,
            port=s.port,
            loop=asyncio.get_running_loop(),
            ping_delay=10**6,
            reconnect_timeout=10**6,
            protocol_factory=AmiProtocol,
        )
        manager.register_event("*", self._enqueue)
        try:
            await asyncio.wait_for(manager.connect(), s.connect_timeout_s)
        except TimeoutError:
            manager.close()
            raise AmiUnavailable("connect timed out") from None
        await asyncio.sleep(0)  # let panoramisk's connection_made set up its protocol
        self._manager = manager
        try:
            resp, _ = await self._send(
                manager, "Login", {"Username": s.username, "Secret": s.secret, "Events": "on"}
            )
        except AmiError as exc:
            manager.close()
            if isinstance(exc, (AmiTimeout, AmiUnavailable)):
                raise
            raise AmiAuthError(
                f"AMI login as {s.username!r} refused by {s.host}:{s.port}: check the manager.conf "
                "user and secret"
            ) from None
        log.info("AMI logged in to %s:%s (%s)", s.host, s.port, resp.get("Message", ""))
        self.connects += 1
        self._ready.set()
        try:
            for hook in self._hooks:
                await hook(self)
            await self._watch(manager)
        finally:
            self._ready.clear()
            self._manager = None
            manager.close()
            self._fail_pending()

    async def _watch(self, manager: AmiManager) -> None:
        """Ping on an interval; a missing pong or a dropped connection ends the session."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._lost.wait(), self.settings.ping_interval_s)
            if self._lost.is_set():
                raise AmiUnavailable("connection closed by the server")
            try:
                await self._send(manager, "Ping", {})
            except AmiTimeout:
                raise AmiUnavailable("ping unanswered: connection presumed dead") from None

    def _connection_lost(self, exc: object) -> None:
        self._lost.set()
        self._fail_pending()

    def _fail_pending(self) -> None:
        """Actions in flight on a lost connection fail now instead of waiting out their deadline."""
        for fut in list(self._pending):
            if not fut.done():
                fut.set_exception(AmiUnavailable("AMI connection lost"))

    def _enqueue(self, _manager: object, event: Message) -> None:
        try:
            self._queue.put_nowait(dict(event))
        except asyncio.QueueFull:
            self.dropped_events += 1
            if self.dropped_events % 1000 == 1:
                log.error("AMI event queue full: %d events dropped", self.dropped_events)

    async def _drain(self) -> None:
        while True:
            event = await self._queue.get()
            name = event.get("Event", "").lower()
            for handler in (*self._handlers.get(name, ()), *self._handlers.get("*", ())):
                try:
                    result = handler(event)
                    if result is not None:
                        await result
                except Exception:
                    log.exception("AMI handler for %s failed", name)
