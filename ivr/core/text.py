"""Caller text made safe to store and show: control and bidi characters written as escapes."""

from __future__ import annotations

import re

# Line breaks, NUL and other controls, and the bidirectional overrides (U+202E shows text
# reversed): what could forge a log line, confuse a terminal or be refused by PostgreSQL.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def unsafe(text: str) -> str | None:
    """The first control or bidi character of `text` (as `U+000A`), or None when it has none.
    Notes and reasons with one are refused: stored, they could forge a line or a terminal's
    state wherever they are shown later."""
    m = _UNSAFE.search(text)
    return None if m is None else f"U+{ord(m.group()):04X}"


def check_note(text: str, what: str, limit: int) -> str:
    """`text` stripped, or ValueError naming `what` when it is too long or holds a control,
    C1 or bidi character (a line break included)."""
    text = text.strip()
    if len(text) > limit:
        raise ValueError(f"{what} is longer than {limit} characters")
    bad = unsafe(text)
    if bad is not None:
        raise ValueError(
            f"{what} contains a control or direction character ({bad}); write it as plain text"
        )
    return text


def _escaped(match: re.Match[str]) -> str:
    return match.group().encode("unicode_escape").decode("ascii")


def escape(text: str) -> str:
    """`text` with every unsafe character written as a Python escape (`\\n`, `\\u202e`)."""
    return _UNSAFE.sub(_escaped, text)


def kept(text: str, limit: int) -> str:
    """`text` escaped and cut to at most `limit` characters, never inside an escape."""
    head = text[:limit]
    if not _UNSAFE.search(head):
        return head
    out: list[str] = []
    size = 0
    for ch in head:
        piece = escape(ch)
        if size + len(piece) > limit:
            break
        out.append(piece)
        size += len(piece)
    return "".join(out)
