"""`ivr audit ...`: read and verify the tamper-evident trail (through the service)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from ivr.cli import common as c
from ivr.cli.client import Api

app = typer.Typer(no_args_is_help=True, help="The audit trail of blocklist and recording changes.")


@app.command("log")
def log_(
    entry: Annotated[int | None, typer.Option(help="Only this blocklist entry.")] = None,
    config: c.ConfigOpt = None,
    as_json: c.JsonOpt = False,
) -> None:
    """Every audit event in order (or one entry's)."""
    api = Api(config)
    events = api.get("/v1/audit", entry=entry)
    if as_json:
        c.print_json(events)
        return
    t = Table("Seq", "When", "Who", "Action", "Entry", "Reason", "Hash")
    for e in events:
        who = f"{e['actor']} (by {e['via']})" if e["via"] else e["actor"]
        t.add_row(
            *c.cells(
                e["seq"],
                api.local(e["at"], seconds=True),
                who,
                e["action"],
                str(e["entry_id"] or "-"),
                e["reason"],
                e["hash"][:12],
            )
        )
    c.out.print(t)


@app.command()
def verify(config: c.ConfigOpt = None, as_json: c.JsonOpt = False) -> None:
    """Check every row's seal and link, the chain's end, and every entry; exit 8 if broken."""
    verdict = Api(config).get("/v1/audit/verify")
    if as_json:
        c.print_json(verdict)
    elif verdict["ok"]:
        c.say(f"OK: {verdict['events']} events, head {verdict['head']}")
    else:
        c.say(f"BROKEN at {verdict['problem']}")
    if not verdict["ok"]:
        raise typer.Exit(c.EXIT_TAMPERED)
