"""/v1/audit: the audit trail, and its verification (which needs the service's key)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.routing import Route

from ivr.api.auth import READ, Person
from ivr.api.common import endpoint
from ivr.core.audit import Anchor
from ivr.core.review import ReviewError
from ivr.core.seals import Seals
from ivr.review import trail


def _int(text: str | None, name: str) -> int | None:
    if text is None or text == "":
        return None
    try:
        return int(text)
    except ValueError:
        raise ReviewError(f"{name}: not a number: {text!r}") from None


def routes(engine: AsyncEngine, seals: Seals) -> list[Route]:
    @endpoint(READ)
    async def events(request: Request, person: Person) -> Any:
        entry = _int(request.query_params.get("entry"), "--entry")
        return [e.__dict__ for e in await trail.log_events(engine, entry)]

    @endpoint(READ)
    async def verify(request: Request, person: Person) -> Any:
        given = request.query_params.get("anchor")
        try:
            anchor = Anchor.parse(given) if given else None
        except ValueError as exc:
            raise ReviewError(f"--anchor: {exc}") from None
        v = await trail.verify(engine, seals, anchor)
        return {
            "ok": v.ok,
            "events": v.events,
            "head": v.head[1] if v.head else None,
            "seq": v.head[0] if v.head else None,
            "anchor": str(Anchor(*v.head)) if v.head and v.head[0] else None,
            "anchor_checked": str(anchor) if anchor else None,
            "keyed_from": v.keyed_from,
            "problem": str(v.problem) if v.problem else None,
            "row": v.problem.seq if v.problem else None,
            "sealed_rows_bad": v.rows,
            "recordings_checked": v.recordings,
            "calls_checked": v.calls,
        }

    @endpoint(READ)
    async def anchor(request: Request, person: Person) -> Any:
        now = await trail.anchor_now(engine)
        return {"anchor": str(now) if now else None}

    return [
        Route("/v1/audit", events),
        Route("/v1/audit/verify", verify),
        Route("/v1/audit/anchor", anchor),
    ]
