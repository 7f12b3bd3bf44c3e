"""How Asterisk reads an AGI command line and an application's arguments (for the fake)."""

from __future__ import annotations

import functools

from ivr.agi.protocol import parse_args

KNOWN_VERBS = (
    "GET FULL VARIABLE",
    "GET VARIABLE",
    "SET VARIABLE",
    "STREAM FILE",
    "CONTROL STREAM FILE",
    "GET DATA",
    "WAIT FOR DIGIT",
    "ANSWER",
    "HANGUP",
    "EXEC",
    "VERBOSE",
    "NOOP",
    "CHANNEL STATUS",
    "DATABASE GET",
    "DATABASE PUT",
    "DATABASE DEL",
    "DATABASE DELTREE",
    "SET CONTEXT",
    "SET EXTENSION",
    "SET PRIORITY",
    "SET AUTOHANGUP",
    "SET MUSIC",
    "SAY DIGITS",
    "SAY NUMBER",
    "RECORD FILE",
    "ASYNCAGI BREAK",
)
_VERB_WORDS = [(v, v.split()) for v in KNOWN_VERBS]


@functools.lru_cache(maxsize=512)  # prompts and menus repeat on every call (the load generator)
def split_command(text: str) -> tuple[str | None, tuple[str, ...]]:
    """Match the longest known verb (case-insensitive, as Asterisk does) and parse the rest."""
    words = parse_args(text)
    upper = [w.upper() for w in words]
    for verb, parts in _VERB_WORDS:
        if upper[: len(parts)] == parts:
            return verb, tuple(words[len(parts) :])
    return None, tuple(words)


def app_args(data: str) -> list[str]:
    """Split application data the way Asterisk's `AST_STANDARD_APP_ARGS` does: at commas outside
    quotes and brackets, with quotes and backslash escapes removed."""
    out: list[str] = []
    cur: list[str] = []
    depth = 0
    quoted = escaped = False
    for ch in data:
        if escaped:
            cur.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif quoted:
            cur.append(ch)
        elif ch in "([":
            depth += 1
            cur.append(ch)
        elif ch in ")]" and depth:
            depth -= 1
            cur.append(ch)
        elif ch == "," and not depth:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur))
    return out


def usage(text: str) -> list[str]:
    return [
        "520-Invalid command syntax.  Proper usage follows:",
        f"Usage: {text}",
        "520 End of proper usage.",
    ]
