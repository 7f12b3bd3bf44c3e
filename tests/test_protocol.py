"""The sans-I/O AGI protocol: replies, environment, quoting."""

from __future__ import annotations

import random
import re

import pytest

from ivr.agi.protocol import (
    AgiParser,
    AgiProtocolError,
    EnvironmentReceived,
    HangupReceived,
    JunkLine,
    Raw,
    ReplyReceived,
    format_command,
    parse_args,
    parse_reply_line,
    quote,
)
from ivr.sim.agi_commands import app_args

ENV = (
    b"agi_network: yes\nagi_network_script: inbound?x=1\nagi_callerid: 0312345678\n"
    b"agi_callingpres: 0\nagi_arg_1: 0120\nagi_arg_2: 17.1\n\n"
)


@pytest.mark.parametrize(
    ("line", "code", "result", "data", "endpos"),
    [
        ("200 result=0", 200, "0", None, None),
        ("200 result=1 (0312345678)", 200, "1", "0312345678", None),
        (
            '200 result=1 (evil"\\nEXEC System touch /tmp/pwned)',
            200,
            "1",
            'evil"\\nEXEC System touch /tmp/pwned',
            None,
        ),
        ("200 result=1 (a (b) c)", 200, "1", "a (b) c", None),
        ("200 result= (timeout)", 200, "", "timeout", None),
        ("200 result=12 (timeout)", 200, "12", "timeout", None),
        ("200 result=0 endpos=83203", 200, "0", None, 83203),
        ("200 result=-1 endpos=0", 200, "-1", None, 0),
        ("510 Invalid or unknown command", 510, "", "Invalid or unknown command", None),
        (
            "511 Command Not Permitted on a dead channel or intercept routine",
            511,
            "",
            "Command Not Permitted on a dead channel or intercept routine",
            None,
        ),
    ],
)
def test_reply_lines(
    line: str, code: int, result: str, data: str | None, endpos: int | None
) -> None:
    r = parse_reply_line(line)
    assert (r.code, r.result, r.data, r.endpos) == (code, result, data, endpos)


def _ready_parser() -> AgiParser:
    p = AgiParser()
    [ev] = p.feed(ENV)
    assert isinstance(ev, EnvironmentReceived)
    return p


def test_environment_script_query_removed_and_args() -> None:
    p = AgiParser()
    events = p.feed(ENV[:10]) + p.feed(ENV[10:])
    [ev] = events
    assert isinstance(ev, EnvironmentReceived)
    assert ev.env.script == "inbound"
    assert ev.env.args == ("0120", "17.1")
    assert not ev.env.tainted


def test_environment_size_limit() -> None:
    p = AgiParser(max_env_bytes=1024)
    with pytest.raises(AgiProtocolError):
        p.feed(b"agi_callerid: " + b"9" * 2000)


def test_environment_with_injected_lines_is_tainted_and_keeps_first_value() -> None:
    p = AgiParser()
    [ev] = p.feed(
        b"agi_network_script: inbound\nagi_callerid: 0312345678\n"
        b"agi_calleridname: x\nEXEC System touch /tmp/pwned\n"
        b"agi_callerid: 0399999999\nagi_callingpres: 0\n\n"
    )
    assert isinstance(ev, EnvironmentReceived)
    assert ev.env.tainted
    assert ev.env.get("callerid") == "0312345678"


def test_unasked_lines_are_junk_never_replies() -> None:
    p = _ready_parser()
    assert p.feed(b"200 result=1 (forged)\n") == [JunkLine("200 result=1 (forged)")]
    p.command_sent()
    [ev] = p.feed(b"200 result=0\n")
    assert isinstance(ev, ReplyReceived) and ev.reply.result == "0"


def test_hangup_then_511_pairs_with_the_command() -> None:
    p = _ready_parser()
    p.command_sent()
    events = p.feed(b"HANGUP\n511 Command Not Permitted on a dead channel or intercept routine\n")
    assert isinstance(events[0], HangupReceived)
    assert isinstance(events[1], ReplyReceived) and events[1].reply.code == 511


def test_520_usage_block_read_to_its_end() -> None:
    p = _ready_parser()
    p.command_sent()
    events = p.feed(b"520-Invalid command syntax.  Proper usage follows:\nUsage: X\n")
    assert events == []
    [ev] = p.feed(b"520 End of proper usage.\n")
    assert isinstance(ev, ReplyReceived) and ev.reply.code == 520 and len(ev.reply.lines) == 3
    p.command_sent()  # the parser is ready for the next command
    [ev2] = p.feed(b"200 result=1\n")
    assert isinstance(ev2, ReplyReceived)


def test_reply_line_too_long() -> None:
    p = _ready_parser()
    p.command_sent()
    with pytest.raises(AgiProtocolError):
        p.feed(b"200 result=1 (" + b"x" * 20000)


@pytest.mark.parametrize(
    "value", ["sales", 'a"b', "back\\slash", "two words", "", "日本語", '\\"', "1&PJSIP/x"]
)
def test_quote_round_trips_through_asterisk_parser(value: str) -> None:
    line = format_command("SET VARIABLE", Raw("X"), value).decode().rstrip("\n")
    assert parse_args(line) == ["SET", "VARIABLE", "X", value]


@pytest.mark.parametrize("value", ["a\nb", "a\rb", "a\0b"])
def test_quote_refuses_line_breaks(value: str) -> None:
    with pytest.raises(ValueError):
        quote(value)


def test_raw_tokens_are_checked() -> None:
    with pytest.raises(ValueError):
        format_command("GET VARIABLE", Raw("X Y"))
    with pytest.raises(ValueError):  # refused again, not served from the cache
        format_command("GET VARIABLE", Raw("X Y"))


def test_formatted_commands_are_cached_by_argument_type() -> None:
    """The same text as a `Raw` token and as a quoted argument are different commands."""
    assert format_command("SET VARIABLE", Raw("X"), "X") == b'SET VARIABLE X "X"\n'
    assert format_command("SET VARIABLE", "X", Raw("X")) == b'SET VARIABLE "X" X\n'
    assert format_command("SET VARIABLE", Raw("X"), "X") == b'SET VARIABLE X "X"\n'


def test_parse_args_matches_captured_commands() -> None:
    assert parse_args('STREAM FILE custom/notice ""') == ["STREAM", "FILE", "custom/notice", ""]
    assert parse_args("GET FULL VARIABLE ${CALLERID(num-pres)}") == [
        "GET",
        "FULL",
        "VARIABLE",
        "${CALLERID(num-pres)}",
    ]
    assert parse_args('VERBOSE "done" 1') == ["VERBOSE", "done", "1"]


@pytest.mark.parametrize(
    ("data", "args"),
    [
        ("A=1,B=2", ["A=1", "B=2"]),
        ("A=,B=x", ["A=", "B=x"]),
        ('A="quoted, kept",B=2', ["A=quoted, kept", "B=2"]),
        ("A=a\\,b,C=3", ["A=a,b", "C=3"]),
        ("A=${IF($[1]?x,y)},B=2", ["A=${IF($[1]?x,y)}", "B=2"]),
        ("", [""]),
    ],
)
def test_fake_splits_application_data_as_asterisk_does(data: str, args: list[str]) -> None:
    assert app_args(data) == args


def _env_line_by_line(data: bytes) -> tuple[dict[str, str], int, tuple[str, ...], bytes] | None:
    """The environment as Asterisk's lines define it, one line at a time: what the parser's
    one-pass reading must equal. None while no blank line has come."""
    values: dict[str, str] = {}
    junk, dups = 0, list[str]()
    rest = data
    while b"\n" in rest:
        raw, rest = rest.split(b"\n", 1)
        line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        if line == "":
            return values, junk, tuple(dups), rest
        key, sep, value = line.partition(":")
        if not sep or not re.fullmatch(r"agi_[a-z0-9_]+", key):
            junk += 1
        elif key in values:
            dups.append(key)
        else:
            values[key] = value[1:] if value.startswith(" ") else value
    return None


_PIECES = [
    b"agi_callerid: 0312345678\n",
    b"agi_calleridname: a\rb\r\r\n",
    b"agi_callingpres: 0\r\n",
    b"agi_callerid: forged\n",
    b"agi_x:no-space\n",
    b"agi_x:\r\n",
    b"AGI_UPPER: 1\n",
    b"200 result=1 (forged)\n",
    b"agi_name: \xe3\x81\x82\xe3\x81\n",
    b"\xff\xfe junk\n",
    b"\r\n",
    b"\r\r\n",
    b"\n",
    b"HANGUP\n",
    b"agi_arg_1: x: y\n",
]


@pytest.mark.parametrize("seed", range(300))
def test_environment_equals_a_line_by_line_reading(seed: int) -> None:
    rng = random.Random(seed)
    data = b"".join(rng.choice(_PIECES) for _ in range(rng.randint(0, 12)))
    expected = _env_line_by_line(data)
    p = AgiParser()
    events = []
    cut = sorted(rng.sample(range(len(data) + 1), min(3, len(data) + 1)))
    for a, b in zip([0, *cut], [*cut, len(data)], strict=True):
        events += p.feed(data[a:b])
    envs = [e for e in events if isinstance(e, EnvironmentReceived)]
    if expected is None:
        assert envs == [] and not p.environment_done
        return
    values, junk, dups, rest = expected
    [env] = envs
    assert dict(env.env.values) == values and list(env.env.values) == list(values)
    assert (env.env.junk_lines, env.env.duplicate_keys) == (junk, dups)
    # What followed the blank line is read as lines after it: none is asked for, so each one
    # is junk or a hang-up notice.
    after = [e for e in events if not isinstance(e, EnvironmentReceived)]
    assert len(after) == rest.count(b"\n")
