"""Our asyncio FastAGI server: accepts Asterisk's connections and runs one handler per call."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from ivr.agi.errors import AgiCommandError, AgiHangup, AgiTimeout
from ivr.agi.protocol import DEFAULT_MAX_ENV_BYTES, AgiEnvironment
from ivr.agi.session import AgiConnection, AgiSession, Deadlines

log = logging.getLogger("ivr.agi")

Handler = Callable[[AgiSession], Awaitable[None]]
# (script, handler seconds, seconds to the first command or None): for the metrics.
Observer = Callable[[str, float, float | None], None]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_PEERS_KEPT = 1024


class AgiServer:
    """Routes each session on `agi_network_script` (query removed) to its handler."""

    def __init__(
        self,
        handlers: Mapping[str, Handler],
        *,
        allow: Iterable[str],
        deadlines: Deadlines | None = None,
        max_env_bytes: int = DEFAULT_MAX_ENV_BYTES,
        observe: Observer | None = None,
        max_sessions: int = 4000,
        max_sessions_per_peer: int = 4000,
    ) -> None:
        """`max_sessions` (kept below the descriptor limit) and `max_sessions_per_peer` bound
        the open connections: one more is closed at once, counted and logged, so that held
        sessions can exhaust neither the descriptors nor the loop."""
        self._handlers = dict(handlers)
        self._observe = observe
        self._allow: list[Network] = [ipaddress.ip_network(a, strict=False) for a in allow]
        self._deadlines = deadlines or Deadlines()
        self._max_env_bytes = max_env_bytes
        self._server: asyncio.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # set by `start`
        self._tasks: set[asyncio.Task[None]] = set()
        self._connections: set[AgiConnection] = set()
        # The allowlist's answer per peer address: a few Asterisk servers call all day.
        self._peers: dict[str, bool] = {}
        self.sessions_started = 0
        self.refused_peers = 0
        self.refused_sessions = 0  # over max_sessions or max_sessions_per_peer
        self._max = max_sessions
        self._max_per_peer = max_sessions_per_peer
        self._per_peer: dict[str, int] = {}
        self._admitted = 0
        self._refusals: dict[str, int] = {}  # refusals not yet logged, by reason
        self._refusal_logged_at = -math.inf

    @property
    def active_sessions(self) -> int:
        return len(self._tasks)

    @property
    def open_connections(self) -> int:
        return sum(1 for c in self._connections if not c.closed)

    @property
    def port(self) -> int:
        # Any: uvloop's `sockets` is a list where asyncio's is a tuple.
        server: Any = self._server
        assert server is not None and server.sockets
        return int(server.sockets[0].getsockname()[1])

    def _peer_allowed(self, host: str) -> bool:
        allowed = self._peers.get(host)
        if allowed is None:
            if len(self._peers) >= _PEERS_KEPT:
                self._peers.clear()
            allowed = self._peers[host] = self._in_allowlist(host)
        return allowed

    def _admit(self, conn: AgiConnection) -> str | None:
        """None when `conn` may go on; else why it is refused (counted and logged here)."""
        host = conn.peer
        if not self._peer_allowed(host):
            self.refused_peers += 1
            log.warning("FastAGI connection from %s refused: not in the allowlist", host)
            return "allowlist"
        if self._admitted >= self._max:
            return self._refuse(host, f"agi.max_sessions ({self._max}) open")
        if self._per_peer.get(host, 0) >= self._max_per_peer:
            return self._refuse(host, f"agi.max_sessions_per_peer ({self._max_per_peer}) open")
        self._admitted += 1
        self._per_peer[host] = self._per_peer.get(host, 0) + 1
        return None

    def _refuse(self, host: str, why: str) -> str:
        """Count; log at most once a second, with how many were refused meanwhile."""
        self.refused_sessions += 1
        key = f"{host}: {why}"
        self._refusals[key] = self._refusals.get(key, 0) + 1
        now = time.monotonic()
        if now - self._refusal_logged_at >= 1.0:
            for what, n in self._refusals.items():
                log.warning("FastAGI connections refused (%d) from %s", n, what)
            self._refusals.clear()
            self._refusal_logged_at = now
        return why

    def _lost(self, conn: AgiConnection) -> None:
        self._connections.discard(conn)
        if conn.admitted:
            conn.admitted = False
            self._admitted -= 1
            left = self._per_peer.get(conn.peer, 1) - 1
            if left:
                self._per_peer[conn.peer] = left
            else:
                self._per_peer.pop(conn.peer, None)

    def _in_allowlist(self, host: str) -> bool:
        try:
            addr = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(addr in net for net in self._allow)

    def _protocol_factory(self) -> AgiConnection:
        conn = AgiConnection(
            self._on_environment,
            deadlines=self._deadlines,
            max_env_bytes=self._max_env_bytes,
            admit=self._admit,
            on_lost=self._lost,
            loop=self._loop,
        )
        self._connections.add(conn)
        return conn

    def _on_environment(self, conn: AgiConnection, env: AgiEnvironment) -> None:
        self.sessions_started += 1
        task = conn.loop.create_task(
            self._run_session(conn, env), name=f"agi:{env.get('uniqueid')[:40]}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_session(self, conn: AgiConnection, env: AgiEnvironment) -> None:
        session = AgiSession(conn, env)
        script = env.script
        handler = self._handlers.get(script)
        try:
            if handler is None:
                log.warning("unknown AGI script %r from %s", script[:80], conn.peer)
                await session.verbose("ivr-guard: unknown AGI script", 1)
                return
            await handler(session)
        except AgiHangup as exc:
            log.debug("session %s ended by hang-up: %s", env.get("uniqueid")[:40], exc)
        except AgiTimeout as exc:
            log.warning("session %s abandoned: %s", env.get("uniqueid")[:40], exc)
        except AgiCommandError as exc:
            log.error("session %s: Asterisk refused a command: %s", env.get("uniqueid")[:40], exc)
        except Exception:
            log.exception("handler for %r failed", script)
        finally:
            conn.close()
            if self._observe is not None:
                label = script if handler is not None else "unknown"
                self._observe(label, time.monotonic() - session.started, session.first_command_s)

    async def start(self, host: str, port: int, *, reuse_port: bool = False) -> None:
        """Bind and start accepting connections; `reuse_port`: beside other workers' sockets
        (the kernel spreads new connections over them)."""
        loop = self._loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._protocol_factory, host, port, backlog=1024, reuse_port=reuse_port or None
        )
        log.info("FastAGI listening on %s:%d", host, self.port)

    async def close(self, grace: float = 10.0) -> None:
        """Stop accepting, let running calls finish for `grace` seconds, then cancel them."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        pending = set(self._tasks)
        if pending:
            _, still = await asyncio.wait(pending, timeout=grace)
            for task in still:
                task.cancel()
            if still:
                await asyncio.wait(still)
        for conn in list(self._connections):
            conn.abort()
        self._connections.clear()
