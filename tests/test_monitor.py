"""The call monitor's single timer: each watched call alerts once at its warning and once at its
cap, re-arming and ending leave nothing behind, and ended calls' entries do not pile up."""

from __future__ import annotations

import asyncio
from datetime import datetime

from ivr.calls.monitor import _COMPACT_AT, CallMonitor
from ivr.clock import FixedClock
from ivr.core.alerts import Alert, AlertType
from tests.support.service import JST


class Inbox:
    def __init__(self) -> None:
        self.alerts: list[Alert] = []

    def raise_alert(self, alert: Alert) -> None:
        self.alerts.append(alert)

    def seen(self) -> list[tuple[str, AlertType]]:
        return [(a.call_id or "", a.type) for a in self.alerts]


async def test_each_call_alerts_once_at_warning_and_cap_in_time_order() -> None:
    inbox = Inbox()
    mon = CallMonitor(inbox, FixedClock(datetime(2026, 11, 24, 10, tzinfo=JST)))
    mon.routed("a", "u.a", "+81312345678", 3, 2)  # warning at 1 s, cap at 3 s
    mon.routed("b", "u.b", None, 2, None)  # cap at 2 s, no warning
    mon.routed("c", "u.c", None, 1, None)
    mon.routed("d", "u.d", None, 2, None)
    mon.ended(call_id="c")  # hung up first: nothing for it
    await asyncio.sleep(1.5)
    assert inbox.seen() == [("a", AlertType.CAP_WARNING)] and inbox.alerts[0].elapsed_s == 1
    mon.answered("u.d")  # re-armed: its cap now comes at 3.5 s, not 2 s
    await asyncio.sleep(2.2)
    assert inbox.seen() == [
        ("a", AlertType.CAP_WARNING),
        ("b", AlertType.CAP_REACHED),
        ("a", AlertType.CAP_REACHED),
        ("d", AlertType.CAP_REACHED),
    ]
    assert inbox.alerts[-1].details == {"answered": True}
    assert len(mon) == 0 and mon._queue == [] and mon._stale == 0
    mon.close()


async def test_entries_of_ended_calls_are_dropped_not_kept_for_an_hour() -> None:
    mon = CallMonitor(Inbox(), FixedClock(datetime(2026, 11, 24, 10, tzinfo=JST)))
    mon.routed("live", "u.live", None, 3600, 60)
    for i in range(3 * _COMPACT_AT):
        mon.routed(f"c{i}", f"u{i}", None, 3600, 60)
        mon.ended(call_id=f"c{i}")
    assert len(mon) == 1
    assert len(mon._queue) <= 2 * _COMPACT_AT + 2  # compacted, not 6 * _COMPACT_AT + 2
    live = [e for e in mon._queue if e[1] == "live"]
    assert len(live) == 2  # the live call's warning and cap survive every rebuild
    mon.close()
    assert mon._queue == [] and len(mon) == 0
