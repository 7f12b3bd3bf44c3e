"""The composition root: builds every part from the configuration and runs them together."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import resource
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from ivr import names
from ivr.agi.server import AgiServer
from ivr.agi.session import Deadlines
from ivr.ami.client import AmiAuthError, AmiClient
from ivr.ami.reactor import Reactor
from ivr.api.server import ApiServer
from ivr.calls.ending import CallEnder
from ivr.calls.ids import new_call_id
from ivr.calls.monitor import CallMonitor
from ivr.clock import Clock, SystemClock
from ivr.config import Config, parse_hostport
from ivr.core.alerts import Alert, AlertType
from ivr.core.caller import classify
from ivr.core.review import SYSTEM_ACTOR, Actor
from ivr.core.seals import Seals
from ivr.db.engine import redact
from ivr.db.errors import DB_ERRORS
from ivr.db.journal import CallJournal
from ivr.db.migrate import schema_status
from ivr.events.publisher import AlertPublisher
from ivr.handlers.hangup import HangupHandler
from ivr.handlers.harassment import HarassmentHandler
from ivr.handlers.inbound import InboundHandler
from ivr.metrics import Metrics
from ivr.recordings.handoff import Handoff
from ivr.recordings.service import RecordingService
from ivr.review import trail
from ivr.review.service import BlocklistService
from ivr.tasks import Supervisor
from ivr.wiring import Parts

log = logging.getLogger("ivr")


class SchemaOutdated(Exception):
    """The database schema is not at the migrations' head."""


class ServiceFailed(Exception):
    """A background task of the service failed or ended: the service stops with an error."""


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
    seals: Seals
    clock: Clock
    metrics_port: int | None = None
    primary: bool = True  # runs the jobs one service needs once (see `start`)
    ender: CallEnder | None = None  # its pending harassment holds are awaited at close
    api: ApiServer | None = None  # the supervisors' API (the primary worker's)
    tasks: Supervisor = field(default_factory=Supervisor)

    async def start(self, host: str, port: int, *, reuse_port: bool = False) -> None:
        """Record expiries due, start the background tasks, then accept calls.

        Every worker runs its journal, its alert queue and its AMI connection; the primary
        one also the blocklist expiry, the recording hand-off and purge, and the metrics
        (another worker serves them on the next port)."""
        jobs: dict[str, Coroutine[Any, Any, None]] = {"call-journal": self.journal.run()}
        if self.alerts.enabled:
            jobs["mqtt-alerts"] = self.alerts.run()
        if self.primary:
            self.journal.replay()
            await self._sweep()
            jobs["audit-anchor"] = self._anchors()
            jobs["blocklist-expiry"] = self._sweeper()
            jobs["recording-handoff"] = self.handoff.run()
            jobs["recording-purge"] = self._purger()
        if self.ami is not None:
            jobs["ami"] = self._ami(self.ami)
        for name, job in jobs.items():
            self.tasks.start(name, job)
        if self.cfg.metrics.listen:
            m_host, m_port = parse_hostport(self.cfg.metrics.listen)
            self.metrics_port = await asyncio.to_thread(self.metrics.serve, m_host, m_port)
            log.info("Prometheus metrics on http://%s:%d/metrics", m_host, self.metrics_port)
        if self.api is not None:
            await self.api.start()
        await self.agi.start(host, port, reuse_port=reuse_port)

    async def _ami(self, ami: AmiClient) -> None:
        """AMI is an aid, not a dependency: calls go on without it (hang-up handler accounting)."""
        try:
            await ami.run()
        except* AmiAuthError as group:
            for exc in group.exceptions:
                log.error("%s; AMI disabled until restart", exc)
        await asyncio.Event().wait()  # disabled, not failed: the service goes on

    async def _anchors(self) -> None:
        """Seal the rows from before the key (once, after the upgrade that brought it), then
        publish the audit chain's head whenever it has moved (the log, and MQTT). Calls are
        taken meanwhile: a database that is down delays this, not them."""
        while True:
            try:
                await trail.seal_older_rows(self.engine, self.seals, self.clock)
                break
            except DB_ERRORS as exc:
                log.warning("sealing the rows from before the key: %r; will retry", exc)
                await asyncio.sleep(5.0)
        last = None
        while True:
            try:
                anchor = await trail.anchor_now(self.engine)
            except DB_ERRORS as exc:
                log.warning("audit anchor: database: %r; will retry", exc)
            else:
                if anchor is not None and anchor != last:
                    self.alerts.raise_alert(
                        Alert(
                            AlertType.AUDIT_ANCHOR,
                            None,
                            None,
                            self.clock.now(),
                            details={"anchor": str(anchor)},
                        )
                    )
                    last = anchor
            await asyncio.sleep(self.cfg.audit.anchor_interval_s)

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
        self.tasks.stopping()
        if self.api is not None:
            await self.api.close()
        await self.agi.close(grace=grace)
        if self.ender is not None:
            await self.ender.drain(timeout=min(grace, 5.0))
        self.monitor.close()
        self.reactor.close()
        await self.journal.close(timeout=grace)
        self.inbound.close()
        if self.alerts.enabled:
            try:
                await self.alerts.flush(timeout=min(grace, 5.0))
            except TimeoutError:
                log.error("stopping with %d alerts not delivered", self.alerts.backlog)
        await self.tasks.close()
        await asyncio.to_thread(self.metrics.close)
        await self.engine.dispose()


def build_app(
    cfg: Config,
    *,
    clock: Clock | None = None,
    engine: AsyncEngine | None = None,
    new_id: Callable[[], str] = new_call_id,
    primary: bool = True,
) -> App:
    """Wire the service from the composition root's parts; nothing is started."""
    parts = Parts(cfg, clock or SystemClock(), engine=engine, new_id=new_id)
    return app_from(parts, primary=primary)


def app_from(parts: Parts, *, primary: bool = True, api: bool = True) -> App:
    """The service from `parts`; `api`: serve the supervisors' API (the primary only)."""
    cfg, clock = parts.cfg, parts.clock
    journal, monitor, alerts, ami, metrics = (
        parts.journal,
        parts.monitor,
        parts.alerts,
        parts.ami,
        parts.metrics,
    )
    reactor = Reactor(journal, monitor, clock, cdr_grace_s=cfg.ami.cdr_grace_s)
    if ami is not None:
        reactor.attach(ami)
    inbound = parts.inbound
    a = cfg.agi
    agi = AgiServer(
        {
            names.SCRIPT_INBOUND: inbound,
            names.SCRIPT_HANGUP: HangupHandler(journal, monitor, clock, parts.tokens),
            names.SCRIPT_HARASSMENT: HarassmentHandler(parts.ender, ami, parts.tokens),
        },
        allow=a.allow,
        deadlines=Deadlines(a.environment_timeout_s, a.command_timeout_s, a.media_timeout_s),
        max_env_bytes=a.max_environment_bytes,
        observe=metrics.tallies.observe_handler,
        max_sessions=session_budget(a.max_sessions),
        max_sessions_per_peer=a.max_sessions_per_peer,
    )
    handoff = parts.handoff
    metrics.gauges(
        {
            "ivr_agi_sessions": ("FastAGI sessions in progress.", lambda: agi.active_sessions),
            "ivr_agi_refused_total": (
                "FastAGI connections refused at agi.max_sessions or max_sessions_per_peer.",
                lambda: agi.refused_sessions,
            ),
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
        parts.engine,
        journal,
        inbound,
        agi,
        parts.blocklist,
        alerts,
        monitor,
        reactor,
        ami,
        handoff,
        parts.recordings,
        metrics,
        parts.seals,
        clock,
        primary=primary,
        ender=parts.ender,
        api=ApiServer(parts) if primary and api else None,
    )


async def check_schema(engine: AsyncEngine, url: str) -> None:
    status = await schema_status(engine)
    if not status.up_to_date:
        raise SchemaOutdated(
            f"database {redact(url)} is at revision {status.current or 'none'}, "
            f"the code needs {status.head}: run `ivr db upgrade`"
        )


DESCRIPTORS_KEPT = 256  # for the database, storage, AMI, MQTT, metrics and logs


def session_budget(wanted: int) -> int:
    """`wanted` FastAGI sessions, or fewer when they would not fit below this process's
    descriptor limit; the soft limit is raised to the hard one first (`LimitNOFILE` in the
    systemd unit sets both)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    ceiling = hard if hard != resource.RLIM_INFINITY else 1_048_576
    if soft != resource.RLIM_INFINITY and soft < ceiling:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (ceiling, hard))
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    fits = wanted if soft == resource.RLIM_INFINITY else max(1, soft - DESCRIPTORS_KEPT)
    if fits < wanted:
        log.warning(
            "agi.max_sessions %d does not fit %d descriptors: at most %d sessions",
            wanted,
            soft,
            fits,
        )
    return min(wanted, fits)


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
    worker: int | None = None,
) -> App:
    """Run until `stop` is set, then close gracefully. Refuses an out-of-date schema; raises
    `ServiceFailed` when a background task fails (after closing as gracefully).

    `freeze`: `freeze_heap` before accepting calls; for a process that only serves.
    `worker`: this process is worker N of `ivr serve --workers` (SO_REUSEPORT listener; only
    worker 0 runs the once-per-service jobs; worker N serves metrics on the port + N).
    """
    if worker:
        cfg = _worker_config(cfg, worker)
    app = build_app(cfg, clock=clock, primary=not worker)
    try:
        await check_schema(app.engine, cfg.database_url())
    except BaseException:
        await app.engine.dispose()
        raise
    host, port = parse_hostport(cfg.agi.listen)
    if freeze:
        freeze_heap(cfg.screening.region)
    try:
        await app.start(host, port, reuse_port=worker is not None)
        if started is not None:
            started.set()
        stopping = asyncio.create_task(stop.wait())
        failing = asyncio.create_task(app.tasks.failed.wait())
        await asyncio.wait({stopping, failing}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        failing.cancel()
        log.info("stopping: waiting for calls in progress")
    finally:
        await app.close(grace=10.0)
    if app.tasks.failure is not None:
        failure = app.tasks.failure
        raise ServiceFailed(f"a background task failed: {failure!r}") from failure
    return app


def _worker_config(cfg: Config, worker: int) -> Config:
    """Worker N > 0 serves its metrics on the configured port + N (port 0 stays 0)."""
    if not cfg.metrics.listen:
        return cfg
    host, port = parse_hostport(cfg.metrics.listen)
    listen = (
        f"[{host}]:{port + worker if port else 0}"
        if ":" in host
        else f"{host}:{port + worker if port else 0}"
    )
    return cfg.model_copy(update={"metrics": cfg.metrics.model_copy(update={"listen": listen})})
