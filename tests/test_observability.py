"""Prometheus metrics and JSON logs carrying the call id."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.parser import text_string_to_metric_families

from ivr import names
from ivr.logs import formatter
from ivr.metrics import LATENCY_BUCKETS, Metrics
from ivr.sim.fake_asterisk import CallerScript, Channel, FakeAsterisk
from tests.support.cli import ivr_env, run_ivr, serving
from tests.support.servers import free_port


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_metrics_count_calls_by_decision_and_time_the_handlers(make_service: Any) -> None:
    svc = await make_service({"metrics": {"listen": "127.0.0.1:0"}})
    assert svc.app.metrics_port
    await svc.fake.call(Channel(callerid="0312345678"), CallerScript(digits=["1"]))
    await svc.fake.call(Channel(callerid="0312345679"), CallerScript(digits=["2"]))
    await svc.fake.call(
        Channel(callerid="anonymous", calleridname="Anonymous", callingpres=35), CallerScript()
    )
    await svc.fake.call(Channel(callerid="0312345678"), CallerScript(hangup_after_commands=1))
    m = await asyncio.to_thread(scrape, svc.app.metrics_port)
    assert m[("ivr_calls_total", (("decision", "route"), ("screen", "menu")))] == 2
    assert m[("ivr_calls_total", (("decision", "hangup"), ("screen", "withheld")))] == 1
    assert m[("ivr_calls_total", (("decision", "abandoned"), ("screen", "menu")))] == 1
    assert m[("ivr_agi_handler_seconds_count", (("script", "inbound"),))] == 4
    assert m[("ivr_agi_first_command_seconds_count", (("script", "inbound"),))] == 4
    # A whole simulated call, with no audio time, is well under a second.
    assert m[("ivr_agi_handler_seconds_bucket", (("le", "1.0"), ("script", "inbound")))] == 4
    assert m[("ivr_agi_sessions", ())] == 0
    for gauge in (
        "ivr_active_calls",
        "ivr_recording_backlog",
        "ivr_alert_queue_length",
        "ivr_journal_backlog",
    ):
        assert m[(gauge, ())] >= 0
    assert m[("ivr_alerts_dropped_total", ())] == 0


async def test_metrics_are_off_unless_configured(make_service: Any) -> None:
    svc = await make_service()
    assert svc.app.metrics_port is None


async def test_serve_logs_json_lines_with_the_call_id(tmp_path: Path) -> None:
    env = ivr_env(tmp_path)
    assert run_ivr(["db", "upgrade"], env).returncode == 0
    port = free_port()
    async with serving(env, port) as proc:
        rec = await FakeAsterisk("127.0.0.1", port).call(
            # A hostile name: newlines and escapes must not split or forge a log line.
            Channel(callerid="0312345678", calleridname='x\n{"level": "INFO"}\x1b[2J'),
            CallerScript(digits=["1"]),
        )
        proc.send_signal(signal.SIGTERM)
        assert proc.stderr is not None
        rest = (await asyncio.wait_for(proc.stderr.read(), 15)).decode()
        await proc.wait()
    call_id = rec.variables[names.VAR_CALL_ID]
    lines = [json.loads(line) for line in rest.splitlines() if line.strip()]
    assert all({"time", "level", "logger", "message"} <= set(x) for x in lines)
    about_call = [x for x in lines if x.get("call_id") == call_id]
    assert any(x["message"].startswith(f"call {call_id} ") for x in about_call), lines
    assert all(x["call_id"] in (None, call_id) for x in lines)
    assert all(line.isascii() for line in rest.splitlines())


def _samples(
    registry: CollectorRegistry, name: str
) -> list[tuple[str, tuple[tuple[str, str], ...], float]]:
    return sorted(
        (s.name, tuple(sorted(s.labels.items())), s.value)
        for family in registry.collect()
        if family.name == name
        for s in family.samples
        if not s.name.endswith("_created")
    )


def test_handler_times_are_bucketed_as_prometheus_client_does() -> None:
    """Our tallies, scraped, give the samples prometheus_client's Histogram gives."""
    ours = Metrics()
    theirs = CollectorRegistry()
    reference = Histogram(
        "ivr_agi_handler_seconds", "", ["script"], buckets=LATENCY_BUCKETS, registry=theirs
    )
    # On a bound, just above one, beyond the last, zero.
    for value in (0.0, 0.001, 0.0010001, 0.0025, 2.5, 59.99, 60.0, 61.0, 1e9):
        ours.tallies.observe_handler("inbound", value, None)
        reference.labels("inbound").observe(value)
    ours.tallies.observe_handler("hangup", 0.02, 0.01)
    reference.labels("hangup").observe(0.02)
    assert _samples(ours.registry, "ivr_agi_handler_seconds") == _samples(
        theirs, "ivr_agi_handler_seconds"
    )
    first = _samples(ours.registry, "ivr_agi_first_command_seconds")
    assert ("ivr_agi_first_command_seconds_count", (("script", "hangup"),), 1.0) in first
    assert ("ivr_agi_first_command_seconds_count", (("script", "inbound"),), 0.0) in first


def test_json_line_formatter_fields_time_and_tracebacks() -> None:
    fmt = formatter("json")
    try:
        1 / 0  # noqa: B018
    except ZeroDivisionError:
        exc = sys.exc_info()
    record = logging.LogRecord(
        "ivr.inbound", logging.ERROR, __file__, 1, "caller said %s", ("\u3042\n\x1b[2J",), exc
    )
    record.created = 1_795_352_271.0456
    record.call_id = "c1"
    line = fmt.format(record)
    assert line.isascii() and "\n" not in line
    out = json.loads(line)
    assert out["level"] == "ERROR" and out["logger"] == "ivr.inbound" and out["call_id"] == "c1"
    assert out["message"] == "caller said \u3042\n\x1b[2J"
    assert "ZeroDivisionError" in out["exc_info"]
    stamp = datetime.strptime(out["time"], "%Y-%m-%dT%H:%M:%S.%f%z")
    assert stamp.timestamp() == pytest.approx(1_795_352_271.045, abs=1e-6)
    # The second is formatted once and reused; the milliseconds are the record's own.
    record.created = 1_795_352_271.9
    assert json.loads(fmt.format(record))["time"].startswith(out["time"][:20] + "900")
