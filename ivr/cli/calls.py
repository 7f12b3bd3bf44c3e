"""`ivr calls ...` and `ivr callers ...`: live calls, ending a call, one caller's history."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from ivr.ami.client import AmiClient, AmiError
from ivr.calls.ending import CallEnder, EndRequest, EndResult
from ivr.cli import common as c
from ivr.clock import SystemClock
from ivr.config import Config
from ivr.core import caps
from ivr.core.blocklist import BlockEntry, EntryStatus, candidate_patterns, match
from ivr.core.caller import normalise
from ivr.core.review import ReviewError
from ivr.db import calls as calls_repo
from ivr.db.models import blocklist_entries
from ivr.events.publisher import AlertPublisher
from ivr.review.service import BlocklistService

calls_app = typer.Typer(no_args_is_help=True, help="Calls in progress: list them, end one.")
callers_app = typer.Typer(no_args_is_help=True, help="One caller's calls, usage and flags.")

LIVE_WINDOW = timedelta(hours=24)  # no call lasts longer than its cap; older open rows are stale


def _when(cfg: Config, value: datetime | None) -> str:
    return value.astimezone(cfg.hours.zone()).strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def _mmss(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    return f"{s // 60}:{s % 60:02d}"


@calls_app.command("active")
def active(config: c.ConfigOpt = None, json: c.JsonOpt = False) -> None:
    """Calls routed to an agent and not yet ended: elapsed time and cap."""
    cfg = c.load(config)
    now = SystemClock().now()

    async def work(engine: AsyncEngine) -> list[dict[str, Any]]:
        async with engine.connect() as conn:
            return await calls_repo.open_calls(conn, now - LIVE_WINDOW)

    rows = c.with_engine(cfg, work)
    data = [
        {
            "call_id": r["call_id"],
            "caller": r["caller_e164"],
            "route": r["route"],
            "started_at": r["started_at"],
            "elapsed_s": round((now - r["started_at"]).total_seconds()),
            "cap_s": r["limit_s"],
            "legal_hold": bool(r["legal_hold"]),
        }
        for r in rows
    ]
    if json:
        c.print_json(data)
        return
    if not data:
        c.out.print("no calls in progress")
        return
    t = Table()
    for name in ("Call ID", "Caller", "Route", "Started", "Elapsed", "Cap", "Hold"):
        t.add_column(name, no_wrap=True)
    for d in data:
        t.add_row(
            *c.cells(
                d["call_id"],
                d["caller"] or "(no number)",
                d["route"],
                _when(cfg, d["started_at"]),
                _mmss(d["elapsed_s"]),
                _mmss(d["cap_s"]) if d["cap_s"] is not None else "none",
                "held" if d["legal_hold"] else "",
            )
        )
    c.out.print(t)
    c.out.print("Elapsed counts from the start of the call (menu included); the cap is talk time.")


@calls_app.command("end")
def end(
    call_id: str,
    harassment: Annotated[
        bool,
        typer.Option(
            "--harassment", help="Play harassment-end, hold the call, propose a block, alert."
        ),
    ] = False,
    category: Annotated[
        str | None, typer.Option(help="Harassment category (see `ivr blocklist categories`).")
    ] = None,
    note: c.NoteOpt = "",
    as_: c.AsOpt = None,
    config: c.ConfigOpt = None,
    json: c.JsonOpt = False,
) -> None:
    """End a live call: the caller hears `harassment-end` (or `goodbye`) and is hung up."""
    cfg = c.load(config)
    who = c.actor(cfg, as_)
    if not cfg.ami.host:
        raise c.fail("ending a call needs AMI: set [ami] host in the configuration", c.EXIT_CONFIG)
    if category is not None and not harassment:
        raise c.fail("--category goes with --harassment", c.EXIT_CONFIG)

    async def work(engine: AsyncEngine) -> tuple[EndResult, AlertPublisher]:
        from ivr.app import ami_settings

        clock = SystemClock()
        alerts = AlertPublisher(cfg.mqtt)
        ender = CallEnder(engine, cfg, BlocklistService(engine, cfg, clock), alerts, clock)
        await ender.live_call(call_id)  # before connecting anywhere
        ami = AmiClient(ami_settings(cfg.ami))
        tasks = [asyncio.create_task(ami.run()), asyncio.create_task(alerts.run())]
        try:
            await _connected(ami, tasks[0], cfg.ami.action_timeout_s * 2)

            async def redirect(channel: str, context: str) -> None:
                await ami.action(
                    "Redirect",
                    {"Channel": channel, "Context": context, "Exten": "s", "Priority": "1"},
                )

            req = EndRequest(
                call_id,
                who,
                by=f"supervisor {who.name}",
                harassment=harassment,
                category=category,
                note=note,
            )
            result = await ender.end(req, redirect)
            if alerts.enabled and alerts.backlog:
                with contextlib.suppress(TimeoutError):
                    await alerts.flush(timeout=5)
            return result, alerts
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    try:
        result, alerts = c.with_engine(cfg, work)
    except ReviewError as exc:
        raise c.fail(f"{exc.kind}: {exc}", c.EXIT_BY_KIND[exc.kind]) from None
    except AmiError as exc:
        raise c.fail(f"AMI: {exc}", c.EXIT_FAILED) from None
    undelivered = alerts.backlog if harassment and alerts.enabled else 0
    if json:
        c.print_json({**vars(result), "alert_undelivered": bool(undelivered)})
        return
    what = "harassment-end" if harassment else "goodbye"
    c.out.print(
        f"call {result.call_id}: {result.channel} hears {what} and is hung up", markup=False
    )
    if result.held:
        c.out.print("the call and its recording are on legal hold")
    if result.entry_id is not None:
        c.out.print(
            f"blocklist entry {result.entry_id} proposed for {result.caller}: "
            "another supervisor must approve it (`ivr blocklist approve`)",
            markup=False,
        )
    for w in result.warnings:
        c.err.print(f"warning: {w}", markup=False, highlight=False)
    if undelivered:
        c.err.print("warning: the MQTT broker did not take the alert; it is in the log")


async def _connected(ami: AmiClient, runner: asyncio.Task[None], timeout: float) -> None:
    """Wait for the AMI login; a refused login or an unreachable server is an AmiError."""
    waiter = asyncio.create_task(ami.wait_connected(timeout))
    await asyncio.wait({waiter, runner}, return_when=asyncio.FIRST_COMPLETED)
    if runner.done():
        waiter.cancel()
        exc = runner.exception()
        inner = exc.exceptions[0] if isinstance(exc, BaseExceptionGroup) else exc
        raise AmiError(str(inner))
    try:
        waiter.result()
    except TimeoutError:
        raise AmiError(f"cannot log in to {ami.settings.host}:{ami.settings.port}") from None


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
    now = SystemClock().now()
    policy = cfg.caps.policy(cfg.screening.region)
    day, window = caps.usage_since(now, cfg.hours.zone(), policy)

    async def work(engine: AsyncEngine) -> tuple[caps.Usage, list[dict[str, Any]], list[Any]]:
        async with engine.connect() as conn:
            usage = await calls_repo.caller_usage(conn, e164, day, window, "")
            history = await calls_repo.caller_calls(conn, e164, now - timedelta(days=days), 200)
            t = blocklist_entries
            patterns = candidate_patterns(e164, cfg.screening.blocklist_min_prefix_len)
            entries = list(
                await conn.execute(select(t).where(t.c.pattern.in_(patterns)).order_by(t.c.id))
            )
        return usage, history, entries

    usage, history, entries = c.with_engine(cfg, work)
    verdict = caps.assess(e164, usage, policy)
    acting = match(
        e164,
        [
            BlockEntry(e.id, e.pattern, e.is_prefix, EntryStatus(e.status), e.expires_at, e.action)
            for e in entries
        ],
        now,
    )
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
    budget = f" of {_mmss(policy.daily_budget_s)}" if policy.daily_budget_s else " (no budget)"
    c.out.print(f"caller {e164}", markup=False)
    c.out.print(f"  today: {_mmss(usage.talk_today_s)} talk time{budget}")
    c.out.print(
        f"  calls in the last {policy.repeat_window_s // 3600} h: {usage.calls_in_window}"
        + (f" (limit trips at {policy.repeat_threshold})" if policy.repeat_threshold else "")
    )
    c.out.print(f"  flags: {', '.join(flags) or 'none'}")
    for e in data["blocklist"]:
        mark = " ← acts on this caller" if e["acting"] else ""
        kind = "prefix" if e["prefix"] else "number"
        c.out.print(
            f"  blocklist #{e['id']} {kind} {e['pattern']}: {e['status']}, "
            f"{e['category']}, until {_when(cfg, e['expires_at'])}{mark}",
            markup=False,
        )
    t = Table(title=f"calls in the last {days} days")
    for name in ("Call ID", "Started", "Decision", "Reason", "Route", "Talk", "Cap", "End", "Hold"):
        t.add_column(name, no_wrap=True)
    for h in data["calls"]:
        t.add_row(
            *c.cells(
                h["call_id"],
                _when(cfg, h["started_at"]),
                h["decision"] or "-",
                h["reason"] or "-",
                h["route"] or "-",
                _mmss(h["talk_s"]),
                _mmss(h["limit_s"]),
                h["end_reason"] or "-",
                "held" if h["legal_hold"] else "",
            )
        )
    c.out.print(t)
