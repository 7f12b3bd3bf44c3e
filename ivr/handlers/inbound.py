"""The `inbound` AGI script: gathers a call's facts, asks `core.decision`, and carries the
decision out over AGI (notices, recording, menu, then the dialplan's variables)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from ivr import names
from ivr.agi.errors import AgiDeadline, AgiHangup
from ivr.agi.session import AgiSession
from ivr.calls.ids import new_call_id
from ivr.calls.monitor import CallMonitor
from ivr.clock import Clock
from ivr.config import Config
from ivr.core import caps
from ivr.core.blocklist import BlockEntry, candidate_patterns
from ivr.core.decision import Action, Decision, Facts, decide
from ivr.core.hours import OpenStates
from ivr.db.errors import DB_ERRORS
from ivr.db.journal import CallJournal
from ivr.db.screening import ScreeningFacts
from ivr.events.publisher import AlertSink
from ivr.handlers.announcer import Announcer
from ivr.handlers.arrival import Arrival, arrival
from ivr.handlers.records import dialplan_variables, outcome, start_row
from ivr.keys import CallTokens
from ivr.logs import Log, call_id_var
from ivr.metrics import Metrics

log = Log("ivr.inbound")


class InboundHandler:
    """One instance serves every call; per-call state lives in locals."""

    def __init__(
        self,
        cfg: Config,
        facts: ScreeningFacts,
        journal: CallJournal,
        clock: Clock,
        alerts: AlertSink,
        monitor: CallMonitor,
        tokens: CallTokens,
        new_id: Callable[[], str] = new_call_id,
        metrics: Metrics | None = None,
    ) -> None:
        self._cfg = cfg
        self._facts = facts
        self._journal = journal
        self._clock = clock
        self._alerts = alerts
        self._monitor = monitor
        self._tokens = tokens
        self._new_id = new_id
        self._metrics = metrics
        self._rules = cfg.decision_rules()
        self._zone = cfg.hours.zone()
        self._open = OpenStates(cfg.hours.schedule())
        self._voice = Announcer(cfg)
        self.db_failures = 0
        self._mset = True  # until Asterisk refuses EXEC MSet

    @property
    def missing_prompts(self) -> int:
        return self._voice.missing_prompts

    def close(self) -> None:
        self._facts.close()

    async def __call__(self, session: AgiSession) -> None:
        now = self._clock.now()
        call_id = self._new_id()
        call_id_var.set(call_id)
        came = await arrival(session, self._cfg.screening.region)
        self._journal.record_start(start_row(call_id, came, now))
        decision: Decision | None = None
        recording: str | None = None
        failed_open = hung_up = False
        try:
            session.limit(self._cfg.agi.handler_deadline_s)
            try:
                facts = await self._facts_of(call_id, came, now)
                decision = self._screen(call_id, came, facts)
                if session.tainted and not session.resynced:  # junk came during the lookup
                    await session.resync()
                recording = await self._voice.announce(session, call_id, decision.record)
                if decision.action is Action.MENU:
                    decision = decide(facts, self._rules, await self._voice.menu(session))
                if decision.prompt:
                    await self._voice.play(session, decision.prompt)
                token = self._tokens.token(call_id)
                variables = dialplan_variables(self._cfg, call_id, token, decision, recording)
                await self._set_variables(session, variables)
                if decision.action is Action.ROUTE and decision.limit_s is not None:
                    self._monitor.routed(
                        call_id,
                        came.uniqueid,
                        came.caller.e164,
                        decision.limit_s,
                        decision.warning_s,
                    )
            except AgiDeadline:
                session.limit(None)
                failed_open = True
                await self._fail_open(session, call_id)
        except AgiHangup:
            hung_up = True
            raise
        finally:
            out = outcome(decision, recording, failed_open, hung_up, now, self._clock.now())
            self._journal.record_outcome(call_id, out)
            if self._metrics is not None:
                screened = str(decision.screened) if decision else "none"
                self._metrics.tallies.count_call(out.decision or "none", screened)

    async def _facts_of(self, call_id: str, came: Arrival, now: datetime) -> Facts:
        entries, usage = await self._lookup(call_id, came.caller.e164, now)
        hours = self._open.at(now)
        return Facts(call_id, came.caller, came.dialled, entries, usage, hours, now)

    def _screen(self, call_id: str, came: Arrival, facts: Facts) -> Decision:
        d = decide(facts, self._rules)
        for alert in d.alerts:
            self._alerts.raise_alert(alert)
        log.info(
            "call %s uniqueid=%s class=%s screen=%s",
            call_id,
            came.uniqueid,
            came.caller.cls,
            d.screened,
        )
        return d

    async def _lookup(
        self, call_id: str, e164: str | None, now: datetime
    ) -> tuple[list[BlockEntry], caps.Usage | None]:
        """Fails open when the database does not answer: no blocklist match, no per-caller caps
        (the per-call cap still applies)."""
        if e164 is None:
            return [], None
        policy = self._rules.caps
        patterns = candidate_patterns(e164, self._cfg.screening.blocklist_min_prefix_len)
        day, window = caps.usage_since(now, self._zone, policy)
        usage_of = None if caps.is_exempt(e164, policy) else (e164, day, window, call_id)
        try:
            return await self._facts.lookup(patterns, usage_of)
        except DB_ERRORS as exc:
            self.db_failures += 1
            log.error(
                "call %s: database unavailable, blocklist and caps fail open: %r", call_id, exc
            )
            return [], None

    async def _set_variables(self, session: AgiSession, values: list[tuple[str, str]]) -> None:
        if not await session.set_variables(values, mset=self._mset):
            self._mset = False  # this Asterisk has no MSet: one SET VARIABLE each from now on
            log.warning("Asterisk refused EXEC MSet: variables are set one by one from now on")

    async def _fail_open(self, session: AgiSession, call_id: str) -> None:
        """Past the handler's deadline: say so to the dialplan, which then takes its default
        (`ivr-guard-failopen`). An empty IVR_DECISION leads there too, should this fail."""
        log.error(
            "call %s not decided within agi.handler_deadline_s (%g s): failing open",
            call_id,
            self._cfg.agi.handler_deadline_s,
        )
        await session.settle()  # the reply to the command that was cut short
        await self._set_variables(
            session,
            [(names.VAR_REASON, "deadline"), (names.VAR_DECISION, names.DECISION_FAILOPEN)],
        )
