"""The `ivr` command line: the service, the schema, the configuration, simulation."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
import uvloop

from ivr.cli import audit as audit_cli
from ivr.cli import blocklist as blocklist_cli
from ivr.cli import callers as callers_cli
from ivr.cli import calls as calls_cli
from ivr.cli import prompts as prompts_cli
from ivr.cli import recordings as recordings_cli
from ivr.cli.common import (
    EXIT_CONFIG,
    EXIT_CONFLICT,
    EXIT_SCHEMA,
    ConfigOpt,
    catalog,
    clock,
    err,
    out,
)
from ivr.cli.common import load as _load
from ivr.cli.doctor import doctor
from ivr.clock import FixedClock
from ivr.config import Config, parse_hostport
from ivr.logs import setup_logging

if TYPE_CHECKING:
    from ivr.wiring import Parts

app = typer.Typer(no_args_is_help=True, help="Call guard for Asterisk.")
db_app = typer.Typer(no_args_is_help=True, help="Database schema (Alembic migrations).")
config_app = typer.Typer(no_args_is_help=True, help="The configuration file.")
logins_app = typer.Typer(
    no_args_is_help=True, help="Web console logins (the service account's; see [api] listen)."
)
app.add_typer(db_app, name="db")
app.add_typer(config_app, name="config")
app.add_typer(logins_app, name="logins")
app.add_typer(blocklist_cli.app, name="blocklist")
app.add_typer(audit_cli.app, name="audit")
app.add_typer(calls_cli.calls_app, name="calls")
app.add_typer(callers_cli.callers_app, name="callers")
app.add_typer(recordings_cli.app, name="recordings")
app.add_typer(prompts_cli.app, name="prompts")
app.command()(doctor)


@app.callback()
def _private_files(ctx: typer.Context) -> None:
    """Files and folders this process creates (database, WAL, exports, keys) are its owner's
    alone, whatever umask it was started with; the prompt files are for Asterisk to read."""
    if ctx.invoked_subcommand != "prompts":
        os.umask(0o077)


def _logging(cfg: Config) -> None:
    setup_logging(cfg.log_level, cfg.log_format)


@app.command()
def serve(
    config: ConfigOpt = None,
    agi_listen: Annotated[
        str | None, typer.Option(help="FastAGI HOST:PORT (default 127.0.0.1:4573).")
    ] = None,
    workers: Annotated[
        int, typer.Option(min=1, max=64, help="Service processes sharing the FastAGI port.")
    ] = 1,
    worker: Annotated[int | None, typer.Option(hidden=True)] = None,
) -> None:
    """Run the FastAGI server until SIGTERM or SIGINT."""
    from ivr.app import SchemaOutdated, ServiceFailed
    from ivr.app import serve as run_serve

    cfg = _load(config)
    if agi_listen:
        try:
            parse_hostport(agi_listen)
        except ValueError as exc:
            err.print(f"--agi-listen: {exc}")
            raise typer.Exit(EXIT_CONFIG) from None
        cfg = cfg.model_copy(update={"agi": cfg.agi.model_copy(update={"listen": agi_listen})})
    now_clock = clock()
    _logging(cfg)
    if workers > 1 and worker is None:
        from ivr.workers import run_workers

        passed = ["--config", str(config)] if config else []
        raise typer.Exit(run_workers(workers, passed, cfg.agi.listen))

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run_serve(cfg, stop, clock=now_clock, freeze=True, worker=worker)

    try:
        uvloop.run(main())  # libuv's loop: 40 % more calls per second than asyncio's (bench/)
    except SchemaOutdated as exc:
        err.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(EXIT_SCHEMA) from None
    except ServiceFailed as exc:
        err.print(f"stopped: {exc}", style="red", highlight=False, markup=False)
        raise typer.Exit(1) from None
    except OSError as exc:
        err.print(f"[red]cannot start: {exc}[/red]", highlight=False)
        raise typer.Exit(1) from None


@db_app.command("upgrade")
def db_upgrade(config: ConfigOpt = None, revision: str = "head") -> None:
    """Bring the database schema up to date (creates the SQLite file if needed)."""
    from ivr.db import migrate
    from ivr.db.engine import redact

    cfg = _load(config)
    migrate.upgrade(cfg.database_url(), revision)
    out.print(f"database {redact(cfg.database_url())} is at {revision}", highlight=False)


@db_app.command("downgrade")
def db_downgrade(
    revision: str,
    discard_history: Annotated[
        Path | None,
        typer.Option(
            "--discard-history",
            help="An `ivr db export` file of the database as it is now: lets the downgrade "
            "drop history rows.",
        ),
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Step the schema down to REVISION (`base` removes every table). Refused (exit 7) while
    calls, blocklist, audit or recording rows would be lost without a current export."""
    from ivr.cli.common import fail, with_parts
    from ivr.db import migrate
    from ivr.db.history import HistoryError, check_discard

    cfg = _load(config)

    async def check(parts: Parts) -> str:
        return (await check_discard(parts.engine, discard_history)).describe()

    try:
        dropped = with_parts(cfg, check, schema=False)
    except HistoryError as exc:
        raise fail(f"refused: {exc}", EXIT_CONFLICT) from None
    migrate.downgrade(cfg.database_url(), revision)
    out.print(f"database downgraded to {revision} (history dropped: {dropped})", highlight=False)


@db_app.command("export")
def db_export(
    to: Annotated[Path, typer.Option("--to", help="A new file (written 0600).")],
    config: ConfigOpt = None,
) -> None:
    """Write every calls, blocklist, audit and recordings row to a new JSON file, with a
    SHA-256 that `ivr db downgrade --discard-history` checks against the database."""
    from ivr.cli.common import fail, with_parts
    from ivr.db.history import export

    cfg = _load(config)

    async def work(parts: Parts) -> str:
        try:
            snap = await export(parts.engine, to)
        except FileExistsError:
            raise fail(f"{to} exists; choose a new file name", EXIT_CONFLICT) from None
        except OSError as exc:
            raise fail(f"{to}: {exc.strerror or exc}", 1) from None
        return f"{to}: {snap.describe()}, sha256 {snap.sha256}"

    out.print(with_parts(cfg, work, schema=False), highlight=False, markup=False)


@db_app.command("current")
def db_current(config: ConfigOpt = None) -> None:
    """Print the schema revision of the database and of the code."""
    from ivr.db.engine import create_engine
    from ivr.db.migrate import schema_status

    cfg = _load(config)

    async def main() -> None:
        engine = create_engine(cfg.database_url())
        try:
            st = await schema_status(engine)
        finally:
            await engine.dispose()
        out.print(f"database: {st.current or 'none'}  code: {st.head}  up to date: {st.up_to_date}")
        if not st.up_to_date:
            raise typer.Exit(EXIT_SCHEMA)

    asyncio.run(main())


@logins_app.command("set")
def logins_set(
    name: str,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    config: ConfigOpt = None,
) -> None:
    """Give a supervisor a web console login: a password and a new one-time-code secret (print
    the otpauth:// URI as a QR code for their authenticator app). Replaces an earlier one."""
    import sys
    from datetime import timedelta

    from ivr.api.logins import FILE, Logins

    cfg = _load(config)
    if name not in cfg.supervisors:
        err.print(f"{name!r} is not under [supervisors] in the configuration", markup=False)
        raise typer.Exit(EXIT_CONFIG)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    cfg.data_path().mkdir(mode=0o700, parents=True, exist_ok=True)
    logins = Logins(cfg.data_path() / FILE, timedelta(hours=cfg.api.session_hours))
    try:
        uri = logins.add(name, password)
    except ValueError as exc:
        err.print(str(exc), markup=False)
        raise typer.Exit(4) from None
    out.print(uri, markup=False, highlight=False, soft_wrap=True)


@config_app.command("check")
def config_check(config: ConfigOpt = None) -> None:
    """Validate the configuration and say where data goes."""
    cfg = _load(config)
    out.print(f"configuration OK; data directory {cfg.data_dir}; AGI on {cfg.agi.listen}")


@app.command()
def simulate(
    caller: Annotated[str, typer.Option(help="Presented caller number, as the network sends it.")],
    name: Annotated[str, typer.Option(help="Caller name.")] = "",
    presentation: Annotated[
        str, typer.Option(help="allowed, withheld or unavailable.")
    ] = "allowed",
    digits: Annotated[
        str, typer.Option(help="Keys pressed at each menu, comma separated; '-' for no key.")
    ] = "",
    dialled: Annotated[str, typer.Option(help="The number the caller dialled.")] = "",
    at: Annotated[
        str | None, typer.Option(help="When the call happens, ISO time in the centre's zone.")
    ] = None,
    hangup_during: Annotated[
        str | None, typer.Option(help="Hang up while this prompt plays (a prompt id).")
    ] = None,
    use_db: Annotated[
        bool,
        typer.Option(help="Use the configured database (blocklist) instead of a throwaway one."),
    ] = False,
    config: ConfigOpt = None,
) -> None:
    """Run one scripted call against the service in this process and print the conversation."""
    from ivr.app import SchemaOutdated
    from ivr.sim.simulate import PRESENTATION, SimulatedCall, describe, parse_at, run_simulation

    cfg = _load(config)
    if presentation not in PRESENTATION:
        err.print(f"--presentation must be one of {', '.join(PRESENTATION)}")
        raise typer.Exit(EXIT_CONFIG)
    try:
        when = parse_at(at, cfg.hours.timezone)
    except ValueError:
        err.print(f"--at: not an ISO date-time: {at!r}")
        raise typer.Exit(EXIT_CONFIG) from None
    keys = (
        tuple(None if d.strip() in ("", "-") else d.strip() for d in digits.split(","))
        if digits
        else ()
    )
    call = SimulatedCall(caller, name, presentation, keys, dialled, hangup_during)
    sim_clock = FixedClock(when) if when else clock()
    logging.basicConfig(level=logging.ERROR)
    try:
        record, _ = asyncio.run(run_simulation(cfg, call, sim_clock, use_configured_db=use_db))
    except SchemaOutdated as exc:
        err.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(EXIT_SCHEMA) from None
    out.print(
        f"call from {caller!r} ({presentation}) at {sim_clock.now().isoformat()}", highlight=False
    )
    describe(record, cfg, catalog(), lambda line: out.print(line, highlight=False, markup=False))


def main() -> None:
    app()
