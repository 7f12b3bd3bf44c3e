"""The calls this process routed, with timers that alert supervisors as a cap approaches.

Asterisk enforces the limit itself (Dial's L() option); these timers only tell supervisors in
real time. They start when the call is routed and restart when AMI reports the agent answered
(`DialEnd`), so without AMI a warning may come early by the ringing time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from ivr.clock import Clock
from ivr.core.alerts import Alert, AlertType
from ivr.events.publisher import AlertSink

log = logging.getLogger("ivr.monitor")


@dataclass
class Watch:
    call_id: str
    uniqueid: str
    caller: str | None
    limit_s: int
    warning_s: int | None
    answered: bool = False
    timers: list[asyncio.TimerHandle] = field(default_factory=list)

    def cancel(self) -> None:
        for t in self.timers:
            t.cancel()
        self.timers.clear()


class CallMonitor:
    def __init__(self, alerts: AlertSink, clock: Clock) -> None:
        self._alerts = alerts
        self._clock = clock
        self._by_uid: dict[str, Watch] = {}
        self._by_id: dict[str, Watch] = {}

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

    def _forget(self, w: Watch) -> None:
        w.cancel()
        self._by_uid.pop(w.uniqueid, None)
        self._by_id.pop(w.call_id, None)

    def _arm(self, w: Watch) -> None:
        w.cancel()
        loop = asyncio.get_running_loop()
        if w.warning_s:
            at = w.limit_s - w.warning_s
            w.timers.append(loop.call_later(at, self._fire, w, AlertType.CAP_WARNING, at))
        w.timers.append(loop.call_later(w.limit_s, self._reached, w))

    def _fire(self, w: Watch, kind: AlertType, elapsed: float) -> None:
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

    def _reached(self, w: Watch) -> None:
        self._fire(w, AlertType.CAP_REACHED, w.limit_s)
        # Asterisk ends the call now; nothing more to watch even if its hang-up is never seen.
        self._forget(w)
