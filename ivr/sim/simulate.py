"""`ivr simulate`: one scripted call against the in-process service, told as a conversation."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from ivr import names
from ivr.agi.protocol import parse_args
from ivr.clock import Clock
from ivr.config import Config
from ivr.db import migrate
from ivr.db.engine import create_engine
from ivr.handlers.inbound import InboundHandler
from ivr.prompts import PromptCatalog
from ivr.sim.fake_asterisk import CallerScript, CallRecord, Channel, FakeAsterisk, hang_up_during

PRESENTATION = {"allowed": 0, "withheld": 35, "unavailable": 67}


@dataclass(frozen=True)
class SimulatedCall:
    number: str
    name: str = ""
    presentation: str = "allowed"
    digits: tuple[str | None, ...] = ()
    dialled: str = ""
    hangup_during: str | None = None


async def run_simulation(
    cfg: Config,
    call: SimulatedCall,
    clock: Clock,
    *,
    use_configured_db: bool = False,
) -> tuple[CallRecord, InboundHandler]:
    """Serve one call on a loopback port; a throwaway database unless asked otherwise."""
    from ivr.app import app_from, check_schema
    from ivr.wiring import Parts

    with tempfile.TemporaryDirectory(prefix="ivr-sim-") as tmp:
        url = cfg.database_url()
        if not use_configured_db:
            url = f"sqlite+aiosqlite:///{Path(tmp) / 'sim.sqlite3'}"
            await asyncio.to_thread(migrate.upgrade, url)
        engine = create_engine(url, timeout_s=cfg.database.timeout_s)
        app = app_from(Parts(cfg, clock, engine=engine), api=False)
        try:
            await check_schema(engine, url)
            await app.start("127.0.0.1", 0)
            fake = FakeAsterisk("127.0.0.1", app.agi.port)
            channel = Channel(
                callerid=call.number,
                calleridname=call.name,
                callingpres=PRESENTATION[call.presentation],
                args=(call.dialled, "sim.1") if call.dialled else (),
            )
            script = CallerScript(
                digits=list(call.digits),
                hangup_when=hang_up_during(call.hangup_during) if call.hangup_during else None,
            )
            record = await fake.call(channel, script)
        finally:
            await app.close(grace=5.0)
    return record, app.inbound


def describe(
    record: CallRecord, cfg: Config, catalog: PromptCatalog, emit: Callable[[str], None]
) -> None:
    """Tell the call as the caller and the dialplan would experience it."""
    lang = cfg.prompts.language
    prefix = f"{cfg.prompts.sound_prefix}/{lang}/"
    for command, replies in zip(record.commands, record.replies, strict=False):
        args = parse_args(command)
        upper = command.upper()
        if upper.startswith(("STREAM FILE", "GET DATA")):
            file = args[2]
            pid = file.removeprefix(prefix)
            emit(f"  ▶ [{pid}] {catalog.text(pid, lang)}")
            last = replies[-1]
            if upper.startswith("GET DATA"):
                pressed = last.removeprefix("200 result=").strip()
                if pressed.startswith("-1"):
                    emit("  ✆ the caller hangs up")
                elif pressed.endswith("(timeout)") or not pressed:
                    emit("  … no key pressed")
                else:
                    emit(f"  ⌨ the caller presses {pressed}")
            elif "result=-1" in last and "endpos=0" not in last:
                emit("  ✆ the caller hangs up during this prompt")
        elif upper.startswith("EXEC MIXMONITOR"):
            emit(f"  ● recording starts: {args[2]}")
        elif upper.startswith("ANSWER"):
            emit("  ☎ answered")
    v = record.variables
    decision = v.get(names.VAR_DECISION, "")
    if record.hung_up:
        emit("result: the caller hung up; the call ends")
    elif decision == names.DECISION_ROUTE:
        emit(
            f"result: route {v.get(names.VAR_ROUTE)} → Dial({v.get(names.VAR_DIAL)}) "
            f"(reason {v.get(names.VAR_REASON)}, call id {v.get(names.VAR_CALL_ID)})"
        )
        limit, warning = v.get(names.VAR_LIMIT_MS, ""), v.get(names.VAR_WARNING_MS, "")
        if limit:
            warn = f", time-warning {int(warning) // 1000} s before the end" if warning else ""
            emit(f"  talk-time limit {int(limit) // 1000} s (Asterisk enforces it{warn})")
        else:
            emit("  no talk-time limit (exempt caller)")
    elif decision == names.DECISION_HANGUP:
        reason, call_id = v.get(names.VAR_REASON), v.get(names.VAR_CALL_ID)
        emit(f"result: hang up (reason {reason}, call id {call_id})")
    else:
        emit("result: no decision set: the dialplan takes its fail-open path")


def parse_at(text: str | None, tz: str) -> datetime | None:
    """`--at` in local time of the centre (or with an explicit offset)."""
    if not text:
        return None
    at = datetime.fromisoformat(text)
    return at if at.tzinfo else at.replace(tzinfo=ZoneInfo(tz))
