"""/v1/calls and /v1/callers: calls in progress, ending one, and one caller's report."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from ivr.ami.client import AmiClient, AmiError
from ivr.api.auth import ACT, READ, Person
from ivr.api.common import Body, body, endpoint
from ivr.calls.ending import EndRequest
from ivr.core.review import Actor, ReviewError
from ivr.db import calls as calls_repo
from ivr.names import SAFE_CHANNEL
from ivr.review import callers
from ivr.wiring import Parts

LIVE_WINDOW = timedelta(hours=24)  # no call lasts longer than its cap; older open rows are stale


class Unavailable(ReviewError):
    kind = "unavailable"


class EndBody(Body):
    harassment: bool = False
    category: str | None = None
    note: str = ""


def routes(parts: Parts) -> list[Route]:
    cfg, clock, engine = parts.cfg, parts.clock, parts.engine

    @endpoint(READ)
    async def active(request: Request, person: Person) -> Any:
        now = clock.now()
        async with engine.connect() as conn:
            rows = await calls_repo.open_calls(conn, now - LIVE_WINDOW)
        return [
            {
                "call_id": r["call_id"],
                "caller": r["caller_e164"],
                "route": r["route"],
                "started_at": r["started_at"],
                "elapsed_s": round((now - r["started_at"]).total_seconds()),
                "cap_s": r["limit_s"],
                "legal_hold": bool(r["legal_hold"]),
            }
            for r in rows
        ]

    @endpoint(ACT)
    async def end(request: Request, person: Person) -> Any:
        b = await body(request, EndBody)
        if b.category is not None and not b.harassment:
            raise ReviewError("--category goes with --harassment")
        ami = parts.ami
        if ami is None:
            raise ReviewError("ending a call needs AMI: set [ami] host in the configuration")
        call_id = request.path_params["call_id"]
        await parts.ender.live_call(call_id)
        if not ami.connected:
            raise Unavailable("AMI is not connected to Asterisk now; try again")

        async def redirect(channel: str, context: str) -> None:
            await _redirect(ami, channel, context)

        req = EndRequest(
            call_id,
            Actor(person.name),
            by=f"supervisor {person.name}",
            harassment=b.harassment,
            category=b.category,
            note=b.note,
        )
        result = await parts.ender.end(req, redirect)
        return {**vars(result), "alert_queued": b.harassment and parts.alerts.enabled}

    @endpoint(READ)
    async def caller(request: Request, person: Person) -> Any:
        days = request.query_params.get("days", "30")
        if not days.isdigit():
            raise ReviewError(f"--days: not a number: {days!r}")
        return await callers.report(
            engine, cfg, request.path_params["number"], int(days), clock.now()
        )

    return [
        Route("/v1/calls/active", active),
        Route("/v1/calls/{call_id}/end", end, methods=["POST"]),
        Route("/v1/callers/{number}", caller),
    ]


async def _redirect(ami: AmiClient, channel: str, context: str) -> None:
    if not SAFE_CHANNEL.match(channel):
        raise ReviewError(f"unusable channel name {channel!r}")
    try:
        await ami.redirect(channel, context)
    except AmiError as exc:
        raise Unavailable(f"AMI: {exc}") from None
