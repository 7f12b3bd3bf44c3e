"""`ivr recordings ...`: find, export, hold and check recordings (through the service)."""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import typer
from rich.table import Table

from ivr.cli import common as c
from ivr.cli.client import Api
from ivr.core.text import escape, unsafe
from ivr.files import private_new_file

app = typer.Typer(no_args_is_help=True, help="Recordings: list, show, export, hold, verify, purge.")


def _path(name: str) -> str:
    return f"/v1/recordings/{quote(name, safe='')}"


@app.command("list")
def list_(
    caller: Annotated[str | None, typer.Option(help="Only this caller's recordings.")] = None,
    since: Annotated[str | None, typer.Option(help="From this date/time (centre's zone).")] = None,
    until: Annotated[str | None, typer.Option(help="Before this date/time.")] = None,
    held: Annotated[bool, typer.Option("--held", help="Only those on legal hold.")] = False,
    config: c.ConfigOpt = None,
    json: c.JsonOpt = False,
) -> None:
    """Recordings, newest first."""
    api = Api(config)
    rows = api.get(
        "/v1/recordings", caller=caller, since=since, until=until, held="1" if held else None
    )
    if json:
        c.print_json(rows)
        return
    t = Table()
    for name in ("Recording", "Caller", "Started", "Bytes", "State", "Retain until", "Hold"):
        t.add_column(name, no_wrap=True)
    for r in rows:
        t.add_row(
            *c.cells(
                r["name"],
                r["caller"] or "-",
                api.local(r["started_at"] or r["spooled_at"]),
                r["bytes"],
                r["state"],
                api.local(r["retain_until"]),
                "held" if r["legal_hold"] else "",
            )
        )
    c.out.print(t)


@app.command()
def show(name: str, config: c.ConfigOpt = None, json: c.JsonOpt = False) -> None:
    """One recording's metadata: call, caller, hash, storage URI, retention, hold."""
    api = Api(config)
    rec: dict[str, Any] = api.get(_path(name))
    if json:
        c.print_json(rec)
        return
    for key, value in rec.items():
        shown = value
        if (isinstance(value, str) and key.endswith("_at")) or key == "retain_until":
            shown = api.local(value)
        c.say(f"{key:>16}: {shown if shown is not None else '-'}")


@app.command()
def export(
    name: str,
    to: Annotated[Path, typer.Option("--to", help="A new file to write the recording to.")],
    note: c.NoteOpt = "",
    config: c.ConfigOpt = None,
) -> None:
    """Copy a recording out of storage, checking its SHA-256; logged in the audit trail.

    The file is yours (0600). It appears only once the service has stored the export's audit
    row and the bytes received match the recorded hash."""
    dest = to.absolute()
    if unsafe(str(dest)):
        raise c.fail(f"{escape(str(dest))}: control characters in the file name", c.EXIT_INVALID)
    if not dest.parent.is_dir():
        raise c.fail(f"invalid: {dest.parent}: no such folder", c.EXIT_INVALID)
    if dest.exists():
        raise c.fail(f"invalid: {dest} exists; choose a new file name", c.EXIT_INVALID)
    part = dest.with_name(f".{dest.name}.{secrets.token_hex(4)}.part")
    api = Api(config)
    try:
        with api.download(_path(name) + "/export", {"to": str(dest), "note": note}) as res:
            want = (int(res.headers["x-ivr-bytes"]), res.headers["x-ivr-sha256"])
            h, n = hashlib.sha256(), 0
            with private_new_file(part) as out:
                for chunk in res.iter_bytes():
                    h.update(chunk)
                    n += len(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
        if (n, h.hexdigest()) != want:
            raise c.fail(
                f"received {n} bytes, sha256 {h.hexdigest()}; the service sent "
                f"{want[0]} bytes, sha256 {want[1]}: not saved (the export is audited)",
                c.EXIT_TAMPERED,
            )
        try:
            os.link(part, dest)  # never over a file that appeared meanwhile
        except FileExistsError:
            raise c.fail(
                f"{dest} appeared meanwhile; the export is audited, but not saved: "
                "export again to a new name",
                c.EXIT_CONFLICT,
            ) from None
    except OSError as exc:
        raise c.fail(f"{dest}: {exc.strerror or exc}", c.EXIT_FAILED) from None
    finally:
        part.unlink(missing_ok=True)
    c.say(f"{to}: {n} bytes, sha256 {want[1]} (verified)")


def _hold(name: str, note: str, config: Path | None, hold: bool) -> None:
    Api(config).post(_path(name) + ("/hold" if hold else "/release"), {"note": note})
    c.say(f"{name}: on legal hold" if hold else f"{name}: hold released")


@app.command()
def hold(name: str, note: c.NoteOpt = "", config: c.ConfigOpt = None) -> None:
    """Put a recording on legal hold: retention will not delete it."""
    _hold(name, note, config, True)


@app.command()
def release(name: str, note: c.NoteOpt = "", config: c.ConfigOpt = None) -> None:
    """Lift a legal hold: the recording is deleted at the end of its retention."""
    _hold(name, note, config, False)


@app.command()
def verify(
    names: Annotated[list[str] | None, typer.Argument(help="Recordings to check.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Check every stored recording.")] = False,
    config: c.ConfigOpt = None,
    json: c.JsonOpt = False,
) -> None:
    """Re-read stored recordings and compare size and SHA-256; exit 8 on any mismatch."""
    if not names and not all_:
        raise c.fail("name recordings to check, or give --all", c.EXIT_CONFIG)
    checked = Api(config).post("/v1/recordings/verify", {"names": names or [], "all": all_})
    bad = [x for x in checked if not x["ok"]]
    if json:
        c.print_json(checked)
    else:
        for x in bad:
            c.warn(f"MISMATCH {x['name']}: {x['problem']}")
        c.out.print(f"{len(checked)} checked, {len(bad)} bad")
    if bad:
        raise typer.Exit(c.EXIT_TAMPERED)


@app.command()
def purge(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say what would go.")] = False,
    config: c.ConfigOpt = None,
) -> None:
    """Delete recordings past retention, except those on hold; each deletion is audited."""
    done = Api(config).post("/v1/recordings/purge", {"dry_run": dry_run})
    verb = "would delete" if dry_run else "deleted"
    for name in done["deleted"]:
        c.say(f"{verb} {name}")
    for name, why in done["failed"]:
        c.warn(f"could not delete {name}: {why}")
    c.out.print(f"{len(done['deleted'])} {verb}, {len(done['failed'])} failed")
    if done["failed"]:
        raise typer.Exit(c.EXIT_FAILED)
