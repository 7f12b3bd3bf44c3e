"""Prometheus metrics: calls by decision, AGI handler latency, and the state of the queues.

Calls count into `ivr.tally` where things happen; everything, those counts included, is read at
scrape time, so gauges can never drift from the truth.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from ivr.tally import CallTallies

# From a fast screening decision (~ms) to a whole call in the menu (~minutes).
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class _Gauges(Collector):
    def __init__(self, read: dict[str, tuple[str, Callable[[], float]]]) -> None:
        self._read = read

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        for name, (doc, value) in self._read.items():
            family = CounterMetricFamily if name.endswith("_total") else GaugeMetricFamily
            yield family(name.removesuffix("_total"), doc, value=value())


class _Calls(Collector):
    """The call tallies as Prometheus families."""

    def __init__(self, tallies: CallTallies) -> None:
        self._t = tallies
        # The `le` labels as prometheus_client writes them (1 -> "1.0").
        bounds = [floatToGoString(b) for b in tallies.bounds]  # type: ignore[no-untyped-call]
        self._les = [*bounds, "+Inf"]

    def collect(self) -> Iterator[CounterMetricFamily | HistogramMetricFamily]:
        t = self._t
        calls = CounterMetricFamily(
            "ivr_calls",
            "Inbound calls by the guard's decision (route, hangup, abandoned) and screening.",
            labels=["decision", "screen"],
        )
        # list(): one step under the GIL, while the event loop's thread goes on counting.
        for (decision, screen), n in list(t.calls.items()):
            calls.add_metric([decision, screen], n)
        yield calls
        for name, doc, by_script in (
            (
                "ivr_agi_handler_seconds",
                "Time an AGI script's handler ran, audio included.",
                t.handler,
            ),
            (
                "ivr_agi_first_command_seconds",
                "From the end of Asterisk's AGI environment to the guard's first command.",
                t.first_command,
            ),
        ):
            family = HistogramMetricFamily(name, doc, labels=["script"])
            for script, h in list(by_script.items()):
                counts, total = h.cumulative()
                family.add_metric(
                    [script],
                    [(le, n) for le, n in zip(self._les, counts, strict=True)],
                    sum_value=total,
                )
            yield family


class Metrics:
    """One registry per service (so two services in one process never share figures)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        # What calls count, as plain numbers (`ivr.tally`); read here at scrape time.
        self.tallies = CallTallies(LATENCY_BUCKETS)
        self.registry.register(_Calls(self.tallies))
        self._server: WSGIServer | None = None

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
