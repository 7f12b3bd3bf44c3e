"""AMI events → call bookkeeping: answers, hang-ups and CDRs, each reaction idempotent.

- `DialEnd` with `DialStatus: ANSWER` on a watched channel: the cap timers restart at the answer.
- `Hangup` of a watched channel: the call ended; its timers stop and its row gets `ended_at`.
- `Cdr` of a channel that dialled (`DestinationChannel` set): its talk time, as a fallback to the
  hang-up handler's exact `ANSWEREDTIME`. It waits `cdr_grace_s` so the exact figure usually
  lands first; whichever lands first counts and the other is a no-op (`ivr.db.calls.account`).
- After every (re)login, `CoreShowChannels`: watched calls whose channel is gone ended while we
  were away; they are closed as `ended-unobserved`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from ivr.ami.client import AmiClient, AmiError
from ivr.calls.monitor import CallMonitor
from ivr.clock import Clock
from ivr.core.caps import talk_seconds
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
        self.resyncs = 0

    def attach(self, ami: AmiClient) -> None:
        ami.on("DialEnd", self.on_dial_end)
        ami.on("Hangup", self.on_hangup)
        ami.on("Cdr", self.on_cdr)
        ami.on_connect(self.resync)

    def on_dial_end(self, ev: Mapping[str, str]) -> None:
        if ev.get("DialStatus") == "ANSWER":
            self._monitor.answered(ev.get("Uniqueid", ""))

    def on_hangup(self, ev: Mapping[str, str]) -> None:
        uid = ev.get("Uniqueid", "")
        if self._monitor.ended(uniqueid=uid) is not None:
            cause = ev.get("Cause", "")
            reason = "hangup" if not cause.isdigit() else f"hangup-{int(cause)}"
            self._journal.record_closed(Closed(uid, self._clock.now(), reason[:24]))

    def on_cdr(self, ev: Mapping[str, str]) -> None:
        uid = ev.get("UniqueID", "")
        if not uid or not ev.get("DestinationChannel"):
            return  # no Dial from this channel: nothing we routed
        answered = ev.get("Disposition") == "ANSWERED"
        talk = talk_seconds(ev.get("BillableSeconds")) if answered else 0.0
        if talk is None:
            log.warning("Cdr for %r: unreadable BillableSeconds", uid)
            return
        report = TalkReport(talk, "ami-cdr", self._clock.now(), uniqueid=uid)
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
        gone = self._monitor.resync(live)
        now = self._clock.now()
        for w in gone:
            self._journal.record_closed(Closed(w.uniqueid, now, "ended-unobserved"))
        self.resyncs += 1
        log.info("AMI re-sync: %d live channels, %d calls ended unseen", len(live), len(gone))

    def close(self) -> None:
        """Hand the reports still in their grace period to the journal now."""
        for handle, report in self._later.items():
            handle.cancel()
            self._journal.record_talk(report)
        self._later.clear()
