"""The `inbound` AGI script: screen the caller, announce, record, run the menu, set the route."""

from __future__ import annotations

import asyncio
import itertools
import re
import secrets
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from ivr import names
from ivr.agi.session import AgiCommandError, AgiDeadline, AgiHangup, AgiSession, AgiTimeout
from ivr.calls.monitor import CallMonitor
from ivr.clock import Clock
from ivr.config import Config
from ivr.core import caps, menu
from ivr.core.alerts import Alert, AlertType
from ivr.core.blocklist import BlockEntry, candidate_patterns, match
from ivr.core.caller import MAX_RAW_KEPT, Caller, CallerClass, classify, normalise
from ivr.core.hours import OpenStates
from ivr.core.screening import CapRouting, Reason, Screen, policy_for, screen
from ivr.core.text import kept
from ivr.db import calls as calls_repo
from ivr.db.journal import CallJournal
from ivr.db.rows import CallOutcome, CallStart
from ivr.db.sqlite_reader import SqliteScreeningReader
from ivr.events.publisher import AlertSink
from ivr.logs import Log, call_id_var
from ivr.metrics import Metrics
from ivr.prompts import sound_path

log = Log("ivr.inbound")

_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# Asterisk channel names (PJSIP/trunk-0000001a, Local/s@ctx-00000002;2): kept for AMI Redirect.
SAFE_CHANNEL = re.compile(r"^[A-Za-z0-9/@;:._+-]{1,80}$")
_ALERT_FOR = {
    Reason.WITHHELD: AlertType.WITHHELD,
    Reason.UNAVAILABLE: AlertType.UNAVAILABLE,
    Reason.BLOCKED: AlertType.BLOCKED,
    Reason.DAILY_LIMIT: AlertType.DAILY_LIMIT,
    Reason.REPEAT: AlertType.REPEAT_LIMIT,
}
DB_ERRORS = (SQLAlchemyError, sqlite3.Error, OSError, TimeoutError, ConnectionError)


_ID_PREFIX = secrets.token_hex(10)  # 80 random bits, new for each process
_ID_SEQ = itertools.count()


def new_call_id() -> str:
    """32 hex digits, unique: this process's random prefix, then a counter. Unlike uuid4 it
    needs no system call per call."""
    return f"{_ID_PREFIX}{next(_ID_SEQ):012x}"


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
    limit_s: int | None = None
    warning_s: int | None = None
    screened: str | None = None  # the screening reason, for the metrics

    # Written out so that mypyc compiles it (the generated one runs interpreted).
    def __init__(self) -> None:
        self.decision = self.reason = self.route = self.recording = self.screened = None
        self.entry_id = self.limit_s = self.warning_s = None
        self.hung_up = False


class InboundHandler:
    """One instance serves every call; per-call state lives in locals."""

    def __init__(
        self,
        cfg: Config,
        engine: AsyncEngine,
        journal: CallJournal,
        clock: Clock,
        alerts: AlertSink,
        monitor: CallMonitor,
        new_id: Callable[[], str] = new_call_id,
        metrics: Metrics | None = None,
    ) -> None:
        self._cfg = cfg
        self._metrics = metrics
        self._engine = engine
        self._journal = journal
        self._clock = clock
        self._alerts = alerts
        self._monitor = monitor
        self._new_id = new_id
        self._caps = cfg.caps.policy(cfg.screening.region)
        self._zone = cfg.hours.zone()
        c = cfg.caps
        self._cap_routing = CapRouting(
            c.exhausted_route, c.repeat_action, c.repeat_route or cfg.default_route
        )
        self._menu = cfg.menu_spec()
        self._open = OpenStates(cfg.hours.schedule())
        self._policy = cfg.screening_default()
        self._by_dialled = cfg.screening_by_dialled()
        self._closed = cfg.closed_policy()
        self.missing_prompts = 0
        self.db_failures = 0
        self._reader = SqliteScreeningReader.for_url(cfg.database_url())
        self._mset = True  # until Asterisk refuses EXEC MSet

    # facts --------------------------------------------------------------------------------
    async def _lookup(
        self, call_id: str, e164: str | None, now: datetime
    ) -> tuple[list[BlockEntry], caps.Usage | None]:
        """Blocklist candidates and the caller's usage, in one connection.

        Fails open when the database does not answer: no blocklist match, no per-caller caps
        (the per-call cap still applies).
        """
        if e164 is None:
            return [], None
        patterns = candidate_patterns(e164, self._cfg.screening.blocklist_min_prefix_len)
        day, window = caps.usage_since(now, self._zone, self._caps)

        usage_of = None if caps.is_exempt(e164, self._caps) else (e164, day, window, call_id)

        async def work() -> tuple[list[BlockEntry], caps.Usage | None]:
            async with self._engine.connect() as conn:
                return await calls_repo.screening_facts(conn, patterns, usage_of)

        try:
            if self._reader is not None:
                return self._reader.facts(patterns, usage_of)
            return await asyncio.wait_for(work(), self._cfg.database.timeout_s)
        except DB_ERRORS as exc:
            self.db_failures += 1
            log.error(
                "call %s: database unavailable, blocklist and caps fail open: %r", call_id, exc
            )
            return [], None

    def close(self) -> None:
        """Release the SQLite read connection, if any."""
        if self._reader is not None:
            self._reader.close()

    # call flow ----------------------------------------------------------------------------
    async def _caller(self, session: AgiSession) -> Caller:
        env = session.env
        raw = env.get("callerid")
        region = self._cfg.screening.region
        if not session.tainted:
            return classify(raw, env.get("callingpres"), region)
        # Caller data carried line breaks. agi_callerid comes before every other caller-set
        # field and the parser keeps a key's first value, so the number is the caller's own
        # (cut at a break, if the break was in it): the blocklist still applies. The
        # presentation came after the break, so it is asked of Asterisk once forged reply
        # lines are skipped.
        log.warning("tainted AGI environment from %s: presentation re-read", session.peer)
        try:
            await session.resync()
            pres = await session.get_variable("CALLERID(num-pres)")
        except (AgiHangup, AgiTimeout, AgiCommandError):
            pres = None  # unknown: unavailable (after a hang-up the next command ends it)
        if pres is None:
            return Caller(CallerClass.UNAVAILABLE, None, kept(raw, MAX_RAW_KEPT))
        return classify(raw, pres, region)

    async def _arguments(self, session: AgiSession) -> tuple[str, str]:
        """The script's arguments: the dialled number and the call's linkedid.

        A caller name with a line break ends the environment early, and the argument lines
        come after it: then both are asked of Asterisk (empty when it does not answer)."""
        args = session.env.args
        if not session.tainted:
            return (args[0] if args else ""), (args[1] if len(args) > 1 else "")
        values = []
        for var in (names.VAR_DIALLED, "CHANNEL(linkedid)"):
            try:
                values.append(await session.get_variable(var) or "")
            except (AgiHangup, AgiTimeout, AgiCommandError):
                values.append("")  # after a hang-up the next command ends the call
        return values[0], values[1]

    def _dialled(self, session: AgiSession, argument: str) -> str:
        env = session.env
        candidates = [argument, env.get("dnid"), env.get("extension")]
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
        limit = res.limit_s if res.decision == names.DECISION_ROUTE else None
        values = {
            names.VAR_CALL_ID: call_id,
            names.VAR_RECORDING: res.recording or "",
            names.VAR_LIMIT_MS: str(limit * 1000) if limit is not None else "",
            names.VAR_WARNING_MS: str(res.warning_s * 1000) if limit and res.warning_s else "",
            names.VAR_SOUNDS: f"{self._cfg.prompts.sound_prefix}/{self._cfg.prompts.language}",
            names.VAR_ROUTE: res.route or "",
            names.VAR_DIAL: route_cfg.dial if route_cfg else "",
            names.VAR_DIAL_TIMEOUT: str(route_cfg.timeout_s) if route_cfg else "",
            names.VAR_REASON: res.reason or "",
            names.VAR_DECISION: res.decision or "",
        }
        # IVR_DECISION last: set means complete.
        await self._set_variables(session, [(var, values[var]) for var in names.DECISION_VARS])

    async def _set_variables(self, session: AgiSession, values: list[tuple[str, str]]) -> None:
        if not await session.set_variables(values, mset=self._mset):
            self._mset = False  # this Asterisk has no MSet: one SET VARIABLE each from now on
            log.warning("Asterisk refused EXEC MSet: variables are set one by one from now on")

    async def _screened_out(self, session: AgiSession, scr: Screen, res: _Result) -> None:
        await session.answer()
        if scr.prompt:
            await self._play(session, scr.prompt)
        res.route = scr.route
        res.decision = names.DECISION_ROUTE if scr.route else names.DECISION_HANGUP

    async def _proceed(self, session: AgiSession, call_id: str, scr: Screen, res: _Result) -> None:
        await session.answer()
        rec = self._cfg.recording
        if rec.enabled:
            path = f"{rec.spool_dir}/{call_id}.wav"  # our id only: never caller data
            options = f"{path},{rec.mixmonitor_options}" if rec.mixmonitor_options else path
            await session.exec("MixMonitor", options)
            res.recording = path
        await self._play(session, "recording-notice")
        await self._play(session, "harassment-policy")
        if scr.route:  # the repeat limit's escalation: no menu
            if scr.prompt:
                await self._play(session, scr.prompt)
            res.route = scr.route
            res.decision = names.DECISION_ROUTE
            return
        outcome = await self._run_menu(session)
        if isinstance(outcome, menu.Routed):
            res.route, res.reason = outcome.route, str(Reason.MENU)
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
        call_id_var.set(call_id)
        caller = await self._caller(session)
        uniqueid = _safe_token(env.get("uniqueid"))
        channel = env.get("channel")
        dialled, linked = await self._arguments(session)
        linkedid = _safe_token(linked) if linked else uniqueid
        start = CallStart(
            call_id=call_id,
            uniqueid=uniqueid,
            linkedid=linkedid,
            caller_raw=caller.raw,
            caller_name=kept(env.get("calleridname"), MAX_RAW_KEPT),
            caller_e164=caller.e164,
            caller_class=str(caller.cls),
            dialled=self._dialled(session, dialled)[:32],
            started_at=now,
            channel=channel if SAFE_CHANNEL.match(channel) else None,
        )
        self._journal.record_start(start)
        res = _Result()
        try:
            session.limit(self._cfg.agi.handler_deadline_s)
            try:
                await self._screen_and_run(session, start, caller, res)
            except AgiDeadline:
                session.limit(None)
                await self._fail_open(session, call_id, res)
        except AgiHangup:
            res.hung_up = True
            raise
        finally:
            ended = (
                None
                if res.decision == names.DECISION_ROUTE and not res.hung_up
                else self._clock.now()
            )
            outcome = CallOutcome(
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
                limit_s=res.limit_s if res.decision == names.DECISION_ROUTE else None,
            )
            self._journal.record_outcome(call_id, outcome)
            if self._metrics is not None:
                self._metrics.tallies.count_call(outcome.decision or "none", res.screened or "none")

    async def _screen_and_run(
        self, session: AgiSession, start: CallStart, caller: Caller, res: _Result
    ) -> None:
        call_id, now = start.call_id, start.started_at
        entries, usage = await self._lookup(call_id, caller.e164, now)
        block = match(caller.e164, entries, now) if caller.e164 else None
        policy = policy_for(start.dialled, self._policy, self._by_dialled)
        assessment = caps.assess(caller.e164, usage, self._caps)
        scr = screen(
            caller,
            policy,
            block,
            self._open.at(now),
            self._closed,
            assessment,
            self._cap_routing,
        )
        res.screened = res.reason = str(scr.reason)
        res.entry_id = scr.entry_id
        if scr.reason is Reason.DAILY_LIMIT and scr.route:
            res.limit_s = self._caps.per_call_s  # the escalation team gets the per-call cap
        else:
            res.limit_s = assessment.limit_s
        if res.limit_s is not None:
            res.warning_s = caps.warning_for(res.limit_s, self._caps.warning_lead_s)
        self._alert_screen(call_id, caller.e164, now, scr, assessment)
        log.info(
            "call %s uniqueid=%s class=%s screen=%s",
            call_id,
            start.uniqueid,
            caller.cls,
            scr.reason,
        )
        if session.tainted and not session.resynced:  # junk arrived during the lookup
            await session.resync()
        if scr.proceed:
            await self._proceed(session, call_id, scr, res)
        else:
            await self._screened_out(session, scr, res)
        await self._set_decision(session, call_id, res)
        if res.decision == names.DECISION_ROUTE and res.limit_s is not None:
            self._monitor.routed(call_id, start.uniqueid, caller.e164, res.limit_s, res.warning_s)

    async def _fail_open(self, session: AgiSession, call_id: str, res: _Result) -> None:
        """Past the handler's deadline: say so to the dialplan, which then takes its default
        (`ivr-guard-failopen`). An empty IVR_DECISION leads there too, should this fail."""
        log.error(
            "call %s not decided within agi.handler_deadline_s (%g s): failing open",
            call_id,
            self._cfg.agi.handler_deadline_s,
        )
        res.decision, res.reason, res.route = names.DECISION_FAILOPEN, "deadline", None
        await session.settle()  # the reply to the command that was cut short
        await self._set_variables(
            session, [(names.VAR_REASON, res.reason), (names.VAR_DECISION, res.decision)]
        )

    def _alert_screen(
        self,
        call_id: str,
        e164: str | None,
        now: datetime,
        scr: Screen,
        assessment: caps.Assessment,
    ) -> None:
        kind = _ALERT_FOR.get(scr.reason)
        if kind is None:
            return
        details: dict[str, str | int | float | None] = {"route": scr.route}
        elapsed: float | None = None
        cap: int | None = None
        if kind is AlertType.BLOCKED:
            details["entry_id"] = scr.entry_id
        elif kind is AlertType.DAILY_LIMIT:
            elapsed, cap = assessment.used_s, self._caps.daily_budget_s
        elif kind is AlertType.REPEAT_LIMIT:
            details["calls_in_window"] = assessment.calls_in_window
            details["window_s"] = self._caps.repeat_window_s
            details["action"] = "route" if scr.proceed else "refuse"
        self._alerts.raise_alert(Alert(kind, call_id, e164, now, elapsed, cap, details))
