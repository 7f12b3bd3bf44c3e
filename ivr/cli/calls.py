"""`ivr calls ...`: the calls in progress, and ending one (through the service)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

import typer
from rich.table import Table

from ivr.cli import common as c
from ivr.cli.client import Api

calls_app = typer.Typer(no_args_is_help=True, help="Calls in progress: list them, end one.")


@calls_app.command("active")
def active(config: c.ConfigOpt = None, json: c.JsonOpt = False) -> None:
    """Calls routed to an agent and not yet ended: elapsed time and cap."""
    api = Api(config)
    data = api.get("/v1/calls/active")
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
                api.local(d["started_at"], seconds=True),
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
    config: c.ConfigOpt = None,
    json: c.JsonOpt = False,
) -> None:
    """End a live call: the caller hears `harassment-end` (or `goodbye`) and is hung up."""
    if category is not None and not harassment:
        raise c.fail("--category goes with --harassment", c.EXIT_CONFIG)
    result = Api(config).post(
        f"/v1/calls/{quote(call_id, safe='')}/end",
        {"harassment": harassment, "category": category, "note": note},
    )
    if json:
        c.print_json(result)
        return
    what = "harassment-end" if harassment else "goodbye"
    c.say(f"call {result['call_id']}: {result['channel']} hears {what} and is hung up")
    if result["held"]:
        c.out.print("the call and its recording are on legal hold")
    if result["entry_id"] is not None:
        c.say(
            f"blocklist entry {result['entry_id']} proposed for {result['caller']}: "
            "another supervisor must approve it (`ivr blocklist approve`)"
        )
    for w in result["warnings"]:
        c.warn(f"warning: {w}")
