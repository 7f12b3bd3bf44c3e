"""The hand-off pipeline: spool → storage, verified, and only then the spool copy removed.

Each recording has a durable state in the database, and every step is idempotent, so the
service can be killed at any point and carry on where it was:

    spooled   the file is complete; size and SHA-256 taken at the source
    stored    the backend holds a copy (its URI recorded)
    verified  the stored copy was read back: same size, same SHA-256
    complete  the spool copy is removed
    failed    `storage.max_attempts` tries failed: alert raised, the file stays in the spool

The spool is scanned every `storage.scan_interval_s`; files with no row are adopted (that is
also how recordings left by a crash or written while the service was down are found). There is
no `MixMonitorStop` at a plain hang-up, so a file is complete when its call has ended and it has
not changed for `settle_s`, or, with no ended call known, when it has not changed for `idle_s`.
"""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from ivr.clock import Clock
from ivr.config import Config
from ivr.core.alerts import Alert, AlertType
from ivr.core.seals import SealBroken, Seals
from ivr.db import recordings as repo
from ivr.db.errors import DB_ERRORS
from ivr.events.publisher import AlertSink
from ivr.recordings.storage import (
    Digest,
    SourceChanged,
    Storage,
    StorageError,
    dated_key,
    hash_file,
)

log = logging.getLogger("ivr.recordings")

# Names we handle: our `<call id>.wav` and the fail-open `failopen-<uniqueid>.wav`. Anything
# else in the spool is left alone (and named in the log once).
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,90}\.wav$")
_CALL_FILE = re.compile(r"^([0-9a-f]{32}|call[0-9]{4,})\.wav$")


def call_id_of(name: str) -> str | None:
    m = _CALL_FILE.match(name)
    return m.group(1) if m else None


class Handoff:
    def __init__(
        self,
        engine: AsyncEngine,
        cfg: Config,
        storage: Storage,
        alerts: AlertSink,
        clock: Clock,
        seals: Seals,
    ) -> None:
        self._engine = engine
        self._seals = seals
        self._cfg = cfg
        self._s = cfg.storage
        self._spool = Path(cfg.recording.spool_dir)
        self._storage = storage
        self._alerts = alerts
        self._clock = clock
        self._zone = cfg.hours.zone()
        self._unchanged: dict[str, tuple[tuple[int, float], datetime]] = {}
        self._ignored: set[str] = set()
        self._spool_alerted = False
        self._full_alerted = False
        self.stored = 0
        self.failed = 0
        self.backlog = 0

    async def run(self) -> None:
        """Scan and hand off until cancelled; a database outage only delays the work."""
        while True:
            try:
                await self.scan_once()
            except DB_ERRORS as exc:
                log.warning("recording hand-off: database unavailable (%r); retrying", exc)
            except Exception:
                # A bug must not stop every later hand-off: log it and scan again.
                log.exception("recording hand-off: unexpected error; scanning again")
            await asyncio.sleep(self._s.scan_interval_s)

    async def scan_once(self) -> int:
        """One pass: adopt complete spool files, move every due row one step or more."""
        await self._adopt()
        moved = 0
        now = self._clock.now()
        async with self._engine.connect() as conn:
            rows = await repo.due(conn, now, limit=500)
        self.backlog = len(rows)
        for row in rows:
            moved += await self._work(row)
        self._check_spool_usage()
        return moved

    # adoption -----------------------------------------------------------------------------
    def _spool_files(self) -> dict[str, tuple[int, float]]:
        try:
            entries = list(self._spool.iterdir())
        except FileNotFoundError:
            return {}
        except OSError as exc:
            log.error("cannot read the spool %s: %s", self._spool, exc)
            return {}
        found: dict[str, tuple[int, float]] = {}
        for p in entries:
            if not SAFE_NAME.match(p.name):
                if p.name not in self._ignored and not p.name.startswith("."):
                    self._ignored.add(p.name)
                    log.warning("spool: ignoring a file we did not name: %r", p.name)
                continue
            try:
                st = p.lstat()
            except OSError:
                continue
            if p.is_file() and not p.is_symlink():
                found[p.name] = (st.st_size, st.st_mtime)
        return found

    async def _adopt(self) -> None:
        files = self._spool_files()
        if not files:
            return
        async with self._engine.connect() as conn:
            known = await repo.by_names(conn, list(files))
            new = [n for n in files if n not in known]
            calls = await repo.call_facts(conn, [c for n in new if (c := call_id_of(n))])
        now = self._clock.now()
        # When each file was first seen as it is now: a file's mtime is the OS's clock, which
        # need not be the service's (IVR_CLOCK, or another host's clock on a shared spool).
        self._unchanged = {
            n: seen for n, seen in self._unchanged.items() if n in files and seen[0] == files[n]
        }
        for name in new:
            _, mtime = files[name]
            call = calls.get(call_id_of(name) or "")
            seen = self._unchanged.setdefault(name, (files[name], now))[1]
            age = max(now.timestamp() - mtime, (now - seen).total_seconds())
            ended = call is not None and call["ended_at"] is not None
            if age < (self._s.settle_s if ended else self._s.idle_s):
                continue  # still being written, or its call is still going on
            await self._adopt_one(name, call, now)

    async def _adopt_one(self, name: str, call: dict[str, Any] | None, now: datetime) -> None:
        path = self._spool / name
        try:
            digest = await asyncio.to_thread(hash_file, path)
        except OSError as exc:
            log.warning("spool file %s unreadable: %s", name, exc)
            return
        started = call["started_at"] if call else None
        ended = call["ended_at"] if call else None
        base = started or now
        values = {
            "name": name,
            "call_id": call["call_id"] if call else None,
            "caller": call["caller_e164"] if call else None,
            "started_at": started,
            "ended_at": ended,
            "duration_s": (ended - started).total_seconds() if started and ended else None,
            "bytes": digest.bytes,
            "sha256": digest.sha256,
            "state": "spooled",
            "attempts": 0,
            "retain_until": base + timedelta(days=self._s.retention_days),
            "legal_hold": bool(call and call["legal_hold"]),
            "hold_note": call["hold_note"] if call else None,
            "spooled_at": now,
        }
        try:
            async with self._engine.begin() as conn:
                await repo.insert_row(conn, values, self._seals)
        except IntegrityError:
            return  # another worker adopted it first
        log.info("recording %s spooled: %d bytes, sha256 %s", name, digest.bytes, digest.sha256)

    # the steps ----------------------------------------------------------------------------
    async def _work(self, row: dict[str, Any]) -> int:
        steps = 0
        while row["state"] in repo.ACTIVE:
            try:
                values = await self._step(row)
            except SourceChanged as exc:
                await self._respool(row, exc.digest)
                return steps
            except SealBroken as exc:
                log.error("recording hand-off: %s (run `ivr audit verify`)", exc)
                return steps
            except StorageError as exc:
                if exc.no_space:
                    self._storage_full(row, str(exc))
                await self._retry(row, str(exc))
                return steps
            async with self._engine.begin() as conn:
                if not await repo.advance(conn, row["name"], row["state"], values, self._seals):
                    return steps  # someone else moved it on
            row = {**row, **values}
            steps += 1
            if values["state"] == "stored":
                self._full_alerted = False  # space again: the next full disk is news
        if row["state"] == "complete":
            self.stored += 1
        return steps

    async def _step(self, row: dict[str, Any]) -> dict[str, Any]:
        name, state = row["name"], row["state"]
        expected = Digest(row["bytes"], row["sha256"])
        path = self._spool / name
        if state == "spooled":
            if not path.exists():
                return self._failed(row, "the spool file disappeared before it was stored")
            day = (row["started_at"] or row["spooled_at"]).astimezone(self._zone).date()
            uri = await self._storage.put(path, dated_key(name, day), expected)
            return {"state": "stored", "storage_uri": uri, "stored_at": self._clock.now()}
        if state == "stored":
            got = await self._storage.digest(row["storage_uri"])
            if got != expected:
                log.error("recording %s: stored copy differs (%s); storing again", name, got)
                return {"state": "spooled", "attempts": row["attempts"] + 1}
            return {"state": "verified"}
        # verified: only now may the spool copy go
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot remove the spool copy: {exc.strerror}") from exc
        log.info("recording %s stored and verified at %s", name, row["storage_uri"])
        return {"state": "complete", "next_attempt_at": None, "last_error": None}

    def _storage_full(self, row: dict[str, Any], why: str) -> None:
        """One alert per episode: the recordings wait in the spool until there is room."""
        if self._full_alerted:
            return
        self._full_alerted = True
        log.error("recording storage is full: %s", why)
        self._recording_alert(AlertType.STORAGE_FULL, row, why)

    def _failed(self, row: dict[str, Any], why: str) -> dict[str, Any]:
        self.failed += 1
        log.error("recording %s failed: %s", row["name"], why)
        self._recording_alert(AlertType.RECORDING_FAILED, row, why)
        return {"state": "failed", "last_error": why[:1000]}

    def _recording_alert(self, kind: AlertType, row: dict[str, Any], why: str) -> None:
        details: dict[str, str | int | float | None] = {
            "recording": row["name"],
            "error": why[:200],
        }
        self._alerts.raise_alert(
            Alert(kind, row["call_id"], row["caller"], self._clock.now(), details=details)
        )

    async def _respool(self, row: dict[str, Any], digest: Digest) -> None:
        """Take the new size and hash, and wait for the file to settle before storing it."""
        log.warning("recording %s changed after it was spooled; hashing it again", row["name"])
        values = {
            "bytes": digest.bytes,
            "sha256": digest.sha256,
            "next_attempt_at": self._clock.now() + timedelta(seconds=self._s.settle_s),
        }
        async with self._engine.begin() as conn:
            await repo.advance(conn, row["name"], row["state"], values, self._seals)

    async def _retry(self, row: dict[str, Any], why: str) -> None:
        attempts = row["attempts"] + 1
        if attempts >= self._s.max_attempts:
            values = self._failed(row, f"after {attempts} attempts: {why}")
            values["attempts"] = attempts
        else:
            delay = min(self._s.retry_initial_s * 2 ** (attempts - 1), self._s.retry_max_s)
            values = {
                "attempts": attempts,
                "last_error": why[:1000],
                "next_attempt_at": self._clock.now() + timedelta(seconds=delay),
            }
            log.warning(
                "recording %s: %s (attempt %d, retry in %.0f s)", row["name"], why, attempts, delay
            )
        async with self._engine.begin() as conn:
            await repo.advance(conn, row["name"], row["state"], values, self._seals)

    def _check_spool_usage(self) -> None:
        try:
            usage = shutil.disk_usage(self._spool)
        except OSError:
            return
        percent = 100.0 * usage.used / usage.total if usage.total else 0.0
        high = percent >= self._s.spool_alert_percent
        if high and not self._spool_alerted:
            log.error("spool %s is %.1f %% full", self._spool, percent)
            self._alerts.raise_alert(
                Alert(
                    AlertType.SPOOL_USAGE,
                    None,
                    None,
                    self._clock.now(),
                    details={"percent": round(percent, 1), "spool": str(self._spool)},
                )
            )
        self._spool_alerted = high
