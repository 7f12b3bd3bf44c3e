"""What every `ivr` command shares: consoles, configuration loading, exit codes, JSON output."""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.text import Text
from sqlalchemy.exc import SQLAlchemyError

from ivr.clock import Clock, clock_from_env
from ivr.config import Config, ConfigError, load_config
from ivr.core.text import escape
from ivr.paths import prompts_dir
from ivr.prompts import PromptCatalog

if TYPE_CHECKING:
    from ivr.wiring import Parts

err = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="TOML configuration file (or IVR_CONFIG).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
NoteOpt = Annotated[str, typer.Option("--note", help="Why (kept in the audit trail).")]

# Exit codes (documented in the README).
EXIT_FAILED = 1
EXIT_CONFIG = 2  # configuration or command-line usage
EXIT_SCHEMA = 3  # database schema not at the code's revision
EXIT_INVALID = 4  # bad input: number, category, expiry, evidence, CSV rows
EXIT_NOT_PERMITTED = 5  # not a supervisor, own proposal, --as without admin or note
EXIT_NOT_FOUND = 6
EXIT_CONFLICT = 7  # the entry's state does not allow it, or a duplicate
EXIT_TAMPERED = 8  # `ivr audit verify` found a broken row

EXIT_BY_KIND = {
    "invalid": EXIT_INVALID,
    "not-permitted": EXIT_NOT_PERMITTED,
    "not-found": EXIT_NOT_FOUND,
    "conflict": EXIT_CONFLICT,
    "tampered": EXIT_TAMPERED,
    "unavailable": EXIT_FAILED,  # the database or AMI did not answer: try again
    "failed": EXIT_FAILED,
}

T = TypeVar("T")


def clock() -> Clock:
    """The clock of every command: `IVR_CLOCK` (as `ivr serve` reads it), else the system's."""
    try:
        return clock_from_env(os.environ)
    except ValueError as exc:
        err.print(str(exc), markup=False, highlight=False)
        raise typer.Exit(EXIT_CONFIG) from None


def catalog() -> PromptCatalog:
    return PromptCatalog.load(prompts_dir() / "catalog.toml")


def load(path: Path | None) -> Config:
    try:
        return load_config(path, os.environ, catalog())
    except ConfigError as exc:
        err.print(f"[red]configuration error[/red]\n{exc}", highlight=False)
        raise typer.Exit(EXIT_CONFIG) from None


def fail(message: str, code: int) -> typer.Exit:
    warn(message)
    return typer.Exit(code)


def warn(line: str) -> None:
    """One line on standard error that may hold stored text, shown as `say` shows it."""
    err.print(escape(line), highlight=False, markup=False)


def say(line: str) -> None:
    """One line of output that may hold stored text (a note, a reason, a file name): control
    and direction characters are shown as escapes, never acted on by the terminal."""
    out.print(escape(line), highlight=False, markup=False)


def mmss(seconds: float | None) -> str:
    """A duration as M:SS, or "-"."""
    if seconds is None:
        return "-"
    s = int(seconds)
    return f"{s // 60}:{s % 60:02d}"


def cells(*values: object) -> list[Text]:
    """Table cells as plain text: stored values (notes, reasons) are never read as markup, and
    their control and direction characters are shown as escapes."""
    return [Text(escape(str(v))) for v in values]


def print_json(data: Any) -> None:
    out.print_json(json.dumps(data, ensure_ascii=False, default=_default), ensure_ascii=False)


def _default(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def with_parts(cfg: Config, work: Callable[[Parts], Awaitable[T]], *, schema: bool = True) -> T:
    """Run `work(parts)` with the composition root's parts (the command's clock, a patient
    database wait), after checking the schema is current unless `schema` is False (the `db`
    commands, which work on any revision)."""
    import asyncio

    from ivr.db.migrate import schema_status
    from ivr.wiring import Parts

    async def main() -> T:
        async with AsyncExitStack() as stack:
            parts = Parts(cfg, clock(), timeout_s=max(cfg.database.timeout_s, 10))
            stack.push_async_callback(parts.engine.dispose)
            st = await schema_status(parts.engine) if schema else None
            if st is not None and not st.up_to_date:
                raise fail(
                    f"database schema is at {st.current or 'none'}, code needs {st.head}: "
                    "run `ivr db upgrade`",
                    EXIT_SCHEMA,
                )
            return await work(parts)

    try:
        return asyncio.run(main())
    except (SQLAlchemyError, OSError) as exc:
        raise fail(f"database error: {exc}", EXIT_FAILED) from None
