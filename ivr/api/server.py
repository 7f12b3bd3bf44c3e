"""The API server: Starlette on uvicorn, on the Unix socket, inside `ivr serve`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from collections.abc import Iterator
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.routing import Route

from ivr.api import audit, blocklist, calls, recordings
from ivr.api.auth import READ, PeerCredentials, Person
from ivr.api.common import endpoint, error
from ivr.api.peer import PeerProtocol, bind
from ivr.wiring import Parts

log = logging.getLogger("ivr.api")


def _unauthenticated(conn: HTTPConnection, exc: Exception) -> Response:
    return error("not-permitted", str(exc), 401)


def build(parts: Parts) -> Starlette:
    """The ASGI application: every route behind one authorization layer."""
    cfg = parts.cfg

    @endpoint(READ)
    async def me(request: Request, person: Person) -> Any:
        return {
            "user": person.name,
            "role": person.role,
            "timezone": cfg.hours.timezone,
            "region": cfg.screening.region,
        }

    routes = [
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
                backend=PeerCredentials(cfg.supervisors),
                on_error=_unauthenticated,
            )
        ],
    )


def exports_dir(parts: Parts) -> Any:
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
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        # Copies of exports whose client went away before reading them.
        await asyncio.to_thread(shutil.rmtree, exports_dir(self._parts), ignore_errors=True)
        sock = bind(self.path, self._parts.cfg.api.group)
        config = uvicorn.Config(
            build(self._parts),
            http=PeerProtocol,
            lifespan="off",
            log_config=None,
            access_log=False,
            log_level="warning",
            timeout_graceful_shutdown=5,
        )
        self._server = _Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="api")
        while not self._server.started:
            if self._task.done():
                self._task.result()
                raise RuntimeError("the API server stopped while starting")
            await asyncio.sleep(0.01)
        log.info("supervisor API listening on %s", self.path)

    async def close(self) -> None:
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self.path.unlink(missing_ok=True)
