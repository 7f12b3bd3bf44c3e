"""The calls this process routed, with timers that alert supervisors as a cap approaches.

Asterisk enforces the limit itself (Dial's L() option); these timers only tell supervisors in
real time. They start when the call is routed and restart when AMI reports the agent answered
(`DialEnd`), so without AMI a warning may come early by the ringing time.
"""

from __future__ import annotations

import asyncio
import contextvars
import heapq
import itertools
import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass

from ivr.clock import Clock
from ivr.core.alerts import Alert, AlertType
from ivr.events.publisher import AlertSink
from ivr.logs import call_id_var

log = logging.getLogger("ivr.monitor")


@dataclass(slots=True)
class Watch:
    call_id: str
    uniqueid: str
    caller: str | None
    limit_s: int
    warning_s: int | None
    answered: bool = False
    deadlines: tuple[float, ...] = ()  # loop times of the warning (if any) and of the cap
    armed: int = 0  # the arming its queue entries must carry; older entries are stale


# (loop time, call id, arming, is the cap): only atoms, so the collector stops tracking them.
_Entry = tuple[float, str, int, bool]
_COMPACT_AT = 4096  # stale entries tolerated before the queue is rebuilt


class CallMonitor:
    """One loop timer serves every call: it fires at the earliest entry of a queue of due times.

    Two timer handles per call (each with its context and callback) made every routed call a
    dozen objects the cyclic collector scans; with tens of thousands of calls up, its full
    collections paused every call in progress for tens of milliseconds (bench/).
    """

    def __init__(self, alerts: AlertSink, clock: Clock) -> None:
        self._alerts = alerts
        self._clock = clock
        self._by_uid: dict[str, Watch] = {}
        self._by_id: dict[str, Watch] = {}
        self._queue: list[_Entry] = []
        self._stale = 0
        self._armings = itertools.count(1)
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf
        self._loop: asyncio.AbstractEventLoop | None = None  # found once (a getpid() on 3.11)

    def __len__(self) -> int:
        return len(self._by_id)

    def uniqueids(self) -> set[str]:
        return set(self._by_uid)

    def knows(self, uniqueid: str) -> bool:
        return uniqueid in self._by_uid

    def routed(
        self, call_id: str, uniqueid: str, caller: str | None, limit_s: int, warning_s: int | None
    ) -> None:
        w = Watch(call_id, uniqueid, caller, limit_s, warning_s)
        self._by_uid[uniqueid] = w
        self._by_id[call_id] = w
        self._arm(w)

    def answered(self, uniqueid: str) -> None:
        """The agent answered: the talk time, and so the cap, counts from now."""
        w = self._by_uid.get(uniqueid)
        if w is not None and not w.answered:
            w.answered = True
            self._arm(w)

    def ended(self, *, call_id: str | None = None, uniqueid: str | None = None) -> Watch | None:
        w = self._by_id.get(call_id or "") or self._by_uid.get(uniqueid or "")
        if w is not None:
            self._forget(w)
        return w

    def resync(self, live: Iterable[str]) -> list[Watch]:
        """After an AMI reconnect: the watched calls whose channel is gone ended unseen."""
        alive = set(live)
        gone = [w for uid, w in self._by_uid.items() if uid not in alive]
        for w in gone:
            self._forget(w)
        return gone

    def close(self) -> None:
        for w in list(self._by_id.values()):
            self._forget(w)
        if self._timer is not None:
            self._timer.cancel()
            self._timer, self._timer_at = None, math.inf
        self._queue.clear()
        self._stale = 0
        self._loop = None

    def _disarm(self, w: Watch) -> None:
        self._stale += len(w.deadlines)
        w.deadlines = ()
        w.armed = 0
        if self._stale > _COMPACT_AT and self._stale > len(self._queue) // 2:
            self._queue = [e for e in self._queue if self._current(e) is not None]
            heapq.heapify(self._queue)
            self._stale = 0

    def _current(self, entry: _Entry) -> Watch | None:
        w = self._by_id.get(entry[1])
        return w if w is not None and w.armed == entry[2] else None

    def _forget(self, w: Watch) -> None:
        self._disarm(w)
        self._by_uid.pop(w.uniqueid, None)
        self._by_id.pop(w.call_id, None)

    def _arm(self, w: Watch) -> None:
        self._disarm(w)
        loop = self._running_loop()
        now = loop.time()
        w.armed = next(self._armings)
        entries: list[_Entry] = []
        if w.warning_s:
            entries.append((now + w.limit_s - w.warning_s, w.call_id, w.armed, False))
        entries.append((now + w.limit_s, w.call_id, w.armed, True))
        w.deadlines = tuple(e[0] for e in entries)
        for e in entries:
            heapq.heappush(self._queue, e)
        self._schedule(loop)

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        if not self._queue or self._queue[0][0] >= self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = self._queue[0][0]
        # An empty context: the timer serves every call, so it must not keep the context (and
        # the call id its log lines carry) of the call that happened to arm it.
        self._timer = loop.call_at(self._timer_at, self._due, context=contextvars.Context())

    def _due(self) -> None:
        self._timer, self._timer_at = None, math.inf
        loop = self._running_loop()
        now = loop.time()
        while self._queue and self._queue[0][0] <= now:
            entry = heapq.heappop(self._queue)
            w = self._current(entry)
            if w is None:
                self._stale -= 1
            elif entry[3]:
                self._reached(w)
            else:
                w.deadlines = w.deadlines[1:]
                self._fire(w, AlertType.CAP_WARNING, w.limit_s - (w.warning_s or 0))
        self._schedule(loop)

    def _fire(self, w: Watch, kind: AlertType, elapsed: float) -> None:
        token = call_id_var.set(w.call_id)  # the alert's log line names its own call
        try:
            self._alerts.raise_alert(
                Alert(
                    kind,
                    w.call_id,
                    w.caller,
                    self._clock.now(),
                    elapsed_s=elapsed,
                    cap_s=w.limit_s,
                    details={"answered": w.answered},
                )
            )
        finally:
            call_id_var.reset(token)

    def _reached(self, w: Watch) -> None:
        w.deadlines = ()  # its entry is out of the queue: not stale
        self._fire(w, AlertType.CAP_REACHED, w.limit_s)
        # Asterisk ends the call now; nothing more to watch even if its hang-up is never seen.
        self._forget(w)
