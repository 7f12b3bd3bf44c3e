"""The composition root: every part of the service is built here, once, from the configuration.

`ivr serve` (through `ivr.app`), the supervisor commands, `ivr doctor` and `ivr simulate` all
take their parts from a `Parts`; none of them wires objects on its own. Parts are built on first
use, so a command only builds (and connects) what it needs.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property

from sqlalchemy.ext.asyncio import AsyncEngine

from ivr.ami.client import AmiClient, AmiSettings
from ivr.calls.ending import CallEnder
from ivr.calls.ids import new_call_id
from ivr.calls.monitor import CallMonitor
from ivr.clock import Clock
from ivr.config import AmiConfig, Config
from ivr.core.seals import Seals
from ivr.db.engine import create_engine
from ivr.db.journal import CallJournal
from ivr.db.screening import ScreeningFacts, screening_facts
from ivr.events.publisher import AlertPublisher
from ivr.handlers.inbound import InboundHandler
from ivr.keys import CallTokens, service_key
from ivr.metrics import Metrics
from ivr.recordings.handoff import Handoff
from ivr.recordings.service import RecordingService
from ivr.recordings.storage import Storage, build_storage
from ivr.review.service import BlocklistService


class Parts:
    """The service's objects for one configuration, clock and database."""

    def __init__(
        self,
        cfg: Config,
        clock: Clock,
        *,
        engine: AsyncEngine | None = None,
        timeout_s: float | None = None,
        new_id: Callable[[], str] = new_call_id,
        key: bytes | None = None,
    ) -> None:
        """`engine`: another database than the configured one (`ivr simulate`); `timeout_s`:
        a longer database wait than the call path's (the supervisor commands); `key`: the
        service key, when not the one in the data folder (tests)."""
        self.cfg = cfg
        self.clock = clock
        self._engine = engine
        self._timeout_s = timeout_s or cfg.database.timeout_s
        self._new_id = new_id
        self._key = key

    @cached_property
    def engine(self) -> AsyncEngine:
        if self._engine is not None:
            return self._engine
        return create_engine(self.cfg.database_url(), timeout_s=self._timeout_s)

    @cached_property
    def journal(self) -> CallJournal:
        return CallJournal(
            self.engine, spill_dir=self.cfg.data_path() / "journal", seals=self.seals
        )

    @cached_property
    def alerts(self) -> AlertPublisher:
        return AlertPublisher(self.cfg.mqtt)

    @cached_property
    def monitor(self) -> CallMonitor:
        return CallMonitor(self.alerts, self.clock)

    @cached_property
    def ami(self) -> AmiClient | None:
        """None when `[ami] host` is not set."""
        return AmiClient(ami_settings(self.cfg.ami)) if self.cfg.ami.host else None

    @cached_property
    def blocklist(self) -> BlocklistService:
        return BlocklistService(self.engine, self.cfg, self.clock, self.seals)

    @cached_property
    def ender(self) -> CallEnder:
        return CallEnder(self.engine, self.cfg, self.blocklist, self.alerts, self.clock, self.seals)

    @cached_property
    def storage(self) -> Storage:
        return build_storage(self.cfg)

    @cached_property
    def recordings(self) -> RecordingService:
        return RecordingService(self.engine, self.storage, self.clock, self.seals)

    @cached_property
    def handoff(self) -> Handoff:
        return Handoff(self.engine, self.cfg, self.storage, self.alerts, self.clock, self.seals)

    @cached_property
    def metrics(self) -> Metrics:
        return Metrics()

    @cached_property
    def screening(self) -> ScreeningFacts:
        """Read from the database this `Parts` uses (the engine's), not the configured one."""
        url = self.engine.url.render_as_string(hide_password=False)
        return screening_facts(url, self.engine, self.cfg.database.timeout_s)

    @cached_property
    def key(self) -> bytes:
        """The service key (created in the data folder on first use)."""
        return self._key or service_key(self.cfg.data_path())

    @cached_property
    def tokens(self) -> CallTokens:
        """Per-call tokens, under the service key."""
        return CallTokens(self.key)

    @cached_property
    def seals(self) -> Seals:
        """The audit chain's and the rows' seals, under the service key."""
        return Seals(self.key)

    @cached_property
    def inbound(self) -> InboundHandler:
        return InboundHandler(
            self.cfg,
            self.screening,
            self.journal,
            self.clock,
            self.alerts,
            self.monitor,
            self.tokens,
            self._new_id,
            self.metrics,
        )


def ami_settings(c: AmiConfig) -> AmiSettings:
    return AmiSettings(
        host=c.host,
        port=c.port,
        username=c.username,
        secret=c.secret,
        action_timeout_s=c.action_timeout_s,
        ping_interval_s=c.ping_interval_s,
    )
