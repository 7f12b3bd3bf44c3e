"""Call writes the journal could not store before the service stopped, kept in local files
and replayed at the next start, so a SIGTERM with the database locked or down loses nothing.

A spill file is JSON lines, one write each, written `0600` and fsync'd (file and folder)
before the service exits. At start, worker 0 claims every spill file by renaming it (one
worker only can), queues its writes ahead of new ones, and deletes it once they are stored.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import secrets
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from ivr.db.calls import Closed, TalkReport
from ivr.db.rows import CallOutcome, CallStart
from ivr.files import write_private_file

log = logging.getLogger("ivr.journal")

SUFFIX = ".spill"
CLAIMED = ".replaying"


@dataclasses.dataclass(frozen=True)
class Outcome:
    call_id: str
    outcome: CallOutcome


Op = CallStart | Outcome | TalkReport | Closed
_KINDS: dict[str, Any] = {"start": CallStart, "talk": TalkReport, "closed": Closed}
_KIND_OF = {cls: kind for kind, cls in _KINDS.items()}


def _plain(obj: Any) -> dict[str, Any]:
    out = {}
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        out[f.name] = v.isoformat() if isinstance(v, datetime) else v
    return out


_INSTANTS = frozenset({"started_at", "ended_at", "at"})  # the datetime fields of the writes


def _typed(cls: Any, data: dict[str, Any]) -> Any:
    kwargs = {}
    for f in dataclasses.fields(cls):
        v = data.get(f.name)
        kwargs[f.name] = datetime.fromisoformat(v) if f.name in _INSTANTS and v else v
    return cls(**kwargs)


def encode(op: Op) -> str:
    if isinstance(op, Outcome):
        doc = {"kind": "outcome", "call_id": op.call_id, "outcome": _plain(op.outcome)}
    else:
        doc = {"kind": _KIND_OF[type(op)], **_plain(op)}
    return json.dumps(doc, ensure_ascii=True, separators=(",", ":"))


def decode(line: str) -> Op:
    doc = json.loads(line)
    kind = doc.pop("kind")
    if kind == "outcome":
        return Outcome(doc["call_id"], _typed(CallOutcome, doc["outcome"]))
    return _typed(_KINDS[kind], doc)  # type: ignore[no-any-return]


def write(folder: Path, ops: list[Op]) -> Path:
    """`ops` into a new spill file in `folder`, on disk before this returns."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    name = f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{secrets.token_hex(3)}{SUFFIX}"
    path = folder / name
    lines = "".join(encode(op) + "\n" for op in ops).encode()
    write_private_file(path, lines, sync_folder=True)
    return path


def claim(folder: Path) -> tuple[list[Path], list[Op]]:
    """Every spill file in `folder` (and any a stopped replay left), renamed so that no other
    worker replays it, and their writes in order."""
    if not folder.is_dir():
        return [], []
    paths: list[Path] = []
    ops: list[Op] = []
    for path in sorted([*folder.glob(f"*{SUFFIX}"), *folder.glob(f"*{CLAIMED}")]):
        mine = path if path.suffix == CLAIMED else path.with_suffix(CLAIMED)
        if mine != path:
            try:
                path.rename(mine)
            except FileNotFoundError:
                continue  # another worker claimed it first
        try:
            text = mine.read_text()
            lines = text.splitlines()
            if lines and not text.endswith("\n"):
                # A write-ahead file cut short by a kill: its last line was never whole.
                log.warning("%s: the last write was cut short by the stop; skipped", mine)
                lines.pop()
            ops += [decode(line) for line in lines if line.strip()]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.error("spill file %s unreadable, left in place: %r", mine, exc)
            continue
        paths.append(mine)
    return paths, ops
