"""One FastAGI connection: the asyncio protocol and the typed command API handlers use."""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import re
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

from ivr.agi.errors import AgiCommandError, AgiDeadline, AgiHangup, AgiTimeout
from ivr.agi.protocol import (
    MAX_COMMAND_BYTES,
    AgiEnvironment,
    AgiParser,
    AgiProtocolError,
    EnvironmentReceived,
    HangupReceived,
    JunkLine,
    Raw,
    Reply,
    ReplyReceived,
    format_command,
)

log = logging.getLogger("ivr.agi")
# A timer may fire up to a millisecond before its time (uvloop rounds to milliseconds).
_EARLY_S = 0.001

# Values MSet passes through unchanged: no separator (`,` `|`), quote, backslash, `$` or bracket
# for Asterisk's application-argument parser to act on.
_MSET_VALUE = re.compile(r"^[A-Za-z0-9_./:@&+#*-]*$")
_MSET_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@functools.lru_cache(maxsize=64)  # the handlers set the same few names on every call
def _names_ok(names: tuple[str, ...]) -> bool:
    return all(_MSET_NAME.fullmatch(n) for n in names)


@dataclass(frozen=True)
class Deadlines:
    """Seconds each kind of command may take before the session is abandoned."""

    environment: float = 5.0
    command: float = 10.0
    media: float = 300.0


@dataclass(frozen=True)
class StreamResult:
    """Outcome of `STREAM FILE`: `missing` when Asterisk could not open the file."""

    missing: bool
    digit: str | None
    endpos: int


class AgiConnection(asyncio.Protocol):
    """Feeds socket bytes to the parser and hands replies to the waiting command."""

    def __init__(
        self,
        on_environment: Callable[[AgiConnection, AgiEnvironment], None],
        *,
        deadlines: Deadlines,
        max_env_bytes: int,
        admit: Callable[[AgiConnection], str | None],
        on_lost: Callable[[AgiConnection], None] = lambda _c: None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self._on_environment = on_environment
        self._on_lost = on_lost
        self.deadlines = deadlines
        self._admit = admit
        self.admitted = False
        self.parser = AgiParser(max_env_bytes=max_env_bytes)
        self.transport: asyncio.Transport | None = None
        self.peer = "?"
        self.hung_up = False
        self.closed = False
        self.junk_lines = 0
        self._waiter: asyncio.Future[Reply] | None = None
        # Set when a command's wait was cancelled (the handler's deadline) before its reply came.
        self._owed: asyncio.Future[None] | None = None
        # One timer per connection rather than one per command (see `_watch`): when the
        # environment, then the command awaited, is overdue.
        self._env_received = False
        self._deadline = 0.0
        self._sent: tuple[bytes, float] = (b"", 0.0)  # the command awaited and its timeout
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._limit = math.inf  # the handler's deadline (`AgiSession.limit`)
        # Looked up once: on Python 3.11 each `get_running_loop()` is a getpid() system call.
        self.loop = loop or asyncio.get_running_loop()

    # asyncio.Protocol -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        peer = transport.get_extra_info("peername")
        self.peer = str(peer[0]) if peer else "?"
        if self._admit(self) is not None:  # refused (and counted, and logged) by the server
            self.abort()
            return
        self.admitted = True
        self._watch(self.loop.time() + self.deadlines.environment)

    def data_received(self, data: bytes) -> None:
        try:
            events = self.parser.feed(data)
        except AgiProtocolError as exc:
            log.warning("FastAGI peer %s broke the protocol: %s", self.peer, exc)
            self._fail(AgiHangup(f"protocol error: {exc}"))
            self.abort()
            return
        for event in events:
            if isinstance(event, ReplyReceived):
                if self._waiter is not None and not self._waiter.done():
                    self._waiter.set_result(event.reply)
                elif self._owed is not None and not self._owed.done():
                    self._owed.set_result(None)
            elif isinstance(event, HangupReceived):
                self.hung_up = True
                self._fail(AgiHangup("HANGUP"))
            elif isinstance(event, JunkLine):
                self.junk_lines += 1
                log.debug("dropped unasked AGI line from %s: %r", self.peer, event.line[:200])
            elif isinstance(event, EnvironmentReceived):
                self._env_received = True
                self._on_environment(self, event.env)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._fail(AgiHangup("connection closed"))
        if self._owed is not None and not self._owed.done():
            self._owed.set_result(None)  # no reply will come; the next command sees the close
        self._on_lost(self)

    # helpers ----------------------------------------------------------------------------
    def _watch(self, deadline: float) -> None:
        """Have the timer fire by `deadline`, the new deadline of this connection.

        A command takes milliseconds against a deadline of seconds, so the timer armed for the
        environment usually outlives the call and a command only moves `_deadline`; when the
        timer fires early for what is then awaited, it is armed again for the rest.
        """
        self._deadline = deadline
        if self._timer is None or deadline < self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = self.loop.call_at(deadline, self._on_timer)
            self._timer_at = deadline

    def _on_timer(self) -> None:
        self._timer = None
        if self.closed:
            return
        waiter = self._waiter
        if self._env_received and (waiter is None or waiter.done()):
            return  # nothing awaited: the next command arms the timer again
        if self.loop.time() + _EARLY_S < self._deadline:
            self._watch(self._deadline)
        elif not self._env_received:
            log.warning("FastAGI peer %s sent no complete environment in time", self.peer)
            self.abort()
        elif waiter is not None and self._deadline >= self._limit:
            # The handler's deadline, not the command's: its reply is owed, the session goes on.
            self._owed = self.loop.create_future()
            waiter.set_exception(AgiDeadline("the handler's deadline passed"))
        elif waiter is not None:
            data, timeout = self._sent
            waiter.set_exception(AgiTimeout(f"no reply within {timeout:g}s to {data[:40]!r}"))
            # The reply may still come and would be paired with the next command: end it here.
            self.abort()

    def _fail(self, exc: Exception) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(exc)

    def abort(self) -> None:
        """Drop the socket at once."""
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def close(self) -> None:
        """Close the socket after pending writes."""
        self.closed = True
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    async def send(
        self, data: bytes, timeout: float, accept: Callable[[Reply], bool] | None = None
    ) -> Reply:
        """Send one command line and wait for its reply.

        With `accept`, replies it refuses are dropped and the wait goes on (see `resync`).
        """
        if self.hung_up or self.closed or self.transport is None:
            raise AgiHangup("channel already gone")
        loop = self.loop
        now = loop.time()
        if now >= self._limit:
            raise AgiDeadline("the handler's deadline passed")
        waiter: asyncio.Future[Reply] = loop.create_future()
        self._waiter = waiter
        self.parser.command_sent(accept)
        self.transport.write(data)
        self._sent = (data, timeout)
        self._watch(min(now + timeout, self._limit))
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.cancelled():  # its reply is still to come: `settle` waits for it
                self._owed = loop.create_future()
            raise
        finally:
            self._waiter = None

    def limit(self, seconds: float | None) -> None:
        """Give the handler `seconds` from now (None: no limit); see `AgiDeadline`."""
        self._limit = math.inf if seconds is None else self.loop.time() + seconds

    async def settle(self, timeout: float) -> None:
        """Wait for the reply to a command whose wait was cancelled or cut at the handler's
        deadline, so that the next command is not paired with it; on timeout the connection is
        dropped."""
        owed = self._owed
        if owed is None:
            return
        try:
            await asyncio.wait_for(owed, timeout)
        except TimeoutError:
            self.abort()
            raise AgiTimeout(f"no reply within {timeout:g}s to a cancelled command") from None
        finally:
            self._owed = None


class AgiSession:
    """Typed AGI commands over one connection; every command has a deadline."""

    def __init__(self, conn: AgiConnection, env: AgiEnvironment) -> None:
        self._conn = conn
        self.env = env
        self.commands_sent = 0
        self.started = time.monotonic()
        self.first_command_s: float | None = None  # from the environment to the first command
        self.resynced = False

    @property
    def peer(self) -> str:
        return self._conn.peer

    @property
    def tainted(self) -> bool:
        """The environment or the line stream held text Asterisk itself never sends."""
        return self.env.tainted or self._conn.junk_lines > 0

    async def command(self, verb: str, *args: str, timeout: float | None = None) -> Reply:
        """Send `verb` with its arguments (quoted unless `Raw`); raise on hang-up or error."""
        data = format_command(verb, *args)
        if self.first_command_s is None:
            self.first_command_s = time.monotonic() - self.started
        reply = await self._conn.send(data, timeout or self._conn.deadlines.command)
        self.commands_sent += 1
        if reply.code == 511:
            self._conn.hung_up = True
            raise AgiHangup("511 dead channel")
        if reply.code != 200:
            raise AgiCommandError(reply)
        return reply

    async def resync(self) -> None:
        """Skip any forged reply lines still in flight: wait for the echo of a random token.

        Only needed when the environment was tainted (caller data carried line breaks): the
        lines after an early blank line may arrive after our first command was sent.
        """
        token = secrets.token_hex(8)
        reply = await self._conn.send(
            format_command("GET FULL VARIABLE", token),
            self._conn.deadlines.command,
            accept=lambda r: r.code == 200 and r.data == token,
        )
        self.commands_sent += 1
        self.resynced = True
        assert reply.data == token

    def limit(self, seconds: float | None) -> None:
        """Commands awaited (or sent) more than `seconds` from now raise `AgiDeadline`; None
        lifts the limit. One timer per connection serves this and every command's deadline,
        so unlike `asyncio.timeout` it costs no timer of its own."""
        self._conn.limit(seconds)

    async def settle(self) -> None:
        """After a cancelled command or `AgiDeadline` (see `AgiConnection.settle`): ready for
        the next one."""
        await self._conn.settle(self._conn.deadlines.command)

    async def answer(self) -> None:
        reply = await self.command("ANSWER")
        if reply.result_int == -1:
            raise AgiHangup("ANSWER failed")

    async def hangup(self) -> None:
        await self.command("HANGUP")

    async def set_variable(self, name: str, value: str) -> None:
        await self.command("SET VARIABLE", Raw(name), value)

    async def set_variables(self, values: Sequence[tuple[str, str]], *, mset: bool = True) -> bool:
        """Set several variables in order: one `EXEC MSet` round trip when `mset` and every value
        is plain text, else one `SET VARIABLE` each. False when Asterisk refused MSet (its reply
        was not `200 result=0`); the variables are then set one by one all the same."""
        refused = False
        # One match over all values: the pattern is a character class, so it holds for the
        # joined text exactly when it holds for each value.
        if (
            mset
            and _MSET_VALUE.fullmatch("".join(v for _, v in values))
            and _names_ok(tuple(n for n, _ in values))
        ):
            data = ",".join(f"{n}={v}" for n, v in values)
            if len(data) < MAX_COMMAND_BYTES - 20:
                reply = await self.command(
                    "EXEC", Raw("MSet"), data, timeout=self._conn.deadlines.command
                )
                if reply.result == "0":
                    return True
                refused = True
        for name, value in values:
            await self.set_variable(name, value)
        return not refused

    async def get_variable(self, name: str) -> str | None:
        reply = await self.command("GET VARIABLE", Raw(name))
        return reply.data if reply.result == "1" else None

    async def verbose(self, message: str, level: int = 1) -> None:
        await self.command("VERBOSE", message, Raw(str(level)))

    async def exec(self, application: str, options: str) -> Reply:
        return await self.command(
            "EXEC", Raw(application), options, timeout=self._conn.deadlines.media
        )

    async def stream_file(self, filename: str, escape_digits: str = "") -> StreamResult:
        """Play a prompt. A missing file answers `result=-1 endpos=0` at once (not a hang-up)."""
        reply = await self.command(
            "STREAM FILE", filename, escape_digits, timeout=self._conn.deadlines.media
        )
        code = reply.result_int
        endpos = reply.endpos or 0
        if code == -1:
            if endpos == 0:
                return StreamResult(missing=True, digit=None, endpos=0)
            self._conn.hung_up = True
            raise AgiHangup("hang-up during playback")
        digit = chr(code) if code and code > 0 else None
        return StreamResult(missing=False, digit=digit, endpos=endpos)

    async def get_data(self, filename: str, timeout_ms: int, max_digits: int) -> str | None:
        """Play `filename` and collect digits; None when the caller pressed nothing."""
        reply = await self.command(
            "GET DATA",
            filename,
            Raw(str(timeout_ms)),
            Raw(str(max_digits)),
            timeout=self._conn.deadlines.media + timeout_ms / 1000,
        )
        if reply.result == "-1":
            self._conn.hung_up = True
            raise AgiHangup("hang-up during GET DATA")
        if reply.data == "timeout" and reply.result == "":
            return None
        return reply.result or None
