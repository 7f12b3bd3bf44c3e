"""The supervisor commands' side of the API: requests over the service's Unix socket.

The commands never open the database, the configuration's secrets or the service's files:
they ask `ivr serve`, which knows who they are from the socket (the OS user) and decides.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from ivr.cli import common as c
from ivr.config import SYSTEM_API_SOCKET, ConfigError, load_config

TIMEOUT = httpx.Timeout(120.0, connect=5.0)  # a purge or a verify of every recording is slow


def socket_path(config: Path | None) -> Path:
    """`IVR_API_SOCKET`; else the named configuration's socket; else the system install's,
    if there is one; else this user's own service's."""
    if os.environ.get("IVR_API_SOCKET"):
        return Path(os.environ["IVR_API_SOCKET"])
    named = config or (Path(os.environ["IVR_CONFIG"]) if os.environ.get("IVR_CONFIG") else None)
    if named is None and SYSTEM_API_SOCKET.exists():
        return SYSTEM_API_SOCKET
    try:
        return load_config(named, os.environ, None).api_socket()
    except ConfigError as exc:
        raise c.fail(f"configuration error: {exc}", c.EXIT_CONFIG) from None


class Api:
    """One command's conversation with the service."""

    def __init__(self, config: Path | None) -> None:
        self.path = socket_path(config)
        self._http = httpx.Client(
            transport=httpx.HTTPTransport(uds=str(self.path)),
            base_url="http://ivr-guard",
            timeout=TIMEOUT,
        )

    @contextmanager
    def _reached(self) -> Iterator[None]:
        try:
            yield
        except httpx.TransportError as exc:
            cause = exc.__cause__ or exc.__context__ or exc
            why = getattr(cause, "strerror", None) or str(cause) or type(exc).__name__
            raise c.fail(
                f"cannot reach the service at {self.path}: {why} "
                "(is `ivr serve` running, and are you in its api.group?)",
                c.EXIT_FAILED,
            ) from None

    def _check(self, res: httpx.Response) -> None:
        if res.is_success:
            return
        try:
            data = res.json()
            kind, message = str(data["error"]), str(data["message"])
        except (ValueError, KeyError, TypeError):
            raise c.fail(f"the service answered {res.status_code}", c.EXIT_FAILED) from None
        for line, problem in data.get("problems") or ():
            c.warn(f"line {line}: {problem}")
        raise c.fail(f"{kind}: {message}", c.EXIT_BY_KIND.get(kind, c.EXIT_FAILED))

    def get(self, path: str, **params: Any) -> Any:
        query = {k: v for k, v in params.items() if v is not None}
        with self._reached():
            res = self._http.get(path, params=query)
        self._check(res)
        if res.headers.get("content-type", "").startswith("application/json"):
            return res.json()
        return res.text

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        with self._reached():
            res = self._http.post(path, json=body or {})
        self._check(res)
        return res.json()

    @contextmanager
    def download(self, path: str, body: dict[str, Any]) -> Iterator[httpx.Response]:
        """A streamed answer (a recording), checked for an error first."""
        with self._reached(), self._http.stream("POST", path, json=body) as res:
            if not res.is_success:
                res.read()
                self._check(res)
            yield res

    @cached_property
    def me(self) -> dict[str, Any]:
        data: dict[str, Any] = self.get("/v1/me")
        return data

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(str(self.me["timezone"]))

    def local(self, value: object, *, seconds: bool = False) -> str:
        """An instant from the service, in the centre's time zone; "-" when there is none."""
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                return str(value)
        if not isinstance(value, datetime):
            return "-"
        fmt = "%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M"
        return value.astimezone(self.zone).strftime(fmt)
