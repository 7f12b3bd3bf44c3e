"""/v1/recordings: find, export (streamed), hold, release, verify and purge recordings."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from ivr.api.auth import ACT, READ, Person
from ivr.api.common import Body, body, endpoint
from ivr.config import Config
from ivr.core.caller import normalise
from ivr.core.review import Actor, ReviewError
from ivr.recordings.service import RecordingService

CHUNK = 1 << 16


class NoteBody(Body):
    note: str = ""


class ExportBody(Body):
    to: str  # where the supervisor saves it, for the audit row
    note: str = ""


class VerifyBody(Body):
    names: tuple[str, ...] = ()
    all: bool = False


class PurgeBody(Body):
    dry_run: bool = False


def public(rec: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in rec.items() if k not in ("next_attempt_at", "seal")}


def _date(cfg: Config, text: str | None, option: str) -> datetime | None:
    if not text:
        return None
    try:
        d = datetime.fromisoformat(text)
    except ValueError:
        raise ReviewError(f"{option}: not a date or time: {text!r}") from None
    return d if d.tzinfo else d.replace(tzinfo=cfg.hours.zone())


async def _stream(path: Path) -> AsyncIterator[bytes]:
    try:
        with await asyncio.to_thread(path.open, "rb") as fh:
            while chunk := await asyncio.to_thread(fh.read, CHUNK):
                yield chunk
    finally:
        await asyncio.to_thread(path.unlink, missing_ok=True)


def routes(svc: RecordingService, cfg: Config, exports: Path) -> list[Route]:
    @endpoint(READ)
    async def listing(request: Request, person: Person) -> Any:
        q = request.query_params
        number = None
        if q.get("caller"):
            number = normalise(q["caller"], cfg.screening.region)
            if number is None:
                raise ReviewError(f"--caller: not a phone number: {q['caller']!r}")
        rows = await svc.listing(
            caller=number,
            since=_date(cfg, q.get("since"), "--since"),
            until=_date(cfg, q.get("until"), "--until"),
            held=True if q.get("held") == "1" else None,
        )
        return [public(r) for r in rows]

    @endpoint(READ)
    async def show(request: Request, person: Person) -> Any:
        return public(await svc.get(request.path_params["name"]))

    @endpoint(ACT)
    async def export(request: Request, person: Person) -> Any:
        b = await body(request, ExportBody)
        await asyncio.to_thread(exports.mkdir, mode=0o700, exist_ok=True)
        part = exports / f"{secrets.token_hex(8)}.part"
        got = await svc.export(Actor(person.name), request.path_params["name"], b.to, part, b.note)
        # The audit row is stored: only now do the bytes leave the service.
        return StreamingResponse(
            _stream(part),
            media_type="application/octet-stream",
            headers={
                "X-Ivr-Bytes": str(got.bytes),
                "X-Ivr-Sha256": got.sha256,
                "Content-Length": str(got.bytes),
            },
        )

    def holding(hold: bool) -> Any:
        @endpoint(ACT)
        async def change(request: Request, person: Person) -> Any:
            b = await body(request, NoteBody)
            rec = await svc.set_hold(Actor(person.name), request.path_params["name"], hold, b.note)
            return public(rec)

        return change

    @endpoint(READ)
    async def verify(request: Request, person: Person) -> Any:
        b = await body(request, VerifyBody)
        if not b.names and not b.all:
            raise ReviewError("name recordings to check, or give --all")
        checked = await svc.verify(None if b.all else list(b.names))
        return [vars(x) for x in checked]

    @endpoint(ACT)
    async def purge(request: Request, person: Person) -> Any:
        b = await body(request, PurgeBody)
        done = await svc.purge(Actor(person.name), dry_run=b.dry_run)
        return {"deleted": done.deleted, "failed": done.failed}

    return [
        Route("/v1/recordings", listing),
        Route("/v1/recordings/verify", verify, methods=["POST"]),
        Route("/v1/recordings/purge", purge, methods=["POST"]),
        Route("/v1/recordings/{name}", show),
        Route("/v1/recordings/{name}/export", export, methods=["POST"]),
        Route("/v1/recordings/{name}/hold", holding(True), methods=["POST"]),
        Route("/v1/recordings/{name}/release", holding(False), methods=["POST"]),
    ]
