"""What every call adds to the metrics, kept as plain counts that `ivr.metrics` reads at scrape
time (prometheus_client's counters and histograms take a lock for each value, some fifteen
calls of it a call)."""

from __future__ import annotations

from bisect import bisect_left


class Histogram:
    """Observations counted by bucket (`bounds` are upper bounds; one more bucket for +Inf),
    and their sum."""

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1  # the first bound >= value
        self.sum += value

    def cumulative(self) -> tuple[list[int], float]:
        """Counts at or below each bound, then +Inf (the total), and the sum."""
        out: list[int] = []
        total = 0
        for n in list(self.counts):
            total += n
            out.append(total)
        return out, self.sum


class CallTallies:
    """Calls by (decision, screening), and handler times by AGI script."""

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.calls: dict[tuple[str, str], int] = {}
        self.handler: dict[str, Histogram] = {}
        self.first_command: dict[str, Histogram] = {}

    def count_call(self, decision: str, screen: str) -> None:
        """One inbound call ended with `decision` after `screen`."""
        key = (decision, screen)
        self.calls[key] = self.calls.get(key, 0) + 1

    def observe_handler(self, script: str, total: float, first: float | None) -> None:
        """A handler ran `total` seconds, `first` of them before its first command."""
        h = self.handler.get(script)
        if h is None:
            h = self.handler[script] = Histogram(self.bounds)
            self.first_command[script] = Histogram(self.bounds)
        h.observe(total)
        if first is not None:
            self.first_command[script].observe(first)
