"""`ivr callers show`: one caller's calls, today's usage, flags and blocklist state."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

import typer
from rich.table import Table

from ivr.cli import common as c
from ivr.cli.client import Api

callers_app = typer.Typer(no_args_is_help=True, help="One caller's calls, usage and flags.")


@callers_app.command("show")
def show(
    number: str,
    days: Annotated[int, typer.Option(min=1, max=3650, help="How far back to list calls.")] = 30,
    config: c.ConfigOpt = None,
    json: c.JsonOpt = False,
) -> None:
    """A caller's recent calls, today's usage against the budget, flags and blocklist state."""
    api = Api(config)
    data = api.get(f"/v1/callers/{quote(number, safe='')}", days=days)
    if json:
        c.print_json(data)
        return
    budget = f" of {c.mmss(data['daily_budget_s'])}" if data["daily_budget_s"] else " (no budget)"
    c.say(f"caller {data['caller']}")
    c.out.print(f"  today: {c.mmss(data['today_talk_s'])} talk time{budget}")
    threshold = data["repeat_threshold"]
    c.out.print(
        f"  calls in the last {data['repeat_window_s'] // 3600} h: "
        f"{data['calls_in_repeat_window']}"
        + (f" (limit trips at {threshold})" if threshold else "")
    )
    c.out.print(f"  flags: {', '.join(data['flags']) or 'none'}")
    for e in data["blocklist"]:
        mark = " ← acts on this caller" if e["acting"] else ""
        kind = "prefix" if e["prefix"] else "number"
        c.say(
            f"  blocklist #{e['id']} {kind} {e['pattern']}: {e['status']}, "
            f"{e['category']}, until {api.local(e['expires_at'], seconds=True)}{mark}"
        )
    t = Table(title=f"calls in the last {days} days")
    for name in ("Call ID", "Started", "Decision", "Reason", "Route", "Talk", "Cap", "End", "Hold"):
        t.add_column(name, no_wrap=True)
    for h in data["calls"]:
        t.add_row(
            *c.cells(
                h["call_id"],
                api.local(h["started_at"], seconds=True),
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
