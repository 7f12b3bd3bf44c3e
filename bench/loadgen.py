"""The load generator: many fake Asterisk channels over real FastAGI, with no audio time.

Each call connects, sends the environment block exactly as Asterisk 22 does, and answers every
command with `FakeAsterisk.respond` (the reply logic the transcript tests hold to Asterisk's).
Timing is taken on this side of the socket, as Asterisk would see it.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import subprocess
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import cast

from ivr.sim.fake_asterisk import CallerScript, CallRecord, Channel, ChannelState, FakeAsterisk

_IDS = itertools.count(1)


@dataclass(frozen=True)
class CallSpec:
    """One synthetic call: who calls, what they press, and the decision it must end with."""

    callerid: str
    expect_decision: str  # IVR_DECISION the call must end with
    expect_reason: str
    digits: tuple[str | None, ...] = ("1",)
    hold: bool = False  # wait in the menu until released


@dataclass
class Stats:
    """Client-side timings (seconds) and outcome counts of one phase."""

    first: list[float] = field(default_factory=list)  # connect -> first command
    handler: list[float] = field(default_factory=list)  # connect -> close, minus time held
    command: list[float] = field(default_factory=list)  # our reply -> the next command
    completed: int = 0
    errors: Counter[str] = field(default_factory=Counter)

    def error_count(self) -> int:
        return sum(self.errors.values())


class _Call(asyncio.Protocol):
    """One channel's side of a FastAGI session."""

    def __init__(self, gen: LoadGenerator, spec: CallSpec, stats: Stats, t0: float) -> None:
        self._gen = gen
        self.spec = spec
        self._stats = stats
        self._t0 = t0
        self._buf = b""
        self._last: float | None = None
        self._held_s = 0.0
        self._parked: tuple[str, float] | None = None
        self._script = CallerScript(digits=list(spec.digits))
        self._state = ChannelState({}, list(spec.digits))
        self._rec = CallRecord()
        self._transport: asyncio.WriteTransport | None = None
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.in_menu: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        stream = cast(asyncio.WriteTransport, transport)  # uvloop's are not subclasses
        self._transport = stream
        n = next(_IDS)
        channel = Channel(
            callerid=self.spec.callerid,
            calleridname="Bench",
            uniqueid=f"1795352271.{n}",
            channel=f"PJSIP/trunk-{n:08x}",
            dnid="0312345000",
            args=("0312345000", f"1795352271.{n}"),
        )
        self._state.vars.update(channel.variables())
        stream.write(channel.env_block(self._gen.host, self._gen.port))

    def data_received(self, data: bytes) -> None:
        self._buf += data
        while b"\n" in self._buf:
            line, self._buf = self._buf.split(b"\n", 1)
            self._command(line.decode("utf-8", "replace"))

    def _command(self, text: str) -> None:
        now = time.perf_counter()
        if self._last is None:
            self._stats.first.append(now - self._t0)
        else:
            self._stats.command.append(now - self._last)
        if self.spec.hold and text.startswith("GET DATA") and not self._gen.released.is_set():
            self._parked = (text, now)
            if not self.in_menu.done():
                self.in_menu.set_result(None)
            self._gen.parked.append(self)
            return
        self._reply(text)

    def release(self) -> None:
        """The held caller presses their digit now."""
        if self._parked is None:
            return
        text, since = self._parked
        self._parked = None
        self._held_s = time.perf_counter() - since
        self._reply(text)

    def _reply(self, text: str) -> None:
        lines = self._gen.fake.respond(text, self._state, self._script, self._rec)
        assert self._transport is not None
        self._transport.write("".join(line + "\n" for line in lines).encode())
        self._last = time.perf_counter()

    def connection_lost(self, exc: Exception | None) -> None:
        now = time.perf_counter()
        if not self.in_menu.done():
            self.in_menu.set_result(None)
        got = (self._state.vars.get("IVR_DECISION"), self._state.vars.get("IVR_REASON"))
        if exc is not None:
            self._stats.errors["connection reset"] += 1
        elif got != (self.spec.expect_decision, self.spec.expect_reason):
            self._stats.errors[f"ended {got[0]}/{got[1]}, expected {self.spec.expect_reason}"] += 1
        else:
            self._stats.completed += 1
            self._stats.handler.append(now - self._t0 - self._held_s)
        if not self.done.done():
            self.done.set_result(None)


class _Process(asyncio.SubprocessProtocol):
    """A process-per-call AGI script: its stdin and stdout are the channel's side of AGI."""

    def __init__(self, call: _Call) -> None:
        self.call = call

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        stdin = cast(asyncio.SubprocessTransport, transport).get_pipe_transport(0)
        assert stdin is not None
        self.call.connection_made(stdin)

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        if fd == 1:
            self.call.data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.call.connection_lost(exc)


async def _ended(call: _Call, stats: Stats, timeout: float = 30.0) -> None:
    """Wait for a placed call to end; one that does not within `timeout` is an error."""
    try:
        await asyncio.wait_for(call.done, timeout)
    except TimeoutError:
        stats.errors["call timed out"] += 1


Place = Callable[[CallSpec, Stats], Awaitable["_Call | None"]]


class LoadGenerator:
    """Places calls to one FastAGI server; `closed_loop` for throughput, `hold` for the menu."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.fake = FakeAsterisk(host, port)  # every sound exists, full length, no audio time
        self.released = asyncio.Event()
        self.parked: list[_Call] = []

    async def call(self, spec: CallSpec, stats: Stats, timeout: float = 30.0) -> _Call | None:
        """Connect one call; returns its protocol (await `.done`), or None when refused."""
        loop = asyncio.get_running_loop()
        t0 = time.perf_counter()
        try:
            async with asyncio.timeout(timeout):  # no extra task per call, unlike wait_for
                _, proto = await loop.create_connection(
                    lambda: _Call(self, spec, stats, t0), self.host, self.port
                )
        except (OSError, TimeoutError) as exc:
            stats.errors[f"connect: {type(exc).__name__}"] += 1
            return None
        return proto

    async def spawn(self, argv: list[str], spec: CallSpec, stats: Stats) -> _Call | None:
        """Start `argv` as the AGI script of one call, as Asterisk's `AGI()` does."""
        loop = asyncio.get_running_loop()
        t0 = time.perf_counter()
        call = _Call(self, spec, stats, t0)
        try:
            await loop.subprocess_exec(lambda: _Process(call), *argv, stderr=subprocess.DEVNULL)
        except OSError as exc:
            stats.errors[f"spawn: {type(exc).__name__}"] += 1
            return None
        return call

    async def closed_loop(
        self,
        next_spec: Callable[[], CallSpec],
        concurrency: int,
        seconds: float,
        stats: Stats,
        place: Place | None = None,
    ) -> float:
        """`concurrency` callers each placing calls back to back for `seconds`; wall time."""
        deadline = time.perf_counter() + seconds
        place = place or self.call

        async def caller() -> None:
            while time.perf_counter() < deadline:
                proto = await place(next_spec(), stats)
                if proto is None:
                    await asyncio.sleep(0.01)
                    continue
                await _ended(proto, stats)

        start = time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(concurrency)))
        return time.perf_counter() - start

    async def open_loop(
        self,
        next_spec: Callable[[], CallSpec],
        rate: float,
        seconds: float,
        stats: Stats,
        rng: random.Random,
    ) -> float:
        """Calls arriving at random (Poisson) at `rate` a second for `seconds`, whether or not
        earlier ones have finished, as callers do; wall time until the last call ended."""

        async def one(spec: CallSpec) -> None:
            proto = await self.call(spec, stats)
            if proto is not None:
                await _ended(proto, stats)

        start = time.perf_counter()
        due = start
        calls: set[asyncio.Task[None]] = set()
        while due < start + seconds:
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(one(next_spec()))
            calls.add(task)
            task.add_done_callback(calls.discard)
            due += rng.expovariate(rate)
        if calls:
            await asyncio.wait(calls)
        return time.perf_counter() - start

    async def hold(self, specs: list[CallSpec], stats: Stats, ramp: int = 200) -> list[_Call]:
        """Bring every call to the menu and leave it waiting there (`release_all` ends them)."""
        self.released.clear()
        calls: list[_Call] = []
        for i in range(0, len(specs), ramp):
            batch = await asyncio.gather(*(self.call(s, stats) for s in specs[i : i + ramp]))
            live = [c for c in batch if c is not None]
            await asyncio.gather(*(asyncio.wait_for(c.in_menu, 30.0) for c in live))
            calls += live
        return calls

    async def release_all(self, calls: list[_Call], timeout: float = 60.0) -> None:
        self.released.set()
        for c in self.parked:
            c.release()
        self.parked.clear()
        if calls:
            await asyncio.wait_for(asyncio.gather(*(c.done for c in calls)), timeout)
