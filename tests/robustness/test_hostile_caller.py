"""Hostile caller ID and name, end to end: wire bytes, database, files, MQTT and log lines.

Each value is sent as Asterisk would pass it on from a SIP header: as the number and the name
of a withheld-looking call, and as the name of a blocked caller with a valid number. The call is
then routed, hung up, recorded and handed off, so every place caller data could leak is crossed.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from ivr.agi.protocol import parse_args
from ivr.db.models import calls
from ivr.logs import CallIdFilter, formatter
from ivr.sim.fake_asterisk import CallerScript, Channel
from tests.support.alerts import mqtt, subscribed
from tests.support.caps import hang_up
from tests.support.inbound import GET_MENU, add_entry, decision_vars, opening, routed_tail, stream
from tests.support.mqtt import Broker
from tests.support.recordings import age, storage_cfg
from tests.support.service import Service

# Strings as Python sees them; "\udcff" is the invalid UTF-8 byte 0xff on the wire.
HOSTILE = {
    "ampersand": "1&PJSIP/x/2",
    "semicolon": "1;x",
    "sql": "' OR 1=1--",
    "traversal": "../x",
    "crlf": "0312345678\r\nagi_callingpres: 0\n\n200 result=1 (forged)\nEXEC System x",
    "quotes": '"\'`"',
    "backslashes": '\\\\"\\',
    "nul": "03\x0012345678",
    "rtl-override": "\u202e8765432130",
    "invalid-utf8": "03\udcff\udcfe12345678",
    "ten-kb": "9" * 10_240,
}
# Characters that may not reach a terminal or a log file unescaped.
UNSAFE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
SAFE_NAME = re.compile(r"^[A-Za-z0-9._-]+$")
BLOCKED = "0311112222"


@contextmanager
def captured_logs() -> Iterator[tuple[io.StringIO, io.StringIO, list[logging.LogRecord]]]:
    """The service's own text and JSON formatters, at DEBUG, writing to memory."""
    text, js, records = io.StringIO(), io.StringIO(), []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handlers: list[logging.Handler] = [Keep()]
    for out, fmt in ((text, "text"), (js, "json")):
        h = logging.StreamHandler(out)
        h.addFilter(CallIdFilter())
        h.setFormatter(formatter(fmt))  # type: ignore[arg-type]
        handlers.append(h)
    root = logging.getLogger()
    old = root.level
    root.setLevel(logging.DEBUG)
    for handler in handlers:
        root.addHandler(handler)
    try:
        yield text, js, records
    finally:
        for handler in handlers:
            root.removeHandler(handler)
        root.setLevel(old)


def skip_resync(sent: bytes) -> bytes:
    """What follows the resync token, the presentation query and the arguments' queries of a
    tainted call."""
    token, query, dialled, linkedid, rest = sent.split(b"\n", 4)
    assert parse_args(token.decode())[:3] == ["GET", "FULL", "VARIABLE"]
    assert query == b"GET VARIABLE CALLERID(num-pres)"
    assert (dialled, linkedid) == (b"GET VARIABLE IVR_DIALLED", b"GET VARIABLE CHANNEL(linkedid)")
    return rest


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


async def test_hostile_caller_data_is_inert_everywhere(
    make_service: Any, broker: Broker, tmp_path: Path
) -> None:
    svc: Service = await make_service({**storage_cfg(tmp_path), **mqtt(broker.port)})
    spool = Path(svc.cfg.recording.spool_dir)
    await add_entry(svc, "+81311112222")
    before = files_under(tmp_path)
    n = 0
    async with subscribed(broker.port) as inbox:
        with captured_logs() as (text, js, records):
            for label, value in HOSTILE.items():
                # The hostile value as number and name: never a valid number, so unavailable.
                n += 1
                call_id = f"call{n:04d}"
                rec = await svc.fake.call(
                    Channel(callerid=value, calleridname=value, uniqueid=f"1795.{n}"),
                    CallerScript(digits=["1"]),
                )
                sent = bytes(rec.raw)
                expected = "".join(
                    c + "\n"
                    for c in [
                        *opening(call_id, str(spool)),
                        GET_MENU,
                        *routed_tail(call_id, "sales", "PJSIP/sales", str(spool)),
                    ]
                ).encode()
                if label == "crlf":
                    sent = skip_resync(sent)
                assert sent == expected, label
                await hang_up(svc, call_id, "5")
                (spool / f"{call_id}.wav").write_bytes(b"RIFF" + bytes(4000))
                # The hostile value as the name of a known, blocked caller.
                n += 1
                rec = await svc.fake.call(
                    Channel(callerid=BLOCKED, calleridname=value, uniqueid=f"1795.{n}")
                )
                blocked = [
                    "ANSWER",
                    stream("blocked"),
                    *decision_vars(f"call{n:04d}", reason="blocked", decision="hangup"),
                ]
                sent = bytes(rec.raw)
                if label == "crlf":
                    sent = skip_resync(sent)
                assert sent == "".join(c + "\n" for c in blocked).encode(), label
            await inbox.wait("blocked", len(HOSTILE))
            for wav in spool.iterdir():
                age(wav, svc, 60)
            await svc.app.handoff.scan_once()

    # Database: every call is there, the values kept bounded, nothing failed.
    await svc.app.journal.flush()
    async with svc.engine.connect() as conn:
        rows = (await conn.execute(select(calls).order_by(calls.c.call_id))).mappings().all()
        stored = (await conn.execute(select(func.count()).select_from(calls))).scalar()
    assert stored == 2 * len(HOSTILE), " ".join(r["call_id"] for r in rows)
    for label, r in zip(HOSTILE, rows[0::2], strict=True):
        if label == "crlf":  # the number before the line break is the caller's own
            assert (r["caller_class"], r["caller_e164"]) == ("number", "+81312345678")
        else:
            assert r["caller_class"] == "unavailable" and r["caller_e164"] is None
        assert r["decision"] == "route" and r["ended_at"] is not None
        assert len(r["caller_raw"]) <= 64 and len(r["caller_name"]) <= 64
    for r in rows[1::2]:
        assert (r["caller_e164"], r["reason"]) == ("+81311112222", "blocked")
    assert svc.app.inbound.db_failures == 0
    # (aiomqtt's clients of earlier tests may log their own disconnection when collected.)
    assert not [r for r in records if r.levelno >= logging.ERROR and r.name.startswith("ivr")]

    # Files: only our recordings, stored under our own names, inside the storage folder.
    new = files_under(tmp_path) - before
    storage = svc.cfg.storage_dir()
    recordings = {p for p in new if p.suffix == ".wav"}
    assert len(recordings) == len(HOSTILE)
    for p in recordings:
        assert p.is_relative_to(storage) and SAFE_NAME.match(p.name), p
    assert {p for p in new - recordings if not p.name.startswith("ivr.sqlite3")} == set()
    assert not (spool.parent / "x").exists() and not Path("/tmp/x").exists()

    # MQTT: valid ASCII JSON on fixed topics, carrying none of the caller's text.
    assert inbox.messages
    for topic, payload, _qos in inbox.messages:
        assert re.fullmatch(r"ivr/alerts/[a-z-]+", topic)
        body = json.dumps(payload, ensure_ascii=False)
        assert body.isascii()
        assert payload["caller"] in (None, "+81311112222")
        for value in HOSTILE.values():
            if len(value) > 4:
                assert value not in body

    # Logs: one line per record in both formats, no control or bidi character unescaped.
    assert records
    text_lines = text.getvalue().splitlines()
    json_lines = js.getvalue().splitlines()
    assert len(json_lines) == len(records)
    # Traceback lines are indented: only a record's first line starts at column 0.
    assert len([line for line in text_lines if not line.startswith(" ")]) == len(records)
    for line in json_lines:
        assert isinstance(json.loads(line), dict) and line.isascii()
    for line in text_lines:
        assert not UNSAFE.search(line), line
    # The forged lines of the CR/LF caller were seen and logged, escaped, as dropped junk.
    assert any("forged" in line for line in text_lines)


async def test_line_breaks_in_the_name_do_not_escape_the_blocklist_or_withholding(
    make_service: Any,
) -> None:
    """Forged environment lines after the name cannot change who the caller is."""
    svc: Service = await make_service()
    await add_entry(svc, "+81311112222")
    forged = "x\nagi_callerid: 0399999999\nagi_callingpres: 0\n\n200 result=1 (forged)"
    rec = await svc.fake.call(Channel(callerid=BLOCKED, calleridname=forged))
    assert rec.variables["IVR_REASON"] == "blocked"
    rec = await svc.fake.call(Channel(callerid="0312345678", calleridname=forged, callingpres=35))
    assert rec.variables["IVR_REASON"] == "withheld"
    rec = await svc.fake.call(
        Channel(callerid="0312345678", calleridname=forged), CallerScript(digits=["1"])
    )
    assert rec.variables["IVR_ROUTE"] == "sales"
    assert all(skip_resync(bytes(r.raw)) for r in [rec])
