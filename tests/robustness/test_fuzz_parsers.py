"""Property-based fuzzing of the AGI and AMI parsers: no unexpected exception, bounded time.

Each example has Hypothesis's 500 ms deadline (see conftest.py); inputs reach the limits the
service enforces (32 KiB environment, 16 KiB reply line).
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from panoramisk.message import Message

from ivr.agi.protocol import (
    MAX_COMMAND_BYTES,
    MAX_USAGE_LINES,
    AgiParser,
    AgiProtocolError,
    EnvironmentReceived,
    HangupReceived,
    JunkLine,
    ReplyReceived,
    format_command,
    parse_args,
    parse_reply_line,
    quote,
)
from ivr.ami.client import MAX_PENDING_BYTES, AmiManager, AmiProtocol

ENV_KEYS = st.sampled_from(
    ["agi_network", "agi_callerid", "agi_calleridname", "agi_arg_1", "agi_arg_2", "agi_x"]
)
LINE = st.one_of(
    st.builds(lambda k, v: f"{k}: {v}", ENV_KEYS, st.text(max_size=60)),
    st.sampled_from(
        [
            "",
            "HANGUP",
            "200 result=0",
            "200 result=1 (x)",
            "200 result=-1 endpos=12",
            "520-Invalid command syntax.  Proper usage follows:",
            "520 End of proper usage.",
            "510 Invalid or unknown command",
            "200 result= (timeout)",
            "\r",
        ]
    ),
    st.text(max_size=80),
)
STREAM = st.one_of(
    st.lists(LINE, max_size=40).map(lambda ls: "\n".join(ls).encode("utf-8", "surrogatepass")),
    st.binary(max_size=4000),
)


def chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


@given(STREAM, st.lists(st.integers(min_value=0), max_size=8))
def test_environment_parser_never_raises_anything_else(data: bytes, cuts: list[int]) -> None:
    parser = AgiParser(max_env_bytes=2048, max_line_bytes=512)
    try:
        for piece in chunks(data, cuts):
            for event in parser.feed(piece):
                if isinstance(event, EnvironmentReceived):
                    for key, value in event.env.values.items():
                        assert key.startswith("agi_") and "\n" not in value
                    assert isinstance(event.env.script, str) and isinstance(event.env.args, tuple)
                    _ = event.env.tainted
                else:
                    # Nothing but the environment is read before a command goes out.
                    assert isinstance(event, (HangupReceived, JunkLine))
    except AgiProtocolError:
        pass


@given(STREAM, st.lists(st.integers(min_value=0), max_size=8))
def test_reply_parser_pairs_at_most_one_reply_per_command(data: bytes, cuts: list[int]) -> None:
    parser = AgiParser(max_env_bytes=2048, max_line_bytes=512)
    assert parser.feed(b"agi_network: yes\n\n")
    commands = replies = 0
    try:
        for piece in chunks(data, cuts):
            if replies == commands:
                parser.command_sent()
                commands += 1
            for event in parser.feed(piece):
                if isinstance(event, ReplyReceived):
                    replies += 1
                    assert 100 <= event.reply.code <= 999
                    assert replies <= commands
                else:
                    assert isinstance(event, (HangupReceived, JunkLine))
    except AgiProtocolError:
        pass


def test_a_usage_block_that_never_ends_is_a_protocol_error() -> None:
    parser = AgiParser()
    parser.feed(b"agi_network: yes\n\n")
    parser.command_sent()
    assert parser.feed(b"520-Invalid command syntax.  Proper usage follows:\n") == []
    with pytest.raises(AgiProtocolError, match="usage block"):
        parser.feed(b"Usage: more\n" * MAX_USAGE_LINES)


@given(st.text(max_size=300))
def test_reply_line_parses_or_is_a_protocol_error(line: str) -> None:
    try:
        reply = parse_reply_line(line)
    except AgiProtocolError:
        return
    assert reply.lines == (line,)
    if reply.code == 200:
        _ = reply.result_int


ARG = st.text(st.characters(blacklist_characters="\r\n\0", codec="utf-8"), max_size=200)


@given(ARG)
def test_quote_round_trips_through_asterisks_argument_splitter(value: str) -> None:
    assert parse_args(quote(value)) == [value]


@given(st.lists(ARG, min_size=1, max_size=4))
def test_a_formatted_command_is_one_line_with_exactly_its_arguments(args: list[str]) -> None:
    try:
        data = format_command("SET VARIABLE", *args)
    except ValueError:
        assert sum(len(quote(a).encode()) + 1 for a in args) + 13 > MAX_COMMAND_BYTES
        return
    assert data.count(b"\n") == 1 and data.endswith(b"\n")
    assert parse_args(data.decode().rstrip("\n")) == ["SET", "VARIABLE", *args]


@given(st.text(max_size=400))
def test_argument_splitter_takes_any_line(line: str) -> None:
    assert all(isinstance(a, str) for a in parse_args(line))


# AMI ---------------------------------------------------------------------------------------
class _Transport(asyncio.Transport):
    """Where the protocol's writes go: nowhere. The parser under test only reads."""

    aborted = False

    def write(self, data: Any) -> None:
        pass

    def abort(self) -> None:
        self.aborted = True

    def close(self) -> None:
        pass

    def is_closing(self) -> bool:
        return False


AMI_LINE = st.one_of(
    st.builds(
        lambda k, v: f"{k}: {v}",
        st.sampled_from(["Event", "Response", "ActionID", "Uniqueid", "Cause", "Message", "x"]),
        st.text(max_size=40),
    ),
    st.sampled_from(["", "Asterisk Call Manager/11.0.0", "Response: Follows", "--END COMMAND--"]),
    st.text(max_size=60),
)
AMI_STREAM = st.one_of(
    st.lists(AMI_LINE, max_size=40).map(lambda ls: "\r\n".join(ls).encode("utf-8", "replace")),
    st.binary(max_size=4000),
)


@given(AMI_STREAM, st.lists(st.integers(min_value=0), max_size=8))
def test_ami_stream_parser_never_raises(data: bytes, cuts: list[int]) -> None:
    """Bytes from the AMI socket through the client's protocol and manager to its handlers."""
    events = feed_ami(chunks(data, cuts))
    for event in events:
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in event.items())


def feed_ami(pieces: list[bytes], transport: _Transport | None = None) -> list[Message]:
    async def run() -> list[Message]:
        events: list[Message] = []
        manager = AmiManager(lambda _exc: None, loop=asyncio.get_running_loop())
        manager.register_event("*", lambda _m, ev: events.append(ev))
        protocol = AmiProtocol()
        protocol.connection_made(transport or _Transport())
        protocol.factory = manager  # what Manager.connection_made does
        for piece in pieces:
            protocol.data_received(piece)
        return events

    return asyncio.run(run())


def test_repeated_headers_arrive_as_one_string() -> None:
    raw = b"Event: Hangup\r\nUniqueid: 1.1\r\nUniqueid: 2.2\r\nCause: 16\r\nCause: x\r\n\r\n"
    [event] = feed_ami([raw])
    assert (event["Uniqueid"], event["Cause"]) == ("1.1", "16")


def test_a_message_that_never_ends_is_cut_off() -> None:
    transport = _Transport()
    chunk = b"Event: X\r\nData: " + b"y" * 8192
    assert feed_ami([chunk] * (MAX_PENDING_BYTES // 8192 + 2), transport) == []
    assert transport.aborted
