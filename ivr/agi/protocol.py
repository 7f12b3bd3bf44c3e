"""Sans-I/O FastAGI protocol: the environment block, reply lines and argument quoting.

The parser never pairs a line with a command unless a command is outstanding, so lines that
arrive unasked (a caller ID carrying CR/LF, a late reply after `HANGUP`) cannot be mistaken for
the answer to the next command.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache

DEFAULT_MAX_ENV_BYTES = 32 * 1024
DEFAULT_MAX_LINE_BYTES = 16 * 1024
MAX_COMMAND_BYTES = 2000  # Asterisk reads commands into a 2 KiB buffer (AGI_BUF_LEN)
MAX_USAGE_LINES = 200  # Asterisk's longest usage text is a few dozen lines

# The environment's lines, read in one pass over the block: `agi_key: value`.
_ENV_LINES = re.compile(r"^(agi_[a-z0-9_]+): ?(.*)$", re.MULTILINE)
# The blank line that ends the environment, when CRs are about (Asterisk itself sends none).
_ENV_END_CR = re.compile(rb"(?:^|(\n))\r*\n")
_REPLY_200 = re.compile(
    r"^200 result=(?P<result>\S*)(?: \((?P<data>.*)\))?(?: endpos=(?P<endpos>-?\d+))?\s*$"
)
_CODE = re.compile(r"^(\d{3})([ -])(.*)$")


class AgiProtocolError(Exception):
    """The peer broke the protocol (oversized block or line, unparseable reply)."""


@dataclass(frozen=True)
class AgiEnvironment:
    """The `agi_*` block Asterisk sends when the session opens."""

    values: Mapping[str, str]
    junk_lines: int = 0
    duplicate_keys: tuple[str, ...] = ()

    def get(self, key: str, default: str = "") -> str:
        """Value of `agi_<key>` (or the full key), or `default`."""
        full = key if key.startswith("agi_") else f"agi_{key}"
        return self.values.get(full, default)

    @property
    def script(self) -> str:
        """`agi_network_script` without any `?query` and surrounding slashes."""
        return self.get("network_script").split("?", 1)[0].strip("/")

    @property
    def args(self) -> tuple[str, ...]:
        """`agi_arg_1`, `agi_arg_2`, ... in order."""
        out: list[str] = []
        n = 1
        while f"agi_arg_{n}" in self.values:
            out.append(self.values[f"agi_arg_{n}"])
            n += 1
        return tuple(out)

    @property
    def tainted(self) -> bool:
        """True when the block holds lines Asterisk would never send itself.

        That happens only when a caller-controlled value (caller ID name) carried CR/LF, so no
        value after it can be trusted.
        """
        return bool(self.junk_lines or self.duplicate_keys) or "agi_callingpres" not in self.values


@dataclass(frozen=True)
class Reply:
    """One reply: `200 result=... (data) endpos=...`, or 510/511/520."""

    code: int
    result: str = ""
    data: str | None = None
    endpos: int | None = None
    lines: tuple[str, ...] = ()

    @property
    def result_int(self) -> int | None:
        """The result as an integer, or None when it is not one (GET DATA digits are)."""
        try:
            return int(self.result)
        except ValueError:
            return None


@dataclass(frozen=True)
class EnvironmentReceived:
    env: AgiEnvironment


@dataclass(frozen=True)
class ReplyReceived:
    reply: Reply


@dataclass(frozen=True)
class HangupReceived:
    """Asterisk's `HANGUP` line: the channel is gone."""


@dataclass(frozen=True)
class JunkLine:
    """A line that is neither asked for nor a hang-up notice; dropped."""

    line: str


Event = EnvironmentReceived | ReplyReceived | HangupReceived | JunkLine


def parse_reply_line(line: str) -> Reply:
    """Parse one complete single-line reply."""
    event = _received(line)
    if event is None:
        raise AgiProtocolError(f"unparseable reply line: {line[:80]!r}")
    return event.reply


@lru_cache(maxsize=1024)
def _received(line: str) -> ReplyReceived | None:
    """The reply a line holds, as its event, or None. Cached: a service sees the same few lines
    over and over (prompts have fixed lengths), and both are immutable."""
    m = _REPLY_200.match(line)
    if m:
        endpos = m.group("endpos")
        return ReplyReceived(
            Reply(
                code=200,
                result=m.group("result"),
                data=m.group("data"),
                endpos=int(endpos) if endpos is not None else None,
                lines=(line,),
            )
        )
    m2 = _CODE.match(line)
    if m2:
        return ReplyReceived(Reply(code=int(m2.group(1)), data=m2.group(3), lines=(line,)))
    return None


@dataclass
class AgiParser:
    """Incremental parser for what Asterisk sends to a FastAGI server."""

    max_env_bytes: int = DEFAULT_MAX_ENV_BYTES
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    _buf: bytearray = field(default_factory=bytearray)
    _in_env: bool = True
    _awaiting: bool = False
    _usage: list[str] | None = None
    _accept: Callable[[Reply], bool] | None = None

    @property
    def environment_done(self) -> bool:
        return not self._in_env

    def command_sent(self, accept: Callable[[Reply], bool] | None = None) -> None:
        """Tell the parser a command went out, so the next reply line belongs to it.

        With `accept`, replies it refuses are reported as junk and the wait goes on.
        """
        if self._in_env:
            raise AgiProtocolError("command sent before the environment was read")
        if self._awaiting:
            raise AgiProtocolError("command sent while another is outstanding")
        self._awaiting = True
        self._accept = accept

    def feed(self, data: bytes) -> list[Event]:
        """Take bytes from the socket, return what they complete."""
        if not self._in_env and not self._buf and data and data.find(b"\n") == len(data) - 1:
            # The usual case: exactly one whole line, the reply to the command just sent.
            if len(data) > self.max_line_bytes:
                raise AgiProtocolError("line too long")
            event = self._line(data.decode("utf-8", errors="replace").rstrip("\r\n"))
            return [] if event is None else [event]
        self._buf += data
        events: list[Event] = []
        if self._in_env:
            env = self._environment()
            if env is None:
                return events
            events.append(env)
        while True:
            nl = self._buf.find(b"\n")
            if nl < 0:
                if len(self._buf) > self.max_line_bytes:
                    raise AgiProtocolError("line too long")
                break
            raw = bytes(self._buf[: nl + 1])
            del self._buf[: nl + 1]
            if len(raw) > self.max_line_bytes:
                raise AgiProtocolError("line too long")
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            event = self._line(line)
            if event is not None:
                events.append(event)
        return events

    def _line(self, line: str) -> Event | None:
        if line == "HANGUP":
            return HangupReceived()
        if not self._awaiting:
            return JunkLine(line)
        if self._usage is not None:
            self._usage.append(line)
            if len(self._usage) > MAX_USAGE_LINES:
                raise AgiProtocolError("520 usage block without its end")
            if line.startswith("520 "):
                lines = tuple(self._usage)
                self._usage = None
                self._awaiting = False
                return ReplyReceived(Reply(code=520, data="\n".join(lines), lines=lines))
            return None
        if line.startswith("520-"):
            self._usage = [line]
            return None
        event = _received(line)
        if event is None:
            return JunkLine(line)
        if self._accept is not None and not self._accept(event.reply):
            return JunkLine(line)
        self._awaiting = False
        self._accept = None
        return event

    def _environment(self) -> EnvironmentReceived | None:
        """The whole environment once its blank line is in the buffer, read in one pass."""
        buf = self._buf
        # find, not `in`: `in` on a bytearray first tries the operand as an integer and builds
        # (then drops) a TypeError for it.
        if buf.find(b"\r") >= 0:
            m = _ENV_END_CR.search(buf)
            found = (m.start() + (1 if m.group(1) else 0), m.end()) if m else None
        elif buf[:1] == b"\n":
            found = (0, 1)
        else:
            nl = buf.find(b"\n\n")
            found = (nl + 1, nl + 2) if nl >= 0 else None
        if found is None:
            if len(buf) > self.max_env_bytes:
                raise AgiProtocolError("environment block over the size limit")
            return None
        lines_end, block_end = found  # the block's lines (LF and all), and the blank line's end
        if block_end > self.max_env_bytes:
            raise AgiProtocolError("environment block over the size limit")
        block = buf[:lines_end]
        del buf[:block_end]
        self._in_env = False
        text = block.decode("utf-8", errors="replace")
        pairs: list[tuple[str, str]] = _ENV_LINES.findall(text)
        if "\r" in text:  # a line's trailing CRs are not part of its value
            pairs = [(key, value.rstrip("\r")) for key, value in pairs]
        env = dict(pairs)
        dups: list[str] = []
        if len(env) < len(pairs):
            env = {}
            for key, value in pairs:
                if key in env:
                    # Keep the first: a forged duplicate can only come from a value sent before.
                    dups.append(key)
                else:
                    env[key] = value
        junk = text.count("\n") - len(pairs)
        return EnvironmentReceived(AgiEnvironment(env, junk, tuple(dups)))


def quote(arg: str) -> str:
    """Quote one argument the way Asterisk's `parse_args` reads it back.

    CR, LF and NUL can never travel inside a command line, so they are refused.
    """
    if "\n" in arg or "\r" in arg or "\0" in arg:
        raise ValueError("AGI argument contains CR, LF or NUL")
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Raw(str):
    """A command token we made ourselves (a number, a variable name): sent unquoted."""

    __slots__ = ()


_RAW_TOKEN = re.compile(r"^[A-Za-z0-9_#*.()\-]+$")


@lru_cache(maxsize=512, typed=True)  # typed: a `Raw` token and the same quoted text differ
def format_command(verb: str, *args: str) -> bytes:
    """Build one command line: `Raw` tokens go as they are, every other argument is quoted.

    Cached: most commands (the prompts, the menu) are the same on every call."""
    parts = [verb]
    for a in args:
        if isinstance(a, Raw):
            if not _RAW_TOKEN.match(a):
                raise ValueError(f"unsafe raw AGI token: {a!r}")
            parts.append(str(a))
        else:
            parts.append(quote(a))
    data = (" ".join(parts) + "\n").encode("utf-8")
    if len(data) > MAX_COMMAND_BYTES:
        raise ValueError("AGI command too long")
    return data


def parse_args(line: str) -> list[str]:
    """Split a command line exactly as Asterisk's `agi.c:parse_args` does."""
    argv: list[str] = []
    cur: list[str] | None = None
    quoted = escaped = False
    whitespace = True
    for ch in line:
        if ch == '"' and not escaped:
            quoted = not quoted
            if quoted and whitespace:
                cur = []
                argv.append("")
                whitespace = False
            escaped = False
            continue
        if ch in " \t" and not quoted and not escaped:
            if cur is not None and not whitespace:
                argv[-1] = "".join(cur)
            whitespace = True
            cur = None
            continue
        if ch == "\\" and not escaped:
            escaped = True
            continue
        if whitespace:
            cur = []
            argv.append("")
            whitespace = False
        assert cur is not None
        cur.append(ch)
        escaped = False
    if cur is not None:
        argv[-1] = "".join(cur)
    return argv
