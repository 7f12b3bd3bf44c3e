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
def verify(
    anchor: Annotated[
        str | None,
        typer.Option(
            help="SEQ:HASH published earlier (log or MQTT `audit-anchor`): the chain must "
            "still hold that row unchanged."
        ),
    ] = None,
    config: c.ConfigOpt = None,
    as_json: c.JsonOpt = False,
) -> None:
    """Check every row's seal and link, the chain's end, every entry, every recording's and
    call's sealed fields, and an earlier anchor; exit 8 if anything is broken."""
    v = Api(config).get("/v1/audit/verify", anchor=anchor)
    if as_json:
        c.print_json(v)
    else:
        if v["problem"] is None:
            c.say(f"OK: {v['events']} events, head {v['head']}")
        else:
            c.say(f"BROKEN at {v['problem']}")
        for line in v["sealed_rows_bad"]:
            c.say(f"BROKEN seal: {line}")
        c.say(
            f"seals: {v['recordings_checked']} recordings, {v['calls_checked']} calls checked"
            + (f"; anchor {v['anchor_checked']} holds" if v["anchor_checked"] and v["ok"] else "")
        )
        if v["keyed_from"] != 1:
            c.say(f"rows before {v['keyed_from']} predate the key (plain SHA-256)")
    if not v["ok"]:
        raise typer.Exit(c.EXIT_TAMPERED)


@app.command()
def anchor(config: c.ConfigOpt = None) -> None:
    """The chain's head now, as SEQ:HASH: keep it outside the database (the service also
    publishes it to the log and to MQTT `<prefix>/audit-anchor` when it moves)."""
    c.say(Api(config).get("/v1/audit/anchor")["anchor"] or "the trail is empty")
