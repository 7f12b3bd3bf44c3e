"""Sans-I/O FastAGI protocol: the environment block, reply lines and argument quoting.

The parser never pairs a line with a command unless a command is outstanding, so lines that
arrive unasked (a caller ID carrying CR/LF, a late reply after `HANGUP`) cannot be mistaken for
the answer to the next command.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

DEFAULT_MAX_ENV_BYTES = 32 * 1024
DEFAULT_MAX_LINE_BYTES = 16 * 1024
MAX_COMMAND_BYTES = 2000  # Asterisk reads commands into a 2 KiB buffer (AGI_BUF_LEN)
MAX_USAGE_LINES = 200  # Asterisk's longest usage text is a few dozen lines

_ENV_LINE = re.compile(r"^(agi_[a-z0-9_]+): ?(.*)$")
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
    m = _REPLY_200.match(line)
    if m:
        endpos = m.group("endpos")
        return Reply(
            code=200,
            result=m.group("result"),
            data=m.group("data"),
            endpos=int(endpos) if endpos is not None else None,
            lines=(line,),
        )
    m2 = _CODE.match(line)
    if m2:
        return Reply(code=int(m2.group(1)), data=m2.group(3), lines=(line,))
    raise AgiProtocolError(f"unparseable reply line: {line[:80]!r}")


@dataclass
class AgiParser:
    """Incremental parser for what Asterisk sends to a FastAGI server."""

    max_env_bytes: int = DEFAULT_MAX_ENV_BYTES
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    _buf: bytearray = field(default_factory=bytearray)
    _env_bytes: int = 0
    _env: dict[str, str] = field(default_factory=dict)
    _env_junk: int = 0
    _env_dups: list[str] = field(default_factory=list)
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
        self._buf += data
        events: list[Event] = []
        while True:
            nl = self._buf.find(b"\n")
            if nl < 0:
                limit = self.max_env_bytes if self._in_env else self.max_line_bytes
                if len(self._buf) > limit:
                    raise AgiProtocolError("line too long")
                break
            raw = bytes(self._buf[: nl + 1])
            del self._buf[: nl + 1]
            if self._in_env:
                self._env_bytes += len(raw)
                if self._env_bytes > self.max_env_bytes:
                    raise AgiProtocolError("environment block over the size limit")
            elif len(raw) > self.max_line_bytes:
                raise AgiProtocolError("line too long")
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            event = self._line(line)
            if event is not None:
                events.append(event)
        return events

    def _line(self, line: str) -> Event | None:
        if self._in_env:
            return self._env_line(line)
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
        if not _CODE.match(line):
            return JunkLine(line)
        reply = parse_reply_line(line)
        if self._accept is not None and not self._accept(reply):
            return JunkLine(line)
        self._awaiting = False
        self._accept = None
        return ReplyReceived(reply)

    def _env_line(self, line: str) -> Event | None:
        if line == "":
            self._in_env = False
            return EnvironmentReceived(
                AgiEnvironment(dict(self._env), self._env_junk, tuple(self._env_dups))
            )
        m = _ENV_LINE.match(line)
        if not m:
            self._env_junk += 1
            return None
        key, value = m.group(1), m.group(2)
        if key in self._env:
            # Keep the first: a forged duplicate can only come from a value sent before it.
            self._env_dups.append(key)
        else:
            self._env[key] = value
        return None


def quote(arg: str) -> str:
    """Quote one argument the way Asterisk's `parse_args` reads it back.

    CR, LF and NUL can never travel inside a command line, so they are refused.
    """
    if any(c in arg for c in "\r\n\0"):
        raise ValueError("AGI argument contains CR, LF or NUL")
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Raw(str):
    """A command token we made ourselves (a number, a variable name): sent unquoted."""

    __slots__ = ()


_RAW_TOKEN = re.compile(r"^[A-Za-z0-9_#*.()\-]+$")


def format_command(verb: str, *args: str) -> bytes:
    """Build one command line: `Raw` tokens go as they are, every other argument is quoted."""
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
