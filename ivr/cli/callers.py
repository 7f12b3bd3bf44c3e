"""`ivr callers show`: one caller's calls, today's usage, flags and blocklist state."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy import select

from ivr.cli import common as c
from ivr.core import caps
from ivr.core.blocklist import candidate_patterns, match
from ivr.core.caller import normalise
from ivr.db import calls as calls_repo
from ivr.db.models import blocklist_entries
from ivr.wiring import Parts

callers_app = typer.Typer(no_args_is_help=True, help="One caller's calls, usage and flags.")


@callers_app.command("show")
def show(
    number: str,
    days: Annotated[int, typer.Option(min=1, max=3650, help="How far back to list calls.")] = 30,
    config: c.ConfigOpt = None,
    json: c.JsonOpt = False,
) -> None:
    """A caller's recent calls, today's usage against the budget, flags and blocklist state."""
    cfg = c.load(config)
    e164 = normalise(number, cfg.screening.region)
    if e164 is None:
        raise c.fail(f"not a phone number: {number!r}", c.EXIT_INVALID)
    now = c.clock().now()
    policy = cfg.caps.policy(cfg.screening.region)
    day, window = caps.usage_since(now, cfg.hours.zone(), policy)

    async def work(parts: Parts) -> tuple[caps.Usage, list[dict[str, Any]], list[Any]]:
        async with parts.engine.connect() as conn:
            usage = await calls_repo.caller_usage(conn, e164, day, window, "")
            history = await calls_repo.caller_calls(conn, e164, now - timedelta(days=days), 200)
            t = blocklist_entries
            patterns = candidate_patterns(e164, cfg.screening.blocklist_min_prefix_len)
            entries = list(
                await conn.execute(select(t).where(t.c.pattern.in_(patterns)).order_by(t.c.id))
            )
        return usage, history, entries

    usage, history, entries = c.with_parts(cfg, work)
    verdict = caps.assess(e164, usage, policy)
    acting = match(e164, [calls_repo.block_entry(e) for e in entries], now)
    flags = [
        f
        for f, on in (
            ("exempt", verdict.exempt),
            ("blocked", acting is not None),
            ("daily-limit-reached", verdict.outcome is caps.Outcome.DAILY_LIMIT),
            ("repeat-limit", verdict.outcome is caps.Outcome.REPEAT),
            ("legal-hold", any(h["legal_hold"] for h in history)),
        )
        if on
    ]
    data: dict[str, Any] = {
        "caller": e164,
        "today_talk_s": usage.talk_today_s,
        "daily_budget_s": policy.daily_budget_s or None,
        "next_call_limit_s": verdict.limit_s,
        "calls_in_repeat_window": usage.calls_in_window,
        "repeat_threshold": policy.repeat_threshold or None,
        "flags": flags,
        "blocklist": [
            {
                "id": e.id,
                "pattern": e.pattern,
                "prefix": bool(e.is_prefix),
                "status": e.status,
                "action": e.action,
                "category": e.category,
                "expires_at": e.expires_at,
                "acting": acting is not None and acting.id == e.id,
            }
            for e in entries
        ],
        "calls": [
            {
                k: h[k]
                for k in (
                    "call_id",
                    "started_at",
                    "decision",
                    "reason",
                    "route",
                    "talk_s",
                    "limit_s",
                    "end_reason",
                    "legal_hold",
                )
            }
            for h in history
        ],
    }
    if json:
        c.print_json(data)
        return
    budget = f" of {c.mmss(policy.daily_budget_s)}" if policy.daily_budget_s else " (no budget)"
    c.out.print(f"caller {e164}", markup=False)
    c.out.print(f"  today: {c.mmss(usage.talk_today_s)} talk time{budget}")
    c.out.print(
        f"  calls in the last {policy.repeat_window_s // 3600} h: {usage.calls_in_window}"
        + (f" (limit trips at {policy.repeat_threshold})" if policy.repeat_threshold else "")
    )
    c.out.print(f"  flags: {', '.join(flags) or 'none'}")
    for e in data["blocklist"]:
        mark = " ← acts on this caller" if e["acting"] else ""
        kind = "prefix" if e["prefix"] else "number"
        c.say(
            f"  blocklist #{e['id']} {kind} {e['pattern']}: {e['status']}, "
            f"{e['category']}, until {c.local_time(cfg, e['expires_at'], seconds=True)}{mark}"
        )
    t = Table(title=f"calls in the last {days} days")
    for name in ("Call ID", "Started", "Decision", "Reason", "Route", "Talk", "Cap", "End", "Hold"):
        t.add_column(name, no_wrap=True)
    for h in data["calls"]:
        t.add_row(
            *c.cells(
                h["call_id"],
                c.local_time(cfg, h["started_at"], seconds=True),
                h["decision"] or "-",
                h["reason"] or "-",
                h["route"] or "-",
                c.mmss(h["talk_s"]),
                c.mmss(h["limit_s"]),
                h["end_reason"] or "-",
                "held" if h["legal_hold"] else "",
            )
        )
    c.out.print(t)
