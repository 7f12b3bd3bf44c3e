"""`ivr audit ...`: read and verify the tamper-evident trail."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from ivr.cli import common as c
from ivr.core.audit import AuditEvent
from ivr.review import trail
from ivr.wiring import Parts

app = typer.Typer(no_args_is_help=True, help="The audit trail of blocklist changes.")


@app.command("log")
def log_(
    entry: Annotated[int | None, typer.Option(help="Only this blocklist entry.")] = None,
    config: c.ConfigOpt = None,
    as_json: c.JsonOpt = False,
) -> None:
    """Every audit event in order (or one entry's)."""
    cfg = c.load(config)

    async def work(parts: Parts) -> list[AuditEvent]:
        return await trail.log(parts.engine, entry)

    events = c.with_parts(cfg, work)
    if as_json:
        c.print_json([e.__dict__ for e in events])
        return
    t = Table("Seq", "When", "Who", "Action", "Entry", "Reason", "Hash")
    tz = cfg.hours.zone()
    for e in events:
        who = f"{e.actor} (by {e.via})" if e.via else e.actor
        t.add_row(
            *c.cells(
                e.seq,
                e.at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S"),
                who,
                e.action,
                str(e.entry_id or "-"),
                e.reason,
                e.hash[:12],
            )
        )
    c.out.print(t)


@app.command()
def verify(config: c.ConfigOpt = None, as_json: c.JsonOpt = False) -> None:
    """Check every row's hash and link, the chain's end, and every entry; exit 8 if broken."""
    cfg = c.load(config)
    verdict = c.with_parts(cfg, lambda parts: trail.verify(parts.engine))
    head = verdict.head[1] if verdict.head else None
    if as_json:
        c.print_json(
            {
                "ok": verdict.problem is None,
                "events": verdict.events,
                "head": head,
                "problem": str(verdict.problem) if verdict.problem else None,
                "row": verdict.problem.seq if verdict.problem else None,
            }
        )
    elif verdict.problem is None:
        c.out.print(f"OK: {verdict.events} events, head {head}", highlight=False)
    else:
        c.say(f"BROKEN at {verdict.problem}")
    if verdict.problem is not None:
        raise typer.Exit(c.EXIT_TAMPERED)
