"""Where the project's shipped files (prompts, migrations, dialplan) are found."""

from __future__ import annotations

import os
from pathlib import Path


def project_root() -> Path:
    """The checkout (or install prefix) holding prompts/, migrations/ and dialplan/."""
    override = os.environ.get("IVR_HOME")
    return Path(override) if override else Path(__file__).resolve().parents[1]


def prompts_dir() -> Path:
    return project_root() / "prompts"


def migrations_dir() -> Path:
    return project_root() / "migrations"
