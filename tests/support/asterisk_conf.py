"""Asterisk configuration files read as Asterisk does."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

LINT = """
import sys
from asterisklint import FileConfigParser
parser = FileConfigParser()
parser.include(sys.argv[1])
for context in parser:
    for varset in context._varsets:
        print(f"{context.name}\\t{varset.variable}\\t{varset.value}")
"""


def parse(path: Path) -> tuple[dict[str, dict[str, str]], str]:
    """asterisklint's config reader: sections and settings, and whatever it warned about."""
    res = subprocess.run(
        [sys.executable, "-c", LINT, path.name],
        cwd=path.parent,
        capture_output=True,
        text=True,
        check=True,
    )
    sections: dict[str, dict[str, str]] = {}
    for line in res.stdout.splitlines():
        section, key, value = line.split("\t")
        sections.setdefault(section, {})[key] = value
    return sections, res.stderr
