"""`ivr calls ...`: the calls in progress, and ending one."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import Annotated, Any

import typer
from rich.table import Table

from ivr.ami.client import AmiClient, AmiError
from ivr.calls.ending import EndRequest, EndResult
from ivr.cli import common as c
from ivr.core.review import ReviewError
from ivr.db import calls as calls_repo
from ivr.events.publisher import AlertPublisher
from ivr.wiring import Parts

calls_app = typer.Typer(no_args_is_help=True, help="Calls in progress: list them, end one.")

LIVE_WINDOW = timedelta(hours=24)  # no call lasts longer than its cap; older open rows are stale


@calls_app.command("active")
def active(config: c.ConfigOpt = None, json: c.JsonOpt = False) -> None:
    """Calls routed to an agent and not yet ended: elapsed time and cap."""
    cfg = c.load(config)
    now = c.clock().now()

    async def work(parts: Parts) -> list[dict[str, Any]]:
        async with parts.engine.connect() as conn:
            return await calls_repo.open_calls(conn, now - LIVE_WINDOW)

    rows = c.with_parts(cfg, work)
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
                c.local_time(cfg, d["started_at"], seconds=True),
                c.mmss(d["elapsed_s"]),
                c.mmss(d["cap_s"]) if d["cap_s"] is not None else "none",
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

    async def work(parts: Parts) -> tuple[EndResult, AlertPublisher]:
        alerts, ender = parts.alerts, parts.ender
        await ender.live_call(call_id)  # before connecting anywhere
        ami = parts.ami
        assert ami is not None  # [ami] host is set
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
            waited = ender.pending
            if await ender.drain(timeout=30.0):
                result.warnings.append(
                    "the database did not answer within 30 s: the hold and the blocklist "
                    "proposal were NOT stored; hold the recording with `ivr recordings hold`"
                )
                result.unsaved = True
            elif waited:
                result.warnings.append("the hold and the proposal were stored after a retry")
            if alerts.enabled and alerts.backlog:
                with contextlib.suppress(TimeoutError):
                    await alerts.flush(timeout=5)
            return result, alerts
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    try:
        result, alerts = c.with_parts(cfg, work)
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
        c.warn(f"warning: {w}")
    if undelivered:
        c.err.print("warning: the MQTT broker did not take the alert; it is in the log")
    if result.unsaved:
        raise typer.Exit(c.EXIT_FAILED)


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
