"""The real Asterisk 22 for this folder's tests: one per session, a fresh `ivr serve` per test.

Without `IVR_TEST_ASTERISK` or `ASTERISK_TARBALL` these tests are skipped with one loud line;
with `IVR_REQUIRE_ASTERISK=1` (set by `.ci/run`) that skip is a failure instead.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.ami import AmiTestClient
from tests.support.asterisk import RealAsterisk, find_asterisk
from tests.support.calls import Calls
from tests.support.guard import Guard, StartGuard

MISSING = (
    "REAL ASTERISK TESTS SKIPPED: set ASTERISK_TARBALL to an Asterisk 22 source tarball "
    "(or IVR_TEST_ASTERISK to an installed asterisk binary)"
)


@pytest.fixture(scope="session")
def asterisk_binary() -> Path:
    binary = find_asterisk()
    if binary is None:
        if os.environ.get("IVR_REQUIRE_ASTERISK") == "1":
            pytest.fail(MISSING.replace("SKIPPED", "REQUIRED"), pytrace=False)
        pytest.skip(MISSING)
    return binary


@pytest.fixture(scope="session")
def asterisk_session(
    asterisk_binary: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RealAsterisk]:
    """Started by the first test that needs it (in its event loop), stopped at the end."""
    ast = RealAsterisk(asterisk_binary, tmp_path_factory.mktemp("asterisk"))
    yield ast
    ast.terminate()


@pytest.fixture
async def asterisk(asterisk_session: RealAsterisk) -> RealAsterisk:
    if not asterisk_session.running:
        await asterisk_session.start()
    return asterisk_session


@pytest.fixture
async def ami(asterisk: RealAsterisk) -> AsyncIterator[AmiTestClient]:
    client = await asterisk.ami()
    yield client
    # Nothing of this test's calls may outlive it.
    await client.action("Command", {"Command": "channel request hangup all"})
    await client.close()


@pytest.fixture
async def guard(asterisk: RealAsterisk, tmp_path: Path) -> AsyncIterator[StartGuard]:
    """Start `ivr serve` with overrides of its configuration."""
    started: list[Guard] = []

    async def start(overrides: dict[str, Any] | None = None) -> Guard:
        g = Guard(asterisk, tmp_path / f"guard{len(started)}", overrides)
        started.append(g)
        await g.start()
        return g

    yield start
    for g in started:
        await g.stop()


@pytest.fixture
def calls(asterisk: RealAsterisk, ami: AmiTestClient) -> Calls:
    return Calls(asterisk, ami)
