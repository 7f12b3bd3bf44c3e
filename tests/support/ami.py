"""A plain AMI client for tests: log in, send actions, keep every event, wait for one.

Written on asyncio streams rather than reusing the service's client, so a test observes Asterisk
through a second, independent reading of the protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable, Mapping

Message = dict[str, str]


class AmiTestClient:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.events: list[Message] = []
        self._replies: dict[str, asyncio.Future[Message]] = {}
        self._ids = itertools.count(1)
        self._changed = asyncio.Condition()
        self._reader_task: asyncio.Task[None] | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def connect(self, username: str, secret: str, timeout: float = 10.0) -> None:
        reader, self._writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port), timeout
        )
        await asyncio.wait_for(reader.readline(), timeout)  # the banner
        self._reader_task = asyncio.create_task(self._read(reader), name="ami-test-reader")
        reply = await self.action("Login", {"Username": username, "Secret": secret})
        if reply.get("Response") != "Success":
            raise RuntimeError(f"AMI login refused: {reply}")

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
        if self._reader_task is not None:
            self._reader_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader_task

    async def action(
        self, name: str, fields: Mapping[str, str] | None = None, timeout: float = 10.0
    ) -> Message:
        assert self._writer is not None
        action_id = f"t{next(self._ids)}"
        lines = [f"Action: {name}", f"ActionID: {action_id}"]
        for key, value in (fields or {}).items():
            lines.append(f"{key}: {value}")
        fut: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._replies[action_id] = fut
        self._writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await self._writer.drain()
        return await asyncio.wait_for(fut, timeout)

    async def wait_for(
        self, match: Callable[[Message], bool], timeout: float, *, start: int = 0
    ) -> Message:
        """The first event from index `start` on that `match` accepts, waiting for it."""

        def found() -> Message | None:
            return next((e for e in self.events[start:] if match(e)), None)

        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: found() is not None), timeout)
        event = found()
        assert event is not None
        return event

    def where(self, **fields: str) -> list[Message]:
        return [e for e in self.events if all(e.get(k) == v for k, v in fields.items())]

    async def _read(self, reader: asyncio.StreamReader) -> None:
        msg: Message = {}
        while True:
            raw = await reader.readline()
            if not raw:
                return
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            if line:
                key, _, value = line.partition(":")
                msg.setdefault(key.strip(), value.strip())
                continue
            if not msg:
                continue
            if "Event" in msg:
                msg["_at"] = repr(asyncio.get_running_loop().time())  # when it arrived
                self.events.append(msg)
                async with self._changed:
                    self._changed.notify_all()
            else:
                fut = self._replies.pop(msg.get("ActionID", ""), None)
                if fut is not None and not fut.done():
                    fut.set_result(msg)
            msg = {}
