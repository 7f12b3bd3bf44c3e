"""Ending a live call: the caller hears why, the call is held as evidence, supervisors know.

Shared by the agent's feature code (the `harassment` AGI script) and `ivr calls end`. Steps, in
order: check the call is live, redirect the caller's channel into the dialplan context that
plays the announcement and hangs up (AMI Redirect), then for harassment put the call and its
recording on legal hold, propose a blocklist entry for review, and raise an alert. A failed
redirect stops before any record is changed, so the request can simply be repeated. When the
database does not answer after the redirect, the alert goes out at once and the hold and the
proposal are retried until stored.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from ivr import names
from ivr.clock import Clock
from ivr.config import Config
from ivr.core.alerts import Alert, AlertType
from ivr.core.categories import category as check_category
from ivr.core.review import Actor, Conflict, ReviewError
from ivr.core.seals import Seals
from ivr.core.text import check_note
from ivr.db import calls as calls_repo
from ivr.db.errors import DB_ERRORS
from ivr.events.publisher import AlertSink
from ivr.review.service import BlocklistService, NotFound, Proposal

log = logging.getLogger("ivr.ending")

# (channel, context) → redirect the channel to `context`,s,1; raises when Asterisk refuses.
Redirect = Callable[[str, str], Awaitable[None]]


@dataclass(frozen=True)
class EndRequest:
    call_id: str
    actor: Actor
    by: str  # who pressed: "agent" or "supervisor NAME", for the notes
    harassment: bool = True
    category: str | None = None
    note: str = ""


@dataclass
class EndResult:
    call_id: str
    caller: str | None
    channel: str
    held: bool = False
    entry_id: int | None = None
    warnings: list[str] = field(default_factory=list)


class CallEnder:
    def __init__(
        self,
        engine: AsyncEngine,
        cfg: Config,
        blocklist: BlocklistService,
        alerts: AlertSink,
        clock: Clock,
        seals: Seals,
    ) -> None:
        self._engine = engine
        self._seals = seals
        self._cfg = cfg
        self._blocklist = blocklist
        self._alerts = alerts
        self._clock = clock
        self._pending: set[asyncio.Task[None]] = set()

    async def live_call(self, call_id: str) -> dict[str, Any]:
        async with self._engine.connect() as conn:
            call = await calls_repo.get_call(conn, call_id)
        if call is None:
            raise NotFound(f"no call {call_id}")
        if call["decision"] != calls_repo.ROUTED or call["ended_at"] is not None:
            raise Conflict(f"call {call_id} is not in progress")
        if not call["channel"]:
            raise ReviewError(f"call {call_id}: Asterisk's channel name was not recorded")
        return call

    async def _keep_evidence(
        self, req: EndRequest, call: dict[str, Any], code: str, note: str, result: EndResult
    ) -> None:
        """Hold the call (and its recording), then propose the caller for the blocklist. Both
        may be repeated: the hold is an update, and a second proposal is refused as a
        duplicate."""
        async with self._engine.begin() as conn:
            await calls_repo.hold(conn, req.call_id, note, "harassment", self._seals)
        result.held = True
        if call["caller_e164"] is None:
            result.warnings.append("no caller number: no blocklist entry proposed")
        elif self._cfg.harassment.propose_block:
            try:
                proposed = await self._blocklist.propose(
                    req.actor,
                    Proposal(
                        number=str(call["caller_e164"]),
                        category=code,
                        note=note,
                        evidence=(req.call_id,),
                    ),
                )
            except ReviewError as exc:
                # The caller is already gone and the call held: say why, and still alert.
                result.warnings.append(f"no new blocklist proposal: {exc}")
            else:
                result.entry_id = int(proposed.entry["id"])

    def _retry(self, req: EndRequest, call: dict[str, Any], code: str, note: str) -> None:
        async def again() -> None:
            delay = 0.5
            while True:
                await asyncio.sleep(delay)
                result = EndResult(req.call_id, call["caller_e164"], str(call["channel"]))
                try:
                    await self._keep_evidence(req, call, code, note, result)
                except DB_ERRORS as exc:
                    log.warning("call %s: hold not stored yet (%r); retrying", req.call_id, exc)
                    delay = min(delay * 2, 30.0)
                    continue
                log.warning(
                    "call %s: hold stored, blocklist entry %s; %s",
                    req.call_id,
                    result.entry_id,
                    "; ".join(result.warnings) or "no warnings",
                )
                return

        task = asyncio.get_running_loop().create_task(again(), name=f"evidence:{req.call_id}")
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    @property
    def pending(self) -> int:
        """Harassment ends whose hold or proposal is still waiting for the database."""
        return len(self._pending)

    async def drain(self, timeout: float) -> int:
        """Wait up to `timeout` for the pending holds; how many are still not stored (each is
        logged as an error and given up)."""
        if self._pending:
            await asyncio.wait(set(self._pending), timeout=timeout)
        left = list(self._pending)
        for task in left:
            log.error("%s: not stored before stopping", task.get_name())
            task.cancel()
        return len(left)

    async def end(self, req: EndRequest, redirect: Redirect) -> EndResult:
        code = req.category or self._cfg.harassment.default_category
        try:
            check_category(code)
            extra = check_note(req.note, "--note", 2000)
        except ValueError as exc:
            raise ReviewError(str(exc)) from None
        call = await self.live_call(req.call_id)
        context = names.CONTEXT_HARASSMENT_END if req.harassment else names.CONTEXT_END
        await redirect(str(call["channel"]), context)
        result = EndResult(req.call_id, call["caller_e164"], str(call["channel"]))
        log.warning("call %s ended by %s (harassment=%s)", req.call_id, req.by, req.harassment)
        if not req.harassment:
            return result
        now = self._clock.now()
        note = f"harassment end by {req.by}" + (f": {extra}" if extra else "")
        try:
            await self._keep_evidence(req, call, code, note, result)
        except DB_ERRORS as exc:
            # The caller is gone already: alert now, and store the hold and the proposal as
            # soon as the database answers, rather than lose them.
            result.warnings.append(
                f"database unavailable ({type(exc).__name__}): the hold and the blocklist "
                "proposal are stored when it answers"
            )
            self._retry(req, call, code, note)
        self._alerts.raise_alert(
            Alert(
                AlertType.HARASSMENT_END,
                req.call_id,
                call["caller_e164"],
                now,
                elapsed_s=(now - call["started_at"]).total_seconds(),
                cap_s=call["limit_s"],
                details={
                    "category": code,
                    "by": req.by,
                    "route": call["route"],
                    "entry_id": result.entry_id,
                },
            )
        )
        return result
