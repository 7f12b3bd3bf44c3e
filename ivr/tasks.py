"""The service's background tasks, supervised: one that fails or ends is a failure of the whole
service, logged and raised, never a task that silently stopped."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger("ivr")


class TaskFailed(Exception):
    """A background task raised, or returned while the service was running."""


class Supervisor:
    def __init__(self) -> None:
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self.failure: BaseException | None = None
        self.failed = asyncio.Event()

    def start(self, name: str, job: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(job, name=name)
        task.add_done_callback(self._ended)
        self._tasks.append(task)

    def _ended(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()  # retrieved here, so never "never retrieved"
        if self._closing:
            if exc is not None:
                log.error("background task %s failed while stopping: %r", task.get_name(), exc)
            return
        if self.failure is None:
            self.failure = exc or TaskFailed(f"{task.get_name()} ended")
        log.error("background task %s failed: %r; stopping", task.get_name(), exc or "ended")
        self.failed.set()

    def stopping(self) -> None:
        """The service is closing: tasks may end now (the journal returns once drained)."""
        self._closing = True

    async def close(self) -> None:
        """Cancel every task and wait for them; failures from here on are only logged."""
        self._closing = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
