"""The baseline: the inbound script as one process per call, AGI over stdin/stdout with pyst2.

The way such scripts are usually written (blocking, `AGI(...)` at the top, a fresh database
connection per call), making the same decisions with the same pure code and the same SQLite
reads as the service. Run as `python -m bench.pyst2_inbound CONFIG`; it expects a SQLite URL.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

from asterisk.agi import AGI

from ivr import names
from ivr.config import load_config
from ivr.core import caps, menu
from ivr.core.blocklist import BlockEntry, candidate_patterns, match
from ivr.core.caller import classify
from ivr.core.hours import open_state
from ivr.core.screening import CapRouting, policy_for, screen
from ivr.db.rows import stored
from ivr.db.sqlite_reader import SqliteScreeningReader
from ivr.prompts import sound_path


def main() -> None:
    cfg = load_config(Path(sys.argv[1]), os.environ)
    agi = AGI()  # reads the environment from stdin; logs every command to stderr
    env = agi.env
    now = datetime.now(UTC)
    call_id = uuid.uuid4().hex
    caller = classify(env.get("agi_callerid", ""), env.get("agi_callingpres", ""), "JP")
    policy = cfg.caps.policy(cfg.screening.region)
    reader = SqliteScreeningReader.for_url(cfg.database_url())
    assert reader is not None, "the baseline reads SQLite"
    entries: list[BlockEntry] = []
    usage: caps.Usage | None = None
    if caller.e164:
        day, window = caps.usage_since(now, cfg.hours.zone(), policy)
        entries, usage = reader.facts(
            candidate_patterns(caller.e164, cfg.screening.blocklist_min_prefix_len),
            (caller.e164, day, window, call_id),
        )
    block = match(caller.e164, entries, now) if caller.e164 else None
    assessment = caps.assess(caller.e164, usage, policy)
    c = cfg.caps
    scr = screen(
        caller,
        policy_for(env.get("agi_arg_1", ""), cfg.screening_default(), cfg.screening_by_dialled()),
        block,
        open_state(now, cfg.hours.schedule()),
        cfg.closed_policy(),
        assessment,
        CapRouting(c.exhausted_route, c.repeat_action, c.repeat_route or cfg.default_route),
    )
    p = cfg.prompts

    def sound(prompt: str) -> str:
        return sound_path(p.sound_prefix, p.language, prompt)

    agi.answer()
    reason, route = scr.reason.value, scr.route
    recording = ""
    if scr.proceed:
        recording = f"{cfg.recording.spool_dir}/{call_id}.wav"
        agi.appexec("MixMonitor", recording)
        agi.stream_file(sound("recording-notice"))
        agi.stream_file(sound("harassment-policy"))
        spec, ask = cfg.menu_spec(), menu.start()
        while True:
            if ask.before:
                agi.stream_file(sound(ask.before))
            pressed = agi.get_data(sound(spec.prompt), spec.timeout_ms, spec.max_digits)
            step = menu.step(spec, ask, pressed or None)
            if isinstance(step, menu.Ask):
                ask = step
                continue
            break
        if isinstance(step, menu.Routed):
            route, reason = step.route, "menu"
            agi.stream_file(sound("transferring"))
        else:
            route, reason = step.route, f"menu-{step.last}"
            agi.stream_file(sound(step.prompt))
    elif scr.prompt:
        agi.stream_file(sound(scr.prompt))
    decision = names.DECISION_ROUTE if route else names.DECISION_HANGUP
    dial = cfg.routes[route].dial if route else ""
    values = {
        names.VAR_CALL_ID: call_id,
        names.VAR_RECORDING: recording,
        names.VAR_ROUTE: route or "",
        names.VAR_DIAL: dial,
        names.VAR_REASON: reason,
        names.VAR_DECISION: decision,
    }
    for var in names.DECISION_VARS:
        agi.set_variable(var, values.get(var, ""))
    db = sqlite3.connect(cfg.database_url().split("///", 1)[1], timeout=5)
    with db:
        db.execute(
            "INSERT INTO calls (call_id, uniqueid, linkedid, caller_raw, caller_name, caller_e164,"
            " caller_class, dialled, decision, reason, route, started_at, legal_hold)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)",
            (
                call_id, env.get("agi_uniqueid", ""), env.get("agi_uniqueid", ""),
                caller.raw, env.get("agi_calleridname", "")[:64], caller.e164,
                caller.cls.value, env.get("agi_arg_1", "")[:32], decision, reason, route,
                stored(now),
            ),
        )  # fmt: skip
    db.close()


if __name__ == "__main__":
    main()
