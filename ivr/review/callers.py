"""One caller's report for supervisors: recent calls, today's usage, flags, blocklist state."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from ivr.config import Config
from ivr.core import caps
from ivr.core.blocklist import candidate_patterns, match
from ivr.core.caller import normalise
from ivr.core.review import ReviewError
from ivr.db import calls as calls_repo
from ivr.db.models import blocklist_entries

CALL_FIELDS = (
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


async def report(
    engine: AsyncEngine, cfg: Config, number: str, days: int, now: datetime
) -> dict[str, Any]:
    e164 = normalise(number, cfg.screening.region)
    if e164 is None:
        raise ReviewError(f"not a phone number: {number!r}")
    if not 1 <= days <= 3650:
        raise ReviewError("--days: from 1 to 3650")
    policy = cfg.caps.policy(cfg.screening.region)
    day, window = caps.usage_since(now, cfg.hours.zone(), policy)
    async with engine.connect() as conn:
        usage = await calls_repo.caller_usage(conn, e164, day, window, "")
        history = await calls_repo.caller_calls(conn, e164, now - timedelta(days=days), 200)
        t = blocklist_entries
        patterns = candidate_patterns(e164, cfg.screening.blocklist_min_prefix_len)
        entries = list(
            await conn.execute(select(t).where(t.c.pattern.in_(patterns)).order_by(t.c.id))
        )
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
    return {
        "caller": e164,
        "days": days,
        "today_talk_s": usage.talk_today_s,
        "daily_budget_s": policy.daily_budget_s or None,
        "next_call_limit_s": verdict.limit_s,
        "calls_in_repeat_window": usage.calls_in_window,
        "repeat_window_s": policy.repeat_window_s,
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
        "calls": [{k: h[k] for k in CALL_FIELDS} for h in history],
    }
