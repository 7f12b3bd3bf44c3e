"""`ivr recordings ...`: find, export, hold and check recordings (supervisors only)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.table import Table

from ivr.cli import common as c
from ivr.config import Config
from ivr.core.caller import normalise
from ivr.core.review import ReviewError
from ivr.recordings.service import RecordingService
from ivr.recordings.storage import StorageError
from ivr.wiring import Parts

app = typer.Typer(no_args_is_help=True, help="Recordings: list, show, export, hold, verify, purge.")
T = TypeVar("T")


def _run(cfg: Config, work: Callable[[RecordingService], Awaitable[T]]) -> T:
    async def main(parts: Parts) -> T:
        svc = parts.recordings
        try:
            return await work(svc)
        except ReviewError as exc:
            raise c.fail(f"{exc.kind}: {exc}", c.EXIT_BY_KIND[exc.kind]) from None
        except StorageError as exc:
            raise c.fail(f"storage: {exc}", c.EXIT_FAILED) from None

    return c.with_parts(cfg, main)


def _date(cfg: Config, text: str | None, option: str) -> datetime | None:
    if text is None:
        return None
    try:
        d = datetime.fromisoformat(text)
    except ValueError:
        raise c.fail(f"{option}: not a date or time: {text!r}", c.EXIT_INVALID) from None
    return d if d.tzinfo else d.replace(tzinfo=cfg.hours.zone())


def _public(rec: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in rec.items() if k not in ("next_attempt_at",)}


@app.command("list")
def list_(
    caller: Annotated[str | None, typer.Option(help="Only this caller's recordings.")] = None,
    since: Annotated[str | None, typer.Option(help="From this date/time (centre's zone).")] = None,
    until: Annotated[str | None, typer.Option(help="Before this date/time.")] = None,
    held: Annotated[bool, typer.Option("--held", help="Only those on legal hold.")] = False,
    as_: c.AsOpt = None,
    config: c.ConfigOpt = None,
    json: c.JsonOpt = False,
) -> None:
    """Recordings, newest first."""
    cfg = c.load(config)
    c.actor(cfg, as_)
    number = None
    if caller is not None:
        number = normalise(caller, cfg.screening.region)
        if number is None:
            raise c.fail(f"--caller: not a phone number: {caller!r}", c.EXIT_INVALID)
    lo, hi = _date(cfg, since, "--since"), _date(cfg, until, "--until")
    rows = _run(
        cfg,
        lambda s: s.listing(caller=number, since=lo, until=hi, held=True if held else None),
    )
    if json:
        c.print_json([_public(r) for r in rows])
        return
    t = Table()
    for name in ("Recording", "Caller", "Started", "Bytes", "State", "Retain until", "Hold"):
        t.add_column(name, no_wrap=True)
    for r in rows:
        t.add_row(
            *c.cells(
                r["name"],
                r["caller"] or "-",
                c.local_time(cfg, r["started_at"] or r["spooled_at"]),
                r["bytes"],
                r["state"],
                c.local_time(cfg, r["retain_until"]),
                "held" if r["legal_hold"] else "",
            )
        )
    c.out.print(t)


@app.command()
def show(
    name: str, as_: c.AsOpt = None, config: c.ConfigOpt = None, json: c.JsonOpt = False
) -> None:
    """One recording's metadata: call, caller, hash, storage URI, retention, hold."""
    cfg = c.load(config)
    c.actor(cfg, as_)
    rec = _run(cfg, lambda s: s.get(name))
    if json:
        c.print_json(_public(rec))
        return
    for key, value in _public(rec).items():
        shown = c.local_time(cfg, value) if isinstance(value, datetime) else value
        c.say(f"{key:>16}: {shown if shown is not None else '-'}")


@app.command()
def export(
    name: str,
    to: Annotated[Path, typer.Option("--to", help="A new file to write the recording to.")],
    note: c.NoteOpt = "",
    as_: c.AsOpt = None,
    config: c.ConfigOpt = None,
) -> None:
    """Copy a recording out of storage, checking its SHA-256; logged in the audit trail."""
    cfg = c.load(config)
    who = c.actor(cfg, as_)
    got = _run(cfg, lambda s: s.export(who, name, to, note))
    c.say(f"{to}: {got.bytes} bytes, sha256 {got.sha256} (verified)")


@app.command()
def hold(name: str, note: c.NoteOpt = "", as_: c.AsOpt = None, config: c.ConfigOpt = None) -> None:
    """Put a recording on legal hold: retention will not delete it."""
    cfg = c.load(config)
    who = c.actor(cfg, as_)
    _run(cfg, lambda s: s.set_hold(who, name, True, note))
    c.out.print(f"{name}: on legal hold", markup=False)


@app.command()
def release(
    name: str, note: c.NoteOpt = "", as_: c.AsOpt = None, config: c.ConfigOpt = None
) -> None:
    """Lift a legal hold: the recording is deleted at the end of its retention."""
    cfg = c.load(config)
    who = c.actor(cfg, as_)
    _run(cfg, lambda s: s.set_hold(who, name, False, note))
    c.out.print(f"{name}: hold released", markup=False)


@app.command()
def verify(
    names: Annotated[list[str] | None, typer.Argument(help="Recordings to check.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Check every stored recording.")] = False,
    as_: c.AsOpt = None,
    config: c.ConfigOpt = None,
    json: c.JsonOpt = False,
) -> None:
    """Re-read stored recordings and compare size and SHA-256; exit 8 on any mismatch."""
    cfg = c.load(config)
    c.actor(cfg, as_)
    if not names and not all_:
        raise c.fail("name recordings to check, or give --all", c.EXIT_CONFIG)
    checked = _run(cfg, lambda s: s.verify(None if all_ else list(names or [])))
    bad = [x for x in checked if not x.ok]
    if json:
        c.print_json([vars(x) for x in checked])
    else:
        for x in bad:
            c.warn(f"MISMATCH {x.name}: {x.problem}")
        c.out.print(f"{len(checked)} checked, {len(bad)} bad")
    if bad:
        raise typer.Exit(c.EXIT_TAMPERED)


@app.command()
def purge(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say what would go.")] = False,
    as_: c.AsOpt = None,
    config: c.ConfigOpt = None,
) -> None:
    """Delete recordings past retention, except those on hold; each deletion is audited."""
    cfg = c.load(config)
    who = c.actor(cfg, as_)
    done = _run(cfg, lambda s: s.purge(who, dry_run=dry_run))
    verb = "would delete" if dry_run else "deleted"
    for name in done.deleted:
        c.out.print(f"{verb} {name}", markup=False)
    for name, why in done.failed:
        c.warn(f"could not delete {name}: {why}")
    c.out.print(f"{len(done.deleted)} {verb}, {len(done.failed)} failed")
    if done.failed:
        raise typer.Exit(c.EXIT_FAILED)
