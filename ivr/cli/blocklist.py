"""`ivr blocklist ...`: the supervisors' review workflow."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ivr.cli import common as c
from ivr.cli.client import Api
from ivr.core.categories import BY_CODE

app = typer.Typer(no_args_is_help=True, help="Blocklist: propose, review, list, import, export.")

NoteOpt = c.NoteOpt
PaperOpt = Annotated[
    str | None,
    typer.Option(
        "--as",
        help="Admins: record the decision this supervisor gave on paper (needs --note saying "
        "where; never for the proposer, nor for an entry you proposed).",
    ),
]


def _table(api: Api, rows: list[dict[str, Any]]) -> Table:
    t = Table()
    for name in ("ID", "Number", "Status"):
        t.add_column(name, no_wrap=True)
    t.add_column("Category", min_width=8)
    t.add_column("Action", no_wrap=True)
    t.add_column("Expires", min_width=10)
    t.add_column("Proposer", min_width=6)
    t.add_column("Reviewer", min_width=6)
    for rec in rows:
        t.add_row(
            *c.cells(
                rec["id"],
                rec["pattern"] + ("…" if rec["is_prefix"] else ""),
                rec["status"],
                rec["category"],
                rec["action"],
                api.local(rec["expires_at"]),
                rec["proposed_by"],
                rec["decided_by"] or "-",
            )
        )
    return t


def _done(api: Api, verb: str, rec: dict[str, Any], as_json: bool) -> None:
    if as_json:
        c.print_json(rec)
    else:
        c.say(
            f"entry {rec['id']} {verb}: {rec['pattern']}{'…' if rec['is_prefix'] else ''} "
            f"is {rec['stored_status']}, expires {api.local(rec['expires_at'])}"
        )


@app.command()
def categories(config: c.ConfigOpt = None, as_json: c.JsonOpt = False) -> None:
    """The harassment categories of the contact-center guideline, with their codes."""
    rows = Api(config).get("/v1/blocklist/categories")
    if as_json:
        c.print_json(rows)
        return
    t = Table("Code", "日本語", "English")
    for k in rows:
        t.add_row(*c.cells(k["code"], k["ja"], k["en"]))
    c.out.print(t)


@app.command()
def propose(
    number: Annotated[str, typer.Argument(help="The number (any common form), or a prefix.")],
    category: Annotated[str, typer.Option(help="Category code (see `categories`).")],
    note: NoteOpt,
    prefix: Annotated[
        bool, typer.Option("--prefix", help="Block every number starting so.")
    ] = False,
    evidence: Annotated[
        list[str] | None, typer.Option(help="A call or recording id; repeat for more.")
    ] = None,
    expires: Annotated[
        str | None, typer.Option(help="90d, or YYYY-MM-DD (acts through that day).")
    ] = None,
    action: Annotated[str, typer.Option(help="reject, or route:NAME.")] = "reject",
    config: c.ConfigOpt = None,
    as_json: c.JsonOpt = False,
) -> None:
    """Propose an entry; it acts only once another supervisor approves it."""
    api = Api(config)
    res = api.post(
        "/v1/blocklist",
        {
            "number": number,
            "category": category,
            "note": note,
            "prefix": prefix,
            "evidence": evidence or [],
            "expires": expires,
            "action": action,
        },
    )
    if as_json:
        c.print_json(res)
        return
    _done(api, "proposed", res, False)
    if res["prefix_callers_90d"] is not None:
        c.out.print(
            f"this prefix matches {res['prefix_callers_90d']} distinct caller(s) "
            "of the last 90 days"
        )
    for w in res["warnings"]:
        c.warn(f"warning: {w}")


NoteArg = Annotated[str, typer.Option("--note", help="Why (kept in the audit trail).")]
IdArg = Annotated[int, typer.Argument(metavar="ID")]


def _decide(
    name: str,
    verb: str,
    entry_id: int,
    note: str,
    on_paper: str | None,
    config: Path | None,
    as_json: bool,
) -> None:
    api = Api(config)
    body: dict[str, Any] = {"note": note}
    if on_paper is not None:
        body["on_paper"] = on_paper
    _done(api, verb, api.post(f"/v1/blocklist/{entry_id}/{name}", body), as_json)


@app.command()
def approve(
    entry_id: IdArg,
    note: NoteArg = "",
    as_: PaperOpt = None,
    config: c.ConfigOpt = None,
    as_json: c.JsonOpt = False,
) -> None:
    """Approve a pending entry (not your own); it acts from the next call."""
    _decide("approve", "approved", entry_id, note, as_, config, as_json)


@app.command()
def reject(
    entry_id: IdArg,
    note: NoteArg = "",  # the review rules require it for a rejection
    as_: PaperOpt = None,
    config: c.ConfigOpt = None,
    as_json: c.JsonOpt = False,
) -> None:
    """Reject a pending entry (not your own)."""
    _decide("reject", "rejected", entry_id, note, as_, config, as_json)


@app.command()
def revoke(
    entry_id: IdArg, note: NoteArg = "", config: c.ConfigOpt = None, as_json: c.JsonOpt = False
) -> None:
    """End a pending or approved entry now."""
    _decide("revoke", "revoked", entry_id, note, None, config, as_json)


@app.command()
def renew(
    entry_id: IdArg,
    expires: Annotated[str, typer.Option(help="90d, or YYYY-MM-DD.")],
    note: NoteArg = "",
    config: c.ConfigOpt = None,
    as_json: c.JsonOpt = False,
) -> None:
    """Move an entry's expiry later (an approved one: not by its proposer)."""
    api = Api(config)
    rec = api.post(f"/v1/blocklist/{entry_id}/renew", {"expires": expires, "note": note})
    _done(api, "renewed", rec, as_json)


@app.command("list")
def list_(
    status: Annotated[list[str] | None, typer.Option(help="Only this status; repeatable.")] = None,
    number: Annotated[str | None, typer.Option(help="Entries that match this caller.")] = None,
    due_within: Annotated[
        str | None, typer.Option(help="Open entries expiring within, e.g. 14d.")
    ] = None,
    config: c.ConfigOpt = None,
    as_json: c.JsonOpt = False,
) -> None:
    """List entries with their current status (expired once past expiry)."""
    api = Api(config)
    rows = api.get("/v1/blocklist", status=status, number=number, due_within=due_within)
    if as_json:
        c.print_json(rows)
    else:
        c.out.print(_table(api, rows))


@app.command()
def show(
    entry_id: IdArg,
    config: c.ConfigOpt = None,
    as_json: c.JsonOpt = False,
) -> None:
    """One entry, its whole history, and the calls it has acted on."""
    api = Api(config)
    shown = api.get(f"/v1/blocklist/{entry_id}")
    if as_json:
        c.print_json(shown)
        return
    rec = shown["entry"]
    cat = BY_CODE.get(rec["category"])
    c.out.print(_table(api, [rec]))
    refused = shown["calls_refused"]
    lines = [
        f"category: {rec['category']} ({cat.ja} / {cat.en})"
        if cat
        else f"category: {rec['category']}",
        f"note: {rec['note']}",
        f"evidence: {', '.join(rec['evidence']) or '-'}",
        f"calls refused: {refused}; calls routed: {sum(shown['calls'].values()) - refused}",
    ]
    for line in lines:
        c.say(line)
    t = Table("Seq", "When", "Who", "Action", "Reason")
    for h in shown["history"]:
        who = f"{h['actor']} (by {h['via']})" if h["via"] else str(h["actor"])
        t.add_row(*c.cells(h["seq"], api.local(h["at"]), who, h["action"], h["reason"]))
    c.out.print(t)


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="CSV with a header row (see the README).")],
    config: c.ConfigOpt = None,
    as_json: c.JsonOpt = False,
) -> None:
    """Propose every row of a CSV file, or nothing if any row is invalid."""
    try:
        text = file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise c.fail(f"{file}: {exc}", c.EXIT_INVALID) from None
    done = Api(config).post("/v1/blocklist/import", {"csv": text, "source": file.name})
    if as_json:
        c.print_json(done)
    else:
        c.say(f"{len(done)} entries proposed from {file}; each needs approval")


@app.command()
def export(
    status: Annotated[list[str] | None, typer.Option(help="Only this status; repeatable.")] = None,
    config: c.ConfigOpt = None,
    as_json: c.JsonOpt = False,
) -> None:
    """Every entry as CSV (readable by `import`) or JSON, on standard output."""
    api = Api(config)
    if as_json:
        c.print_json(api.get("/v1/blocklist", status=status))
    else:
        typer.echo(api.get("/v1/blocklist", status=status, format="csv"), nl=False)
