"""Prometheus metrics: calls by decision, AGI handler latency, and the state of the queues.

Counters and histograms are updated where things happen; gauges are read from the running parts at
scrape time, so they can never drift from the truth.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

# From a fast screening decision (~ms) to a whole call in the menu (~minutes).
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class _Gauges(Collector):
    def __init__(self, read: dict[str, tuple[str, Callable[[], float]]]) -> None:
        self._read = read

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        for name, (doc, value) in self._read.items():
            family = CounterMetricFamily if name.endswith("_total") else GaugeMetricFamily
            yield family(name.removesuffix("_total"), doc, value=value())


class Metrics:
    """One registry per service (so two services in one process never share figures)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.calls = Counter(
            "ivr_calls",
            "Inbound calls by the guard's decision (route, hangup, abandoned) and screening.",
            ["decision", "screen"],
            registry=self.registry,
        )
        self.handler_seconds = Histogram(
            "ivr_agi_handler_seconds",
            "Time an AGI script's handler ran, audio included.",
            ["script"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.first_command_seconds = Histogram(
            "ivr_agi_first_command_seconds",
            "From the end of Asterisk's AGI environment to the guard's first command.",
            ["script"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._server: WSGIServer | None = None
        # Children by label values, found once: `labels()` takes a lock and builds a key each
        # time, and every call passes here. The values are few (scripts, decisions, reasons).
        self._calls: dict[tuple[str, str], Counter] = {}
        self._handler: dict[str, tuple[Histogram, Histogram]] = {}

    def count_call(self, decision: str, screen: str) -> None:
        """One inbound call ended with `decision` after `screen`."""
        child = self._calls.get((decision, screen))
        if child is None:
            child = self._calls[decision, screen] = self.calls.labels(decision, screen)
        child.inc()

    def observe_handler(self, script: str, total: float, first: float | None) -> None:
        """A handler ran `total` seconds, `first` of them before its first command."""
        pair = self._handler.get(script)
        if pair is None:
            pair = self._handler[script] = (
                self.handler_seconds.labels(script),
                self.first_command_seconds.labels(script),
            )
        pair[0].observe(total)
        if first is not None:
            pair[1].observe(first)

    def gauges(self, read: dict[str, tuple[str, Callable[[], float]]]) -> None:
        """Register values read at scrape time: name → (help, reader)."""
        self.registry.register(_Gauges(read))

    def serve(self, host: str, port: int) -> int:
        """Serve /metrics over HTTP on a thread of its own; returns the port."""
        server, _thread = start_http_server(port, host, registry=self.registry)
        self._server = server
        return int(server.server_port)

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
