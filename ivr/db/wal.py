"""The journal's write-ahead file: every call write is in a local file within 50 ms of being
queued, so `kill -9` (or a crash) loses at most the writes of that moment, not the queue.

Writes are buffered and written out by a timer (`LINGER_S`) or when the buffer grows, never
one `write(2)` per call. The file is not fsync'd: a killed process loses nothing the kernel
has; a power cut may lose what the disk had not taken yet. Segments are closed at
`SEGMENT_BYTES` and deleted once every write in them is in the database. A live segment is
held under `flock`, so that the next start replays only the files of stopped processes.
Replay may repeat writes that were stored already; every write is idempotent (see
`ivr.db.calls`).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from ivr.db import spill

log = logging.getLogger("ivr.journal")

SUFFIX = ".wal"
LINGER_S = 0.05
BUFFER_BYTES = 256 * 1024
SEGMENT_BYTES = 8 * 1024 * 1024


@dataclass
class _Segment:
    path: Path
    fd: int
    last: int = 0  # the number (1-based) of the last write in it
    size: int = 0


class WriteAhead:
    """Writes numbered 1, 2, 3... in order; `stored(n)` says the first n are in the database."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._buf: list[str] = []
        self._buf_bytes = 0
        self._count = 0  # writes appended
        self._stored = 0  # writes stored
        self._current: _Segment | None = None
        self._closed: list[_Segment] = []
        self._timer: asyncio.TimerHandle | None = None
        self.failed = False  # the folder could not be written: the queue alone holds writes

    def append(self, op: spill.Op) -> None:
        line = spill.encode(op) + "\n"
        self._buf.append(line)
        self._buf_bytes += len(line)
        self._count += 1
        if self._buf_bytes >= BUFFER_BYTES:
            self.flush()
        elif self._timer is None:
            try:
                self._timer = asyncio.get_running_loop().call_later(LINGER_S, self.flush)
            except RuntimeError:  # no event loop (a synchronous caller): write it now
                self.flush()

    def flush(self) -> None:
        """Write the buffer out (the kernel has it when this returns)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._buf or self.failed:
            self._buf.clear()
            self._buf_bytes = 0
            return
        data = "".join(self._buf).encode()
        self._buf.clear()
        self._buf_bytes = 0
        try:
            seg = self._segment()
            view = memoryview(data)
            while view:
                view = view[os.write(seg.fd, view) :]
        except OSError as exc:
            self.failed = True
            log.error("call journal: write-ahead file failed, writes are in memory only: %r", exc)
            return
        seg.last = self._count
        seg.size += len(data)
        if seg.size >= SEGMENT_BYTES:
            self._closed.append(seg)
            self._current = None

    def _segment(self) -> _Segment:
        if self._current is None:
            self._folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            name = f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{secrets.token_hex(3)}"
            path = self._folder / f"{name}{SUFFIX}"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            self._current = _Segment(path, fd)
        return self._current

    def stored(self, n: int) -> None:
        """The next `n` writes are in the database: drop the segments they complete."""
        self._stored += n
        while self._closed and self._closed[0].last <= self._stored:
            self._drop(self._closed.pop(0))
        cur = self._current
        if cur is not None and not self._buf and cur.last <= self._stored:
            # Everything written so far is stored: start afresh rather than grow the file.
            self._drop(cur)
            self._current = None

    def _drop(self, seg: _Segment) -> None:
        with contextlib.suppress(OSError):
            seg.path.unlink()
        with contextlib.suppress(OSError):
            os.close(seg.fd)

    def close(self) -> None:
        """At a clean stop: what is not stored is in the spill file by now; remove ours."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._buf.clear()
        for seg in [*self._closed, *([self._current] if self._current else [])]:
            self._drop(seg)
        self._closed.clear()
        self._current = None


def claim(folder: Path) -> tuple[list[Path], list[spill.Op]]:
    """The write-ahead files of processes that stopped (a live one holds its lock), renamed
    for replay like spill files, and their writes in order."""
    if not folder.is_dir():
        return [], []
    for path in sorted(folder.glob(f"*{SUFFIX}")):
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # a running journal's
        else:
            with contextlib.suppress(FileNotFoundError):
                path.rename(path.with_name(path.name + spill.SUFFIX))
        finally:
            os.close(fd)
    return spill.claim(folder)
