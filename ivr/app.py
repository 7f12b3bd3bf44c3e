"""The composition root: builds every part from the configuration and runs them together."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine

from ivr import compiled, names
from ivr.agi.server import AgiServer
from ivr.agi.session import Deadlines
from ivr.ami.client import AmiAuthError, AmiClient, AmiSettings
from ivr.ami.reactor import Reactor
from ivr.calls.ending import CallEnder
from ivr.calls.monitor import CallMonitor
from ivr.clock import Clock, SystemClock
from ivr.config import AmiConfig, Config, parse_hostport
from ivr.core.caller import classify
from ivr.core.review import SYSTEM_ACTOR, Actor
from ivr.db.engine import create_engine, redact
from ivr.db.journal import CallJournal
from ivr.db.migrate import schema_status
from ivr.events.publisher import AlertPublisher
from ivr.handlers.hangup import HangupHandler
from ivr.handlers.harassment import HarassmentHandler
from ivr.handlers.inbound import DB_ERRORS, InboundHandler, new_call_id
from ivr.metrics import Metrics
from ivr.recordings.handoff import Handoff
from ivr.recordings.service import RecordingService
from ivr.recordings.storage import build_storage
from ivr.review.service import BlocklistService

log = logging.getLogger("ivr")


class SchemaOutdated(Exception):
    """The database schema is not at the migrations' head."""


@dataclass
class App:
    cfg: Config
    engine: AsyncEngine
    journal: CallJournal
    inbound: InboundHandler
    agi: AgiServer
    blocklist: BlocklistService
    alerts: AlertPublisher
    monitor: CallMonitor
    reactor: Reactor
    ami: AmiClient | None
    handoff: Handoff
    recordings: RecordingService
    metrics: Metrics
    metrics_port: int | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def start(self, host: str, port: int) -> None:
        """Record expiries due, start the background tasks, then accept calls."""
        await self._sweep()
        self._tasks = [
            asyncio.create_task(self.journal.run(), name="call-journal"),
            asyncio.create_task(self._sweeper(), name="blocklist-expiry"),
            asyncio.create_task(self.alerts.run(), name="mqtt-alerts"),
            asyncio.create_task(self.handoff.run(), name="recording-handoff"),
            asyncio.create_task(self._purger(), name="recording-purge"),
        ]
        if self.ami is not None:
            self._tasks.append(asyncio.create_task(self._ami(self.ami), name="ami"))
        if self.cfg.metrics.listen:
            m_host, m_port = parse_hostport(self.cfg.metrics.listen)
            self.metrics_port = await asyncio.to_thread(self.metrics.serve, m_host, m_port)
            log.info("Prometheus metrics on http://%s:%d/metrics", m_host, self.metrics_port)
        await self.agi.start(host, port)

    async def _ami(self, ami: AmiClient) -> None:
        """AMI is an aid, not a dependency: calls go on without it (hang-up handler accounting)."""
        try:
            await ami.run()
        except* AmiAuthError as group:
            for exc in group.exceptions:
                log.error("%s; AMI disabled until restart", exc)

    async def _sweep(self) -> None:
        try:
            expired = await self.blocklist.sweep()
        except DB_ERRORS as exc:
            log.warning("blocklist expiry sweep failed, will retry: %r", exc)
        else:
            if expired:
                log.info("blocklist entries expired: %s", expired)

    async def _sweeper(self) -> None:
        """Record `expire` audit events; entries stop acting at their expiry without it."""
        while True:
            await asyncio.sleep(self.cfg.blocklist.sweep_interval_s)
            await self._sweep()

    async def _purger(self) -> None:
        """Delete recordings past retention once a day (never held ones); each is audited."""
        while True:
            try:
                done = await self.recordings.purge(Actor(SYSTEM_ACTOR))
            except DB_ERRORS as exc:
                log.warning("recording purge failed, will retry: %r", exc)
            except Exception:
                log.exception("recording purge: unexpected error; will retry")
            else:
                if done.deleted or done.failed:
                    log.info("purge: %d deleted, %d failed", len(done.deleted), len(done.failed))
            await asyncio.sleep(self.cfg.storage.purge_interval_hours * 3600)

    async def close(self, grace: float = 10.0) -> None:
        """Let calls finish, store what the journal holds, release the database."""
        await self.agi.close(grace=grace)
        self.monitor.close()
        self.reactor.close()
        await self.journal.close(timeout=grace)
        self.inbound.close()
        if self.alerts.enabled:
            try:
                await self.alerts.flush(timeout=min(grace, 5.0))
            except TimeoutError:
                log.error("stopping with %d alerts not delivered", self.alerts.backlog)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.to_thread(self.metrics.close)
        await self.engine.dispose()


def build_app(
    cfg: Config,
    *,
    clock: Clock | None = None,
    engine: AsyncEngine | None = None,
    new_id: Callable[[], str] = new_call_id,
) -> App:
    """Wire the parts; nothing is started."""
    engine = engine or create_engine(cfg.database_url(), timeout_s=cfg.database.timeout_s)
    journal = CallJournal(engine)
    clock = clock or SystemClock()
    alerts = AlertPublisher(cfg.mqtt)
    monitor = CallMonitor(alerts, clock)
    reactor = Reactor(journal, monitor, clock, cdr_grace_s=cfg.ami.cdr_grace_s)
    ami = AmiClient(ami_settings(cfg.ami)) if cfg.ami.host else None
    if ami is not None:
        reactor.attach(ami)
    blocklist = BlocklistService(engine, cfg, clock)
    ender = CallEnder(engine, cfg, blocklist, alerts, clock)
    metrics = Metrics()
    inbound = InboundHandler(cfg, engine, journal, clock, alerts, monitor, new_id, metrics)
    a = cfg.agi
    agi = AgiServer(
        {
            names.SCRIPT_INBOUND: inbound,
            names.SCRIPT_HANGUP: HangupHandler(journal, monitor, clock),
            names.SCRIPT_HARASSMENT: HarassmentHandler(ender, ami),
        },
        allow=a.allow,
        deadlines=Deadlines(a.environment_timeout_s, a.command_timeout_s, a.media_timeout_s),
        max_env_bytes=a.max_environment_bytes,
        observe=metrics.tallies.observe_handler,
    )
    storage = build_storage(cfg)
    handoff = Handoff(engine, cfg, storage, alerts, clock)
    recordings = RecordingService(engine, storage, clock)
    metrics.gauges(
        {
            "ivr_agi_sessions": ("FastAGI sessions in progress.", lambda: agi.active_sessions),
            "ivr_active_calls": ("Routed calls whose time cap is watched.", lambda: len(monitor)),
            "ivr_recording_backlog": (
                "Recordings found in the spool and not yet stored and verified (last scan).",
                lambda: handoff.backlog,
            ),
            "ivr_recordings_failed_total": (
                "Recordings given up after max_attempts.",
                lambda: handoff.failed,
            ),
            "ivr_alert_queue_length": ("Alerts waiting for the broker.", lambda: alerts.backlog),
            "ivr_alerts_dropped_total": (
                "Alerts dropped from a full queue.",
                lambda: alerts.dropped,
            ),
            "ivr_journal_backlog": (
                "Call records waiting for the database.",
                lambda: journal.backlog,
            ),
        }
    )
    return App(
        cfg,
        engine,
        journal,
        inbound,
        agi,
        blocklist,
        alerts,
        monitor,
        reactor,
        ami,
        handoff,
        recordings,
        metrics,
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


async def check_schema(engine: AsyncEngine, url: str) -> None:
    status = await schema_status(engine)
    if not status.up_to_date:
        raise SchemaOutdated(
            f"database {redact(url)} is at revision {status.current or 'none'}, "
            f"the code needs {status.head}: run `ivr db upgrade`"
        )


def freeze_heap(region: str) -> None:
    """Collect once, then take every object built so far (modules, configuration, the region's
    number metadata) out of the cyclic collector's sight. A full collection then scans only what
    calls create: a few ms instead of pauses of 60 to 150 ms with every call in progress waiting
    (measured in bench/)."""
    classify("0312345678", "0", region)  # loads the region's number metadata now, not on a call
    gc.collect()
    gc.freeze()


async def serve(
    cfg: Config,
    stop: asyncio.Event,
    *,
    clock: Clock | None = None,
    started: asyncio.Event | None = None,
    freeze: bool = False,
) -> App:
    """Run until `stop` is set, then close gracefully. Refuses an out-of-date schema.

    `freeze`: `freeze_heap` before accepting calls; for a process that only serves.
    """
    app = build_app(cfg, clock=clock)
    try:
        await check_schema(app.engine, cfg.database_url())
    except BaseException:
        await app.engine.dispose()
        raise
    host, port = parse_hostport(cfg.agi.listen)
    if freeze:
        freeze_heap(cfg.screening.region)
    try:
        await app.start(host, port)
        log.info("call path: %s", compiled.build().summary)
        if started is not None:
            started.set()
        await stop.wait()
        log.info("stopping: waiting for calls in progress")
    finally:
        await app.close(grace=10.0)
    return app
