"""/v1/audit: the audit trail, and its verification (which needs the service's key)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.routing import Route

from ivr.api.auth import READ, Person
from ivr.api.common import endpoint
from ivr.core.review import ReviewError
from ivr.review import trail


def _int(text: str | None, name: str) -> int | None:
    if text is None or text == "":
        return None
    try:
        return int(text)
    except ValueError:
        raise ReviewError(f"{name}: not a number: {text!r}") from None


def routes(engine: AsyncEngine) -> list[Route]:
    @endpoint(READ)
    async def log(request: Request, person: Person) -> Any:
        entry = _int(request.query_params.get("entry"), "--entry")
        return [e.__dict__ for e in await trail.log(engine, entry)]

    @endpoint(READ)
    async def verify(request: Request, person: Person) -> Any:
        verdict = await trail.verify(engine)
        return {
            "ok": verdict.problem is None,
            "events": verdict.events,
            "head": verdict.head[1] if verdict.head else None,
            "seq": verdict.head[0] if verdict.head else None,
            "problem": str(verdict.problem) if verdict.problem else None,
            "row": verdict.problem.seq if verdict.problem else None,
        }

    return [Route("/v1/audit", log), Route("/v1/audit/verify", verify)]
