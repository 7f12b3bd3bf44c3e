"""Call ids: ours, never derived from caller data."""

from __future__ import annotations

import itertools
import secrets

_ID_PREFIX = secrets.token_hex(10)  # 80 random bits, new for each process
_ID_SEQ = itertools.count()


def new_call_id() -> str:
    """32 hex digits, unique: this process's random prefix, then a counter. Unlike uuid4 it
    needs no system call per call."""
    return f"{_ID_PREFIX}{next(_ID_SEQ):012x}"
