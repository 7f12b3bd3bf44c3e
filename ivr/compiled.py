"""The modules of a call's path that `make` compiles to C with mypyc, and whether they are.

The `.py` files stay the source: mypyc turns each into an extension module beside it, which
Python imports in its place. Without a C compiler everything still runs as plain Python, only
slower (README, Performance). This module itself is never compiled.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

# Not compiled: modules off the per-call path, and `ivr.db.calls` (SQLAlchemy statements built
# at import; what a call runs of it is in `ivr.db.rows`).
MODULES = (
    "ivr.agi.protocol",
    "ivr.agi.server",
    "ivr.agi.session",
    "ivr.calls.monitor",
    "ivr.clock",
    "ivr.core.alerts",
    "ivr.core.blocklist",
    "ivr.core.caller",
    "ivr.core.caps",
    "ivr.core.categories",
    "ivr.core.hours",
    "ivr.core.menu",
    "ivr.core.screening",
    "ivr.core.text",
    "ivr.db.journal",
    "ivr.db.rows",
    "ivr.db.sqlite_reader",
    "ivr.events.publisher",
    "ivr.handlers.inbound",
    "ivr.logs",
    "ivr.names",
    "ivr.prompts",
    "ivr.tally",
)


def source_paths() -> list[str]:
    """The modules' source files, relative to the project root (for the build)."""
    return [str(Path(*m.split(".")).with_suffix(".py")) for m in MODULES]


@dataclass(frozen=True)
class Build:
    compiled: list[str]  # imported from an extension module
    # Compiled, but the .py was changed after it (the old code would run), or no longer listed.
    stale: list[str]
    total: int  # modules asked about

    @property
    def summary(self) -> str:
        if self.stale:
            return f"stale compiled modules (run `make compile`): {', '.join(self.stale)}"
        if not self.compiled:
            return "pure Python (no compiled modules)"
        return f"{len(self.compiled)} of {self.total} call-path modules compiled with mypyc"


def _extensions(package: Path) -> dict[str, Path]:
    """The modules under `package` that have an extension module file, and the file (mypyc's
    shared library left out)."""
    found = {}
    for path in sorted(package.rglob("*.so")):
        for suffix in EXTENSION_SUFFIXES:
            if path.name.endswith(suffix):
                parts = path.relative_to(package.parent).parts
                name = ".".join([*parts[:-1], path.name.removesuffix(suffix)])
                if not name.endswith("__mypyc"):
                    found[name] = path
                break
    return found


def unlisted(modules: Sequence[str] = MODULES, package: Path | None = None) -> dict[str, Path]:
    """Extension module files under `package` (default: `ivr`) for modules not in `modules`, by
    module: `make compile` removes them, since Python would go on importing them."""
    found = _extensions(package or Path(__file__).parent)
    return {name: path for name, path in found.items() if name not in modules}


def build(modules: Sequence[str] = MODULES, package: Path | None = None) -> Build:
    """Which of `modules` Python would import compiled, and which of those are out of date;
    an extension module under `package` (default: `ivr`) for a module not listed is stale too.

    Only meaningful in a source tree built in place (`make`): an installed wheel's files carry
    their install times, not their build times.
    """
    compiled: list[str] = []
    stale = list(unlisted(modules, package))
    for name in modules:
        spec = importlib.util.find_spec(name)
        origin = spec.origin if spec is not None else None
        if origin is None or origin.endswith(".py"):
            continue
        compiled.append(name)
        source = Path(origin).with_name(name.rsplit(".", 1)[1] + ".py")
        if source.exists() and source.stat().st_mtime > Path(origin).stat().st_mtime:
            stale.append(name)
    return Build(compiled, stale, len(modules))
