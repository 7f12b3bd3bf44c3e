"""Supervised background tasks: a failure stops the service instead of vanishing."""

from __future__ import annotations

import asyncio
import gc

import pytest

from ivr.tasks import Supervisor, TaskFailed


async def _fails_after(seconds: float) -> None:
    await asyncio.sleep(seconds)
    raise RuntimeError("broker client bug")


async def _forever() -> None:
    await asyncio.Event().wait()


async def _returns() -> None:
    await asyncio.sleep(0.01)


async def test_a_failing_task_is_reported_and_the_others_run_until_closed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sup = Supervisor()
    sup.start("steady", _forever())
    sup.start("broken", _fails_after(0.02))
    await asyncio.wait_for(sup.failed.wait(), 2)
    assert isinstance(sup.failure, RuntimeError)
    assert "background task broken failed" in caplog.text
    await sup.close()
    gc.collect()  # an unretrieved exception would be reported now, and fail the test


async def test_a_task_that_returns_while_running_is_a_failure() -> None:
    sup = Supervisor()
    sup.start("journal", _returns())
    await asyncio.wait_for(sup.failed.wait(), 2)
    assert isinstance(sup.failure, TaskFailed) and "journal ended" in str(sup.failure)
    await sup.close()


async def test_tasks_ending_or_failing_while_stopping_are_only_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sup = Supervisor()
    sup.start("journal", _returns())
    sup.start("late", _fails_after(0.02))
    sup.stopping()
    await asyncio.sleep(0.05)
    assert not sup.failed.is_set() and sup.failure is None
    assert "failed while stopping" in caplog.text
    await sup.close()
