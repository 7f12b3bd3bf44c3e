"""`ivr doctor`: is this installation ready to take calls?"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import typer
from rich.table import Table
from rich.text import Text

from ivr.cli.common import EXIT_FAILED, ConfigOpt, JsonOpt, catalog, clock, out, print_json
from ivr.config import ConfigError, load_config
from ivr.doctor import Finding, run_checks

STYLE = {"ok": "green", "warn": "yellow", "fail": "bold red", "off": "dim"}


def doctor(config: ConfigOpt = None, json_: JsonOpt = False) -> None:
    """Check the configuration, schema, prompt files, spool, storage, AMI login and MQTT broker."""
    findings = _findings(config)
    if json_:
        print_json([f.as_dict() for f in findings])
    else:
        table = Table("check", "status", "detail", show_lines=False)
        for f in findings:
            table.add_row(f.check, Text(f.status, style=STYLE[f.status]), Text(f.detail))
        out.print(table)
    failed = [f.check for f in findings if f.status == "fail"]
    if failed:
        if not json_:
            out.print(f"not ready: fix {', '.join(failed)}", highlight=False, markup=False)
        raise typer.Exit(EXIT_FAILED)


def _findings(config: Path | None) -> list[Finding]:
    try:
        cfg = load_config(config, os.environ, catalog())
    except ConfigError as exc:
        return [Finding("configuration", "fail", str(exc))]
    return asyncio.run(run_checks(cfg, catalog(), clock()))
