"""The `inbound` AGI script: screen the caller, announce, record, run the menu, set the route."""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from ivr import names
from ivr.agi.session import AgiHangup, AgiSession
from ivr.clock import Clock
from ivr.config import Config
from ivr.core import menu
from ivr.core.blocklist import BlockEntry, candidate_patterns, match
from ivr.core.caller import MAX_RAW_KEPT, Caller, CallerClass, classify, normalise
from ivr.core.hours import open_state
from ivr.core.screening import Reason, Screen, policy_for, screen
from ivr.db import calls as calls_repo
from ivr.db.journal import CallJournal
from ivr.prompts import sound_path

log = logging.getLogger("ivr.inbound")

_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
DB_ERRORS = (SQLAlchemyError, OSError, TimeoutError, ConnectionError)


def new_call_id() -> str:
    return uuid.uuid4().hex


def _safe_token(value: str) -> str:
    """Keep Asterisk-made identifiers only when they look like one; never caller text."""
    return value if _SAFE_ID.match(value) else "invalid"


@dataclass
class _Result:
    decision: str | None = None
    reason: str | None = None
    route: str | None = None
    entry_id: int | None = None
    recording: str | None = None
    hung_up: bool = False


class InboundHandler:
    """One instance serves every call; per-call state lives in locals."""

    def __init__(
        self,
        cfg: Config,
        engine: AsyncEngine,
        journal: CallJournal,
        clock: Clock,
        new_id: Callable[[], str] = new_call_id,
    ) -> None:
        self._cfg = cfg
        self._engine = engine
        self._journal = journal
        self._clock = clock
        self._new_id = new_id
        self._menu = cfg.menu_spec()
        self._schedule = cfg.hours.schedule()
        self._policy = cfg.screening_default()
        self._by_dialled = cfg.screening_by_dialled()
        self._closed = cfg.closed_policy()
        self.missing_prompts = 0
        self.db_failures = 0

    # facts --------------------------------------------------------------------------------
    async def _lookup(self, call_id: str, patterns: list[str]) -> list[BlockEntry]:
        """Blocklist candidates for the caller; fails open (empty) when the DB does not answer."""
        if not patterns:
            return []

        async def work() -> list[BlockEntry]:
            async with self._engine.connect() as conn:
                return await calls_repo.blocklist_candidates(conn, patterns)

        try:
            return await asyncio.wait_for(work(), self._cfg.database.timeout_s)
        except DB_ERRORS as exc:
            self.db_failures += 1
            log.error("call %s: database unavailable, blocklist check fails open: %r", call_id, exc)
            return []

    # call flow ----------------------------------------------------------------------------
    def _caller(self, session: AgiSession) -> Caller:
        env = session.env
        raw = env.get("callerid")
        if session.tainted:
            # Caller data carried line breaks into the environment: nothing after it is trusted.
            log.warning(
                "tainted AGI environment from %s: caller treated as unavailable", session.peer
            )
            return Caller(CallerClass.UNAVAILABLE, None, raw[:MAX_RAW_KEPT])
        return classify(raw, env.get("callingpres"), self._cfg.screening.region)

    def _dialled(self, session: AgiSession) -> str:
        env = session.env
        args = env.args
        candidates = [args[0] if args else "", env.get("dnid"), env.get("extension")]
        for c in candidates:
            if c and c not in ("unknown", "s"):
                return normalise(c, self._cfg.screening.region) or _safe_token(c)
        return ""

    async def _play(self, session: AgiSession, prompt_id: str) -> None:
        p = self._cfg.prompts
        result = await session.stream_file(sound_path(p.sound_prefix, p.language, prompt_id))
        if result.missing:
            self.missing_prompts += 1
            log.warning(
                "prompt file missing in Asterisk: %s/%s/%s", p.sound_prefix, p.language, prompt_id
            )

    async def _run_menu(self, session: AgiSession) -> menu.Routed | menu.GaveUp:
        p = self._cfg.prompts
        spec = self._menu
        prompt_file = sound_path(p.sound_prefix, p.language, spec.prompt)
        ask = menu.start()
        while True:
            if ask.before:
                await self._play(session, ask.before)
            digits = await session.get_data(prompt_file, spec.timeout_ms, spec.max_digits)
            step = menu.step(spec, ask, digits)
            if isinstance(step, menu.Ask):
                ask = step
                continue
            return step

    async def _set_decision(self, session: AgiSession, call_id: str, res: _Result) -> None:
        route_cfg = self._cfg.routes.get(res.route or "")
        values = {
            names.VAR_CALL_ID: call_id,
            names.VAR_RECORDING: res.recording or "",
            names.VAR_ROUTE: res.route or "",
            names.VAR_DIAL: route_cfg.dial if route_cfg else "",
            names.VAR_DIAL_TIMEOUT: str(route_cfg.timeout_s) if route_cfg else "",
            names.VAR_REASON: res.reason or "",
            names.VAR_DECISION: res.decision or "",
        }
        for var in names.DECISION_VARS:  # IVR_DECISION last: set means complete
            await session.set_variable(var, values[var])

    async def _screened_out(self, session: AgiSession, scr: Screen, res: _Result) -> None:
        await session.answer()
        if scr.prompt:
            await self._play(session, scr.prompt)
        res.route = scr.route
        res.decision = names.DECISION_ROUTE if scr.route else names.DECISION_HANGUP

    async def _proceed(self, session: AgiSession, call_id: str, res: _Result) -> None:
        await session.answer()
        rec = self._cfg.recording
        if rec.enabled:
            path = f"{rec.spool_dir}/{call_id}.wav"  # our id only: never caller data
            options = f"{path},{rec.mixmonitor_options}" if rec.mixmonitor_options else path
            await session.exec("MixMonitor", options)
            res.recording = path
        await self._play(session, "recording-notice")
        await self._play(session, "harassment-policy")
        outcome = await self._run_menu(session)
        if isinstance(outcome, menu.Routed):
            res.route, res.reason = outcome.route, Reason.MENU.value
            await self._play(session, "transferring")
        else:
            res.reason = f"menu-{outcome.last}"
            await self._play(session, outcome.prompt)
            res.route = outcome.route
        res.decision = names.DECISION_ROUTE if res.route else names.DECISION_HANGUP

    async def __call__(self, session: AgiSession) -> None:
        env = session.env
        now = self._clock.now()
        call_id = self._new_id()
        caller = self._caller(session)
        uniqueid = _safe_token(env.get("uniqueid"))
        args = env.args
        linkedid = _safe_token(args[1]) if len(args) > 1 and args[1] else uniqueid
        start = calls_repo.CallStart(
            call_id=call_id,
            uniqueid=uniqueid,
            linkedid=linkedid,
            caller_raw=caller.raw,
            caller_name=env.get("calleridname")[:MAX_RAW_KEPT],
            caller_e164=caller.e164,
            caller_class=caller.cls.value,
            dialled=self._dialled(session)[:32],
            started_at=now,
        )
        patterns = (
            candidate_patterns(caller.e164, self._cfg.screening.blocklist_min_prefix_len)
            if caller.e164
            else []
        )
        self._journal.record_start(start)
        entries = await self._lookup(call_id, patterns)
        block = match(caller.e164, entries, now) if caller.e164 else None
        policy = policy_for(start.dialled, self._policy, self._by_dialled)
        scr = screen(caller, policy, block, open_state(now, self._schedule), self._closed)
        res = _Result(reason=scr.reason.value, entry_id=scr.entry_id)
        log.info(
            "call %s uniqueid=%s class=%s screen=%s",
            call_id,
            uniqueid,
            caller.cls.value,
            scr.reason.value,
        )
        try:
            if session.tainted:
                await session.resync()
            if scr.proceed:
                await self._proceed(session, call_id, res)
            else:
                await self._screened_out(session, scr, res)
            await self._set_decision(session, call_id, res)
        except AgiHangup:
            res.hung_up = True
            raise
        finally:
            ended = (
                None
                if res.decision == names.DECISION_ROUTE and not res.hung_up
                else self._clock.now()
            )
            outcome = calls_repo.CallOutcome(
                decision="abandoned" if res.hung_up else res.decision,
                reason=res.reason,
                route=res.route,
                blocklist_entry_id=res.entry_id,
                recording_path=res.recording,
                ended_at=ended,
                end_reason="caller-hangup"
                if res.hung_up
                else (None if ended is None else "ivr-ended"),
                duration_s=(ended - now).total_seconds() if ended else None,
            )
            self._journal.record_outcome(call_id, outcome)
