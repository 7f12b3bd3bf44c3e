"""/v1/blocklist: propose, review, list, import and export entries."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ivr.api.auth import ACT, READ, Person
from ivr.api.common import Body, body, endpoint
from ivr.config import Config
from ivr.core.blocklist import EntryStatus
from ivr.core.categories import CATEGORIES
from ivr.core.proposal import parse_days
from ivr.core.review import Actor, ReviewError, resolve_actor
from ivr.review import csvfile
from ivr.review.service import BlocklistService, Proposal


def entry_json(rec: dict[str, Any], status: EntryStatus | None = None) -> dict[str, Any]:
    data = dict(rec)
    data["evidence"] = json.loads(rec["evidence"])
    data["stored_status"] = rec["status"]
    data["status"] = (status or EntryStatus(rec["status"])).value
    return data


class ProposeBody(Body):
    number: str
    category: str
    note: str
    prefix: bool = False
    evidence: tuple[str, ...] = ()
    expires: str | None = None
    action: str = "reject"


class DecideBody(Body):
    note: str = ""
    on_paper: str | None = None  # an admin recording another supervisor's written decision


class RenewBody(Body):
    expires: str
    note: str = ""


class ImportBody(Body):
    csv: str
    source: str


def _statuses(values: list[str]) -> tuple[EntryStatus, ...]:
    try:
        return tuple(EntryStatus(v) for v in values)
    except ValueError:
        raise ReviewError(f"status: one of {', '.join(s.value for s in EntryStatus)}") from None


def routes(svc: BlocklistService, cfg: Config) -> list[Route]:
    roster = cfg.supervisors

    @endpoint(READ)
    async def categories(request: Request, person: Person) -> Any:
        return [{"code": k.code, "ja": k.ja, "en": k.en} for k in CATEGORIES]

    @endpoint(READ)
    async def listing(request: Request, person: Person) -> Any:
        q = request.query_params
        wanted = _statuses(q.getlist("status"))
        try:
            within = parse_days(q["due_within"]) if q.get("due_within") else None
        except ValueError as exc:
            raise ReviewError(f"--due-within: {exc}") from None
        rows = await svc.listing(wanted, q.get("number"), within)
        if q.get("format") == "csv":
            return Response(csvfile.export(rows, cfg.hours.zone()), media_type="text/csv")
        return [entry_json(r, s) for r, s in rows]

    @endpoint(ACT)
    async def propose(request: Request, person: Person) -> Any:
        b = await body(request, ProposeBody)
        await svc.sweep()
        p = Proposal(b.number, b.category, b.note, b.prefix, b.evidence, b.expires, b.action)
        res = await svc.propose(Actor(person.name), p)
        return {
            **entry_json(res.entry),
            "warnings": res.warnings,
            "prefix_callers_90d": res.prefix_callers,
        }

    @endpoint(ACT)
    async def import_(request: Request, person: Person) -> Any:
        b = await body(request, ImportBody)
        try:
            rows = csvfile.parse_import(b.csv.removeprefix("\ufeff"))
        except csvfile.CsvError as exc:
            raise ReviewError(f"{b.source}: {exc}") from None
        await svc.sweep()
        done = await svc.import_rows(Actor(person.name), rows, f"import {b.source}")
        return [entry_json(p.entry) for p in done]

    @endpoint(READ)
    async def show(request: Request, person: Person) -> Any:
        shown = await svc.show(request.path_params["id"])
        history = [
            {
                "seq": e.seq,
                "at": e.at,
                "actor": e.actor,
                "via": e.via,
                "action": e.action,
                "reason": e.reason,
            }
            for e in shown.history
        ]
        return {
            "entry": entry_json(shown.entry, shown.status),
            "history": history,
            "calls": shown.calls,
            "calls_refused": shown.calls.get("hangup", 0),
        }

    def decision(name: str, paper: bool) -> Route:
        @endpoint(ACT)
        async def decide(request: Request, person: Person) -> Any:
            b = await body(request, DecideBody)
            if b.on_paper is not None and not paper:
                raise ReviewError("--as: only an approval or a rejection is given on paper")
            actor = resolve_actor(person.name, b.on_paper, b.note, roster)
            await svc.sweep()
            rec = await getattr(svc, name)(actor, request.path_params["id"], b.note)
            return entry_json(rec)

        return Route(f"/v1/blocklist/{{id:int}}/{name}", decide, methods=["POST"])

    @endpoint(ACT)
    async def renew(request: Request, person: Person) -> Any:
        b = await body(request, RenewBody)
        await svc.sweep()
        rec = await svc.renew(Actor(person.name), request.path_params["id"], b.expires, b.note)
        return entry_json(rec)

    return [
        Route("/v1/blocklist/categories", categories),
        Route("/v1/blocklist", listing),
        Route("/v1/blocklist", propose, methods=["POST"]),
        Route("/v1/blocklist/import", import_, methods=["POST"]),
        Route("/v1/blocklist/{id:int}", show),
        decision("approve", True),
        decision("reject", True),
        decision("revoke", False),
        Route("/v1/blocklist/{id:int}/renew", renew, methods=["POST"]),
    ]
