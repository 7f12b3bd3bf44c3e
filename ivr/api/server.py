"""The API server: Starlette on uvicorn, on the Unix socket, inside `ivr serve`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import socket
import ssl
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ivr.api import audit, blocklist, calls, recordings
from ivr.api.auth import READ, Either, PeerCredentials, Person, SessionTokens
from ivr.api.common import Body, answer, body, endpoint, error
from ivr.api.logins import FILE as LOGINS_FILE
from ivr.api.logins import LoginError, Logins
from ivr.api.peer import PeerProtocol, SocketError, bind
from ivr.config import parse_hostport
from ivr.core.review import ReviewError
from ivr.core.text import escape
from ivr.wiring import Parts

log = logging.getLogger("ivr.api")


class LoginBody(Body):
    user: str
    password: str
    otp: str


def build(parts: Parts) -> Starlette:
    """The ASGI application: every route behind one authorization layer, whichever way the
    person was authenticated (the Unix socket's peer, or a login on the TLS listener)."""
    cfg = parts.cfg
    logins = Logins(cfg.data_path() / LOGINS_FILE, timedelta(hours=cfg.api.session_hours))

    async def login(request: Request) -> Response:
        try:
            b = await body(request, LoginBody)
        except ReviewError as exc:
            return error("invalid", str(exc), 400)
        try:
            token, session = await asyncio.to_thread(
                logins.login, b.user, b.password, b.otp, parts.clock.now()
            )
        except LoginError as exc:
            log.warning("API login refused for %s: %s", escape(b.user), exc)
            return error("not-permitted", str(exc), 401)
        except (OSError, ValueError) as exc:  # the logins file is unreadable or damaged
            log.error("API login: cannot read the logins: %r", exc)
            return error("failed", "logins are unavailable; see the service's log", 500)
        log.info("API login: %s", session.name)
        return answer({"token": token, "user": session.name, "expires_at": session.expires_at})

    @endpoint(READ)
    async def logout(request: Request, person: Person) -> Any:
        _, _, token = request.headers.get("authorization", "").partition(" ")
        logins.logout(token.strip())
        return {"ok": True}

    @endpoint(READ)
    async def me(request: Request, person: Person) -> Any:
        return {
            "user": person.name,
            "role": person.role,
            "timezone": cfg.hours.timezone,
            "region": cfg.screening.region,
        }

    routes = [
        Route("/v1/login", login, methods=["POST"]),
        Route("/v1/logout", logout, methods=["POST"]),
        Route("/v1/me", me),
        *blocklist.routes(parts.blocklist, cfg),
        *audit.routes(parts.engine, parts.seals),
        *calls.routes(parts),
        *recordings.routes(parts.recordings, cfg, exports_dir(parts)),
    ]
    return Starlette(
        routes=routes,
        middleware=[
            Middleware(
                AuthenticationMiddleware,
                backend=Either(
                    PeerCredentials(cfg.supervisors),
                    SessionTokens(logins, cfg.supervisors, parts.clock),
                ),
            )
        ],
    )


def exports_dir(parts: Parts) -> Path:
    return parts.cfg.data_path() / "exports"


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # `ivr serve` handles SIGTERM and SIGINT itself


class ApiServer:
    """Serves the API on the configured Unix socket until `close`."""

    def __init__(self, parts: Parts) -> None:
        self._parts = parts
        self.path = parts.cfg.api_socket()
        self._servers: list[tuple[_Server, asyncio.Task[None]]] = []

    async def start(self) -> None:
        # Copies of exports whose client went away before reading them.
        await asyncio.to_thread(shutil.rmtree, exports_dir(self._parts), ignore_errors=True)
        api = self._parts.cfg.api
        app = build(self._parts)
        await self._serve(app, [bind(self.path, api.group)], {})
        log.info("supervisor API listening on %s", self.path)
        if api.listen:
            host, port = parse_hostport(api.listen)
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            tcp = socket.create_server((host, port), family=family)
            tcp.setblocking(False)
            tls = {"ssl_certfile": api.tls_cert, "ssl_keyfile": api.tls_key}
            await self._serve(app, [tcp], tls)
            log.info("supervisor API (logins, TLS) listening on %s", api.listen)

    async def _serve(
        self, app: Starlette, sockets: list[socket.socket], tls: dict[str, Any]
    ) -> None:
        config = uvicorn.Config(
            app,
            http=PeerProtocol,
            lifespan="off",
            log_config=None,
            access_log=False,
            log_level="warning",
            timeout_graceful_shutdown=5,
            **tls,
        )
        try:
            config.load()  # the TLS files are read here: a bad one is a clear error at start
        except (OSError, ssl.SSLError) as exc:
            for s in sockets:
                s.close()
            raise SocketError(f"api.tls_cert / api.tls_key: {exc}") from None
        server = _Server(config)
        task = asyncio.create_task(server.serve(sockets=sockets), name="api")
        self._servers.append((server, task))
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("the API server stopped while starting")
            await asyncio.sleep(0.01)

    async def close(self) -> None:
        for server, _ in self._servers:
            server.should_exit = True
        for _, task in self._servers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._servers.clear()
        self.path.unlink(missing_ok=True)
