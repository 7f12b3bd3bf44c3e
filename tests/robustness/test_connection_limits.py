"""Issue 26, finding 7: FastAGI sessions that never answer exhausted the descriptors, so every
new call was reset (and took the dialplan's fail-open path, blocked callers included).

Now the open sessions are bounded, in all and per peer, below the descriptor limit: one more
is closed at once, counted and logged, and the calls within the bound go on.
"""

from __future__ import annotations

import asyncio
import resource
import statistics
import time
from typing import Any

import pytest

from ivr.app import DESCRIPTORS_KEPT, session_budget
from ivr.sim.fake_asterisk import CallerScript, Channel
from tests.support.service import Service


async def _hold(port: int, n: int, source: str = "127.0.0.1") -> list[asyncio.StreamWriter]:
    """`n` inbound sessions that send their environment and never answer a command."""
    held = []
    for i in range(n):
        reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
        writer.write(Channel(uniqueid=f"9.{i}").env_block("127.0.0.1", port))
        await writer.drain()
        assert await asyncio.wait_for(reader.readline(), 5)  # the service's first command
        held.append(writer)
    return held


async def _refused(port: int, source: str = "127.0.0.1") -> bool:
    """Whether a new connection is closed by the service before any command."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    writer.write(Channel().env_block("127.0.0.1", port))
    try:
        line = await asyncio.wait_for(reader.read(100), 5)
    except ConnectionResetError:
        line = b""
    writer.close()
    return line == b""


async def _release(held: list[asyncio.StreamWriter]) -> None:
    for w in held:
        w.close()
    await asyncio.sleep(0.1)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_sessions_beyond_the_bound_are_refused_and_calls_go_on(
    make_service: Any, caplog: pytest.LogCaptureFixture
) -> None:
    svc: Service = await make_service({"agi": {"max_sessions": 40}})
    port = svc.app.agi.port
    held = await _hold(port, 40)
    assert await _refused(port)
    assert svc.app.agi.refused_sessions == 1
    assert "FastAGI connections refused (1) from 127.0.0.1: agi.max_sessions (40) open" in (
        caplog.text
    )
    await _release(held[:1])
    rec = await svc.fake.call(Channel(callerid="0312345678"), CallerScript(digits=["1"]))
    assert rec.variables["IVR_DECISION"] == "route"
    await _release(held[1:])


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_one_peer_cannot_take_every_session(make_service: Any) -> None:
    """127.0.0.2 (another local process, say) holds its share; Asterisk at 127.0.0.1 is still
    served."""
    svc: Service = await make_service(
        {"agi": {"allow": ["127.0.0.0/8"], "max_sessions": 100, "max_sessions_per_peer": 20}}
    )
    port = svc.app.agi.port
    held = await _hold(port, 20, source="127.0.0.2")
    assert await _refused(port, source="127.0.0.2")
    rec = await svc.fake.call(Channel(callerid="0312345678"), CallerScript(digits=["1"]))
    assert rec.variables["IVR_DECISION"] == "route"
    assert svc.app.agi.refused_sessions == 1
    await _release(held)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_held_sessions_do_not_delay_a_new_callers_screening(make_service: Any) -> None:
    """A withheld caller's whole call (screened, refused: three commands), with 1,000 sessions
    held, against the same without them, in the same run: within 100 ms."""
    svc: Service = await make_service()
    await svc.app.journal.flush()

    async def screened_s() -> float:
        t0 = time.perf_counter()
        rec = await svc.fake.call(Channel(callerid="anonymous", callingpres=35))
        assert rec.variables["IVR_REASON"] == "withheld"
        return time.perf_counter() - t0

    base = statistics.median([await screened_s() for _ in range(20)])
    held = await _hold(svc.app.agi.port, 1000)
    loaded = statistics.median([await screened_s() for _ in range(20)])
    await _release(held)
    print(f"withheld call: {base * 1000:.1f} ms alone, {loaded * 1000:.1f} ms beside 1,000 held")
    assert loaded < base + 0.1


def test_the_bound_fits_below_the_descriptor_limit() -> None:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert session_budget(10**6) == soft - DESCRIPTORS_KEPT
    assert session_budget(50) == 50
