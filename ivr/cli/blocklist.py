"""`ivr blocklist ...`: the supervisors' review workflow."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.table import Table

from ivr.cli import common as c
from ivr.config import Config
from ivr.core.blocklist import EntryStatus
from ivr.core.categories import BY_CODE, CATEGORIES
from ivr.core.proposal import parse_days
from ivr.core.review import ReviewError
from ivr.review import csvfile
from ivr.review.service import BlocklistService, ImportRejected, Proposal, Proposed
from ivr.wiring import Parts

app = typer.Typer(no_args_is_help=True, help="Blocklist: propose, review, list, import, export.")

AsOpt = c.AsOpt
NoteOpt = c.NoteOpt
T = TypeVar("T")


def _run(cfg: Config, work: Callable[[BlocklistService], Awaitable[T]], sweep: bool) -> T:
    async def main(parts: Parts) -> T:
        svc = parts.blocklist
        if sweep:
            await svc.sweep()
        try:
            return await work(svc)
        except ImportRejected as exc:
            for line, problem in exc.problems:
                c.warn(f"line {line}: {problem}")
            raise c.fail(str(exc), c.EXIT_INVALID) from None
        except ReviewError as exc:
            raise c.fail(f"{exc.kind}: {exc}", c.EXIT_BY_KIND[exc.kind]) from None

    return c.with_parts(cfg, main)


def _json_entry(rec: dict[str, Any], status: EntryStatus | None = None) -> dict[str, Any]:
    data = dict(rec)
    data["evidence"] = json.loads(rec["evidence"])
    data["stored_status"] = rec["status"]
    data["status"] = (status or EntryStatus(rec["status"])).value
    return data


def _table(cfg: Config, rows: list[tuple[dict[str, Any], EntryStatus]]) -> Table:
    t = Table()
    for name in ("ID", "Number", "Status"):
        t.add_column(name, no_wrap=True)
    t.add_column("Category", min_width=8)
    t.add_column("Action", no_wrap=True)
    t.add_column("Expires", min_width=10)
    t.add_column("Proposer", min_width=6)
    t.add_column("Reviewer", min_width=6)
    for rec, status in rows:
        t.add_row(
            *c.cells(
                rec["id"],
                rec["pattern"] + ("…" if rec["is_prefix"] else ""),
                status.value,
                rec["category"],
                rec["action"],
                c.local_time(cfg, rec["expires_at"]),
                rec["proposed_by"],
                rec["decided_by"] or "-",
            )
        )
    return t


def _done(cfg: Config, verb: str, rec: dict[str, Any], as_json: bool) -> None:
    if as_json:
        c.print_json(_json_entry(rec))
    else:
        c.out.print(
            f"entry {rec['id']} {verb}: {rec['pattern']}{'…' if rec['is_prefix'] else ''} "
            f"is {rec['status']}, expires {c.local_time(cfg, rec['expires_at'])}",
            highlight=False,
            markup=False,
        )


@app.command()
def categories(as_json: c.JsonOpt = False) -> None:
    """The harassment categories of the contact-center guideline, with their codes."""
    if as_json:
        c.print_json([{"code": k.code, "ja": k.ja, "en": k.en} for k in CATEGORIES])
        return
    t = Table("Code", "日本語", "English")
    for k in CATEGORIES:
        t.add_row(*c.cells(k.code, k.ja, k.en))
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
    as_: AsOpt = None,
    config: c.ConfigOpt = None,
    as_json: c.JsonOpt = False,
) -> None:
    """Propose an entry; it acts only once another supervisor approves it."""
    cfg = c.load(config)
    actor = c.actor(cfg, as_)
    p = Proposal(number, category, note, prefix, tuple(evidence or ()), expires, action)
    res: Proposed = _run(cfg, lambda s: s.propose(actor, p), sweep=True)
    if as_json:
        c.print_json(
            {
                **_json_entry(res.entry),
                "warnings": res.warnings,
                "prefix_callers_90d": res.prefix_callers,
            }
        )
        return
    _done(cfg, "proposed", res.entry, False)
    if res.prefix_callers is not None:
        c.out.print(
            f"this prefix matches {res.prefix_callers} distinct caller(s) of the last 90 days"
        )
    for w in res.warnings:
        c.warn(f"warning: {w}")


def _decision(name: str, verb: str) -> None:
    def command(
        entry_id: Annotated[int, typer.Argument(metavar="ID")],
        note: Annotated[str, typer.Option("--note", help="Why (kept in the audit trail).")] = "",
        as_: AsOpt = None,
        config: c.ConfigOpt = None,
        as_json: c.JsonOpt = False,
    ) -> None:
        cfg = c.load(config)
        actor = c.actor(cfg, as_)
        rec = _run(cfg, lambda s: getattr(s, name)(actor, entry_id, note), sweep=True)
        _done(cfg, verb, rec, as_json)

    command.__doc__ = {
        "approve": "Approve a pending entry (not your own); it acts from the next call.",
        "reject": "Reject a pending entry (not your own).",
        "revoke": "End a pending or approved entry now.",
    }[name]
    app.command(name)(command)


_decision("approve", "approved")
_decision("reject", "rejected")  # the review rules require --note for reject and revoke
_decision("revoke", "revoked")


@app.command()
def renew(
    entry_id: Annotated[int, typer.Argument(metavar="ID")],
    expires: Annotated[str, typer.Option(help="90d, or YYYY-MM-DD.")],
    note: Annotated[str, typer.Option(help="Why (kept in the audit trail).")] = "",
    as_: AsOpt = None,
    config: c.ConfigOpt = None,
    as_json: c.JsonOpt = False,
) -> None:
    """Move an entry's expiry later (an approved one: not by its proposer)."""
    cfg = c.load(config)
    actor = c.actor(cfg, as_)
    rec = _run(cfg, lambda s: s.renew(actor, entry_id, expires, note), sweep=True)
    _done(cfg, "renewed", rec, as_json)


def _statuses(values: list[str] | None) -> tuple[EntryStatus, ...]:
    try:
        return tuple(EntryStatus(v) for v in values or ())
    except ValueError:
        raise c.fail(
            f"--status: one of {', '.join(s.value for s in EntryStatus)}", c.EXIT_INVALID
        ) from None


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
    cfg = c.load(config)
    wanted = _statuses(status)
    try:
        within = parse_days(due_within) if due_within else None
    except ValueError as exc:
        raise c.fail(f"--due-within: {exc}", c.EXIT_INVALID) from None
    rows = _run(cfg, lambda s: s.listing(wanted, number, within), sweep=False)
    if as_json:
        c.print_json([_json_entry(r, s) for r, s in rows])
    else:
        c.out.print(_table(cfg, rows))


@app.command()
def show(
    entry_id: Annotated[int, typer.Argument(metavar="ID")],
    config: c.ConfigOpt = None,
    as_json: c.JsonOpt = False,
) -> None:
    """One entry, its whole history, and the calls it has acted on."""
    cfg = c.load(config)
    shown = _run(cfg, lambda s: s.show(entry_id), sweep=False)
    history = [
        {
            "seq": e.seq,
            "at": e.at,
            "actor": e.actor,
            "via": e.via,
            "action": e.action,
            "reason": e.reason,
        }
        for e in shown.history
    ]
    refused = shown.calls.get("hangup", 0)
    if as_json:
        c.print_json(
            {
                "entry": _json_entry(shown.entry, shown.status),
                "history": history,
                "calls": shown.calls,
                "calls_refused": refused,
            }
        )
        return
    rec = shown.entry
    cat = BY_CODE.get(rec["category"])
    c.out.print(_table(cfg, [(rec, shown.status)]))
    lines = [
        f"category: {rec['category']} ({cat.ja} / {cat.en})"
        if cat
        else f"category: {rec['category']}",
        f"note: {rec['note']}",
        f"evidence: {', '.join(json.loads(rec['evidence'])) or '-'}",
        f"calls refused: {refused}; calls routed: {sum(shown.calls.values()) - refused}",
    ]
    for line in lines:
        c.say(line)
    t = Table("Seq", "When", "Who", "Action", "Reason")
    for h in history:
        who = f"{h['actor']} (by {h['via']})" if h["via"] else str(h["actor"])
        t.add_row(*c.cells(h["seq"], c.local_time(cfg, h["at"]), who, h["action"], h["reason"]))
    c.out.print(t)


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="CSV with a header row (see the README).")],
    as_: AsOpt = None,
    config: c.ConfigOpt = None,
    as_json: c.JsonOpt = False,
) -> None:
    """Propose every row of a CSV file, or nothing if any row is invalid."""
    cfg = c.load(config)
    actor = c.actor(cfg, as_)
    try:
        rows = csvfile.parse_import(file.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, csvfile.CsvError) as exc:
        raise c.fail(f"{file}: {exc}", c.EXIT_INVALID) from None
    done = _run(cfg, lambda s: s.import_rows(actor, rows, f"import {file.name}"), sweep=True)
    if as_json:
        c.print_json([_json_entry(p.entry) for p in done])
    else:
        c.out.print(f"{len(done)} entries proposed from {file}; each needs approval")


@app.command()
def export(
    status: Annotated[list[str] | None, typer.Option(help="Only this status; repeatable.")] = None,
    config: c.ConfigOpt = None,
    as_json: c.JsonOpt = False,
) -> None:
    """Every entry as CSV (readable by `import`) or JSON, on standard output."""
    cfg = c.load(config)
    wanted = _statuses(status)
    rows = _run(cfg, lambda s: s.listing(wanted), sweep=False)
    if as_json:
        c.print_json([_json_entry(r, s) for r, s in rows])
    else:
        typer.echo(csvfile.export(rows, cfg.hours.zone()), nl=False)
