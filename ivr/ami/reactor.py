"""AMI events → call bookkeeping: answers, hang-ups and CDRs, each reaction idempotent.

- `DialEnd` with `DialStatus: ANSWER` on a watched channel: the cap timers restart at the answer.
- `Hangup` of a watched channel: the call ended; its timers stop and its row gets `ended_at`.
- `BridgeEnter`/`BridgeLeave` of a watched caller channel: the time bridged with the agent, the
  talk time, as a fallback to the hang-up handler's figure; leaving the bridge also stops the
  call's cap timers (a redirect out of `Dial` ends the talk while the channel lives on). The
  figure waits `cdr_grace_s` after the `Hangup` so the handler's usually lands first; whichever
  lands first counts and the other is a no-op (`ivr.db.calls.account`). A `Cdr`'s
  `BillableSeconds` is not used: it counts from the caller channel's own answer, the IVR too.
- After every (re)login, `CoreShowChannels`: watched calls whose channel is gone ended while we
  were away; they are closed as `ended-unobserved`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import datetime

from ivr.ami.client import AmiClient, AmiError
from ivr.calls.monitor import CallMonitor
from ivr.clock import Clock
from ivr.db.calls import Closed, TalkReport
from ivr.db.journal import CallJournal

log = logging.getLogger("ivr.ami.reactor")


class Reactor:
    def __init__(
        self, journal: CallJournal, monitor: CallMonitor, clock: Clock, *, cdr_grace_s: float = 2.0
    ) -> None:
        self._journal = journal
        self._monitor = monitor
        self._clock = clock
        self._grace = cdr_grace_s
        self._later: dict[asyncio.TimerHandle, TalkReport] = {}
        # Per caller channel: time bridged so far, and since when it is bridged now (if it is).
        self._talk: dict[str, tuple[float, datetime | None]] = {}
        self.resyncs = 0

    def attach(self, ami: AmiClient) -> None:
        ami.on("DialEnd", self.on_dial_end)
        ami.on("Hangup", self.on_hangup)
        ami.on("BridgeEnter", self.on_bridge_enter)
        ami.on("BridgeLeave", self.on_bridge_leave)
        ami.on_connect(self.resync)

    def on_dial_end(self, ev: Mapping[str, str]) -> None:
        if ev.get("DialStatus") == "ANSWER":
            self._monitor.answered(ev.get("Uniqueid", ""))

    def on_bridge_enter(self, ev: Mapping[str, str]) -> None:
        uid = ev.get("Uniqueid", "")
        if self._monitor.knows(uid):
            total, _ = self._talk.get(uid, (0.0, None))
            self._talk[uid] = (total, self._clock.now())

    def on_bridge_leave(self, ev: Mapping[str, str]) -> None:
        uid = ev.get("Uniqueid", "")
        total, since = self._talk.get(uid, (0.0, None))
        if since is None:
            return
        self._talk[uid] = (total + (self._clock.now() - since).total_seconds(), None)
        # The talk is over (hang-up, cap, or a redirect out of Dial): no cap alert may follow.
        self._monitor.ended(uniqueid=uid)

    def on_hangup(self, ev: Mapping[str, str]) -> None:
        uid = ev.get("Uniqueid", "")
        watched = self._monitor.ended(uniqueid=uid) is not None
        if uid in self._talk:
            self.on_bridge_leave(ev)  # a Hangup can come before its BridgeLeave
        state = self._talk.pop(uid, None)
        if not watched and state is None:
            return
        now = self._clock.now()
        cause = ev.get("Cause", "")
        reason = "hangup" if not cause.isdigit() else f"hangup-{int(cause)}"
        self._journal.record_closed(Closed(uid, now, reason[:24]))
        if state is not None:
            self._report(TalkReport(state[0], "ami-bridge", now, uniqueid=uid))

    def _report(self, report: TalkReport) -> None:
        if self._grace <= 0:
            self._journal.record_talk(report)
            return
        handle: asyncio.TimerHandle

        def later() -> None:
            self._later.pop(handle, None)
            self._journal.record_talk(report)

        handle = asyncio.get_running_loop().call_later(self._grace, later)
        self._later[handle] = report

    async def resync(self, ami: AmiClient) -> None:
        try:
            channels = await ami.action_list("CoreShowChannels")
        except AmiError as exc:
            log.warning("AMI re-sync failed: %s", exc)
            return
        live = {ch.get("Uniqueid", "") for ch in channels}
        now = self._clock.now()
        ended = {w.uniqueid for w in self._monitor.resync(live)}
        # Calls that left the agent (no longer watched) and hung up while AMI was away.
        ended |= {uid for uid in self._talk if uid not in live}
        for uid in ended:
            self._journal.record_closed(Closed(uid, now, "ended-unobserved"))
            total, since = self._talk.pop(uid, (0.0, now))
            if since is None:  # it had left the bridge while we saw it: that time is known
                self._report(TalkReport(total, "ami-bridge", now, uniqueid=uid))
        self.resyncs += 1
        log.info("AMI re-sync: %d live channels, %d calls ended unseen", len(live), len(ended))

    def close(self) -> None:
        """Hand the reports still in their grace period to the journal now."""
        for handle, report in self._later.items():
            handle.cancel()
            self._journal.record_talk(report)
        self._later.clear()
