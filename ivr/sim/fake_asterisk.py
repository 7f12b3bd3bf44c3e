"""A fake Asterisk 22 channel: connects to a FastAGI server and answers like the real one.

Every reply format here is taken from the captured transcripts in shared/asterisk22/; the test
`test_transcripts.py` replays them to keep it that way. The caller is scripted: digits to press
at each menu, and where to hang up.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from ivr.sim.agi_commands import app_args, split_command, usage

DEAD_ALLOWED = frozenset(
    {
        "SET VARIABLE",
        "GET VARIABLE",
        "GET FULL VARIABLE",
        "VERBOSE",
        "EXEC",
        "HANGUP",
        "NOOP",
        "DATABASE GET",
        "DATABASE PUT",
        "DATABASE DEL",
        "DATABASE DELTREE",
        "ASYNCAGI BREAK",
    }
)
KNOWN_APPS = frozenset(
    {
        "MixMonitor",
        "StopMixMonitor",
        "Playback",
        "Wait",
        "Set",
        "MSet",
        "NoOp",
        "Dial",
        "ChannelRedirect",
    }
)
HANGUP_511 = "511 Command Not Permitted on a dead channel or intercept routine"
ENDPOS_FULL = 83203  # what the captured notice played to
ENDPOS_CUT = 28000  # where the captured caller hung up


@dataclass
class Channel:
    """The channel as the environment block describes it."""

    callerid: str = "0312345678"
    calleridname: str = "Taro"
    callingpres: int = 0
    script: str = "inbound"
    args: tuple[str, ...] = ()
    uniqueid: str = "1795352271.5"
    channel: str = "Local/s@ivr-in-00000002;2"
    language: str = "en"
    dnid: str = "unknown"
    context: str = "ivr-in"
    extension: str = "s"
    threadid: str = "140442901984960"

    def env_block(self, host: str, port: int) -> bytes:
        """The block exactly as Asterisk 22 writes it (key order and spacing included)."""
        lines = [
            ("agi_network", "yes"),
            ("agi_network_script", self.script),
            ("agi_request", f"agi://{host}:{port}/{self.script}"),
            ("agi_channel", self.channel),
            ("agi_language", self.language),
            ("agi_type", self.channel.split("/", 1)[0]),
            ("agi_uniqueid", self.uniqueid),
            ("agi_version", "22.11.0-rc1"),
            ("agi_callerid", self.callerid),
            ("agi_calleridname", self.calleridname),
            ("agi_callingpres", str(self.callingpres)),
            ("agi_callingani2", "0"),
            ("agi_callington", "0"),
            ("agi_callingtns", "0"),
            ("agi_dnid", self.dnid),
            ("agi_rdnis", "unknown"),
            ("agi_context", self.context),
            ("agi_extension", self.extension),
            ("agi_priority", "2"),
            ("agi_enhanced", "0.0"),
            ("agi_accountcode", ""),
            ("agi_threadid", self.threadid),
        ]
        lines += [(f"agi_arg_{i}", a) for i, a in enumerate(self.args, 1)]
        text = "".join(f"{k}: {v}\n" for k, v in lines) + "\n"
        return text.encode("utf-8", errors="surrogateescape")

    def variables(self) -> dict[str, str]:
        pres = {0: "allowed_not_screened", 35: "prohib", 67: "unavailable"}.get(
            self.callingpres, "allowed_not_screened"
        )
        values = {
            "CALLERID(num)": self.callerid,
            "CALLERID(name)": self.calleridname,
            "CALLERID(pres)": pres,
            "CALLERID(num-pres)": pres,
            # What the shipped dialplan passes as the inbound script's arguments, also readable
            # as the channel variable it set and Asterisk's own linkedid.
            "CHANNEL(linkedid)": self.args[1] if len(self.args) > 1 else self.uniqueid,
        }
        if self.args:
            values["IVR_DIALLED"] = self.args[0]
        return values


HangupRule = Callable[[str, tuple[str, ...]], bool]


def hang_up_during(fragment: str) -> HangupRule:
    """Hang up while a prompt whose file name contains `fragment` plays."""
    return lambda verb, args: (
        verb in ("STREAM FILE", "GET DATA") and bool(args) and fragment in args[0]
    )


@dataclass
class CallerScript:
    """What the person on the line does."""

    digits: list[str | None] = field(default_factory=list)  # per GET DATA: pressed, or None
    hangup_when: HangupRule | None = None  # hang up while this command runs
    hangup_after_commands: int | None = None  # hang up silently after N commands
    disconnect_after_commands: int | None = None  # drop the socket (EOF) after N commands
    stall_after_env: float = 0.0  # seconds to wait before reading the first command


@dataclass
class CallRecord:
    """Everything the fake saw: commands as sent, replies, variables, files played."""

    commands: list[str] = field(default_factory=list)
    raw: bytearray = field(default_factory=bytearray)  # every byte the server sent, as sent
    replies: list[list[str]] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)
    played: list[str] = field(default_factory=list)
    mixmonitor: list[str] = field(default_factory=list)
    redirected: list[str] = field(default_factory=list)  # ChannelRedirect arguments
    hung_up: bool = False
    closed_by_server: bool = False


class FakeAsterisk:
    """Drives one AGI session per `call()` over real TCP."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        sounds: Mapping[str, int] | Iterable[str] | None = None,
        audio_delay: float = 0.0,
    ) -> None:
        self.host = host
        self.port = port
        # File name -> length in samples (the endpos of a full play); None: every file exists.
        self._sounds: dict[str, int] | None = None
        if isinstance(sounds, Mapping):
            self._sounds = dict(sounds)
        elif sounds is not None:
            self._sounds = dict.fromkeys(sounds, ENDPOS_FULL)
        self.audio_delay = audio_delay
        # Channels that exist besides this one, for ChannelRedirect; None: any name exists.
        self.live_channels: set[str] | None = None
        self.apps = KNOWN_APPS  # applications EXEC finds; others answer `200 result=-2`

    def sound_exists(self, name: str) -> bool:
        return self._sounds is None or name in self._sounds

    def sound_length(self, name: str) -> int:
        return ENDPOS_FULL if self._sounds is None else self._sounds.get(name, 0)

    async def call(
        self,
        channel: Channel,
        script: CallerScript | None = None,
        *,
        timeout: float = 30.0,
        raw_env: bytes | None = None,
    ) -> CallRecord:
        """Place one call and return what happened once the server closes the session."""
        return await asyncio.wait_for(
            self._call(channel, script or CallerScript(), raw_env), timeout
        )

    async def _call(
        self, channel: Channel, script: CallerScript, raw_env: bytes | None
    ) -> CallRecord:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        rec = CallRecord()
        state = ChannelState(channel.variables(), list(script.digits))
        try:
            writer.write(
                raw_env if raw_env is not None else channel.env_block(self.host, self.port)
            )
            await writer.drain()
            if script.stall_after_env:
                await asyncio.sleep(script.stall_after_env)
            while True:
                line = await reader.readline()
                if not line:
                    rec.closed_by_server = True
                    break
                rec.raw += line
                text = line.decode("utf-8", errors="replace").rstrip("\n")
                if (
                    script.disconnect_after_commands is not None
                    and len(rec.commands) >= script.disconnect_after_commands
                ):
                    rec.hung_up = True
                    break
                rec.commands.append(text)
                if (
                    script.hangup_after_commands is not None
                    and len(rec.commands) > script.hangup_after_commands
                ):
                    state.dead = True
                    rec.hung_up = True
                replies = await self._answer(text, state, script, rec)
                rec.replies.append(replies)
                writer.write("".join(r + "\n" for r in replies).encode())
                await writer.drain()
                if state.dead and state.close_after_reply:
                    break
        except (ConnectionError, asyncio.IncompleteReadError):
            rec.closed_by_server = True
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except (ConnectionError, OSError):
                pass
        rec.variables = {k: v for k, v in state.vars.items() if not k.startswith("CALLERID(")}
        return rec

    async def _answer(
        self, text: str, st: ChannelState, script: CallerScript, rec: CallRecord
    ) -> list[str]:
        if self.audio_delay and split_command(text)[0] in ("STREAM FILE", "GET DATA", "ANSWER"):
            await asyncio.sleep(self.audio_delay)
        return self.respond(text, st, script, rec)

    def respond(
        self, text: str, st: ChannelState, script: CallerScript, rec: CallRecord
    ) -> list[str]:
        """The reply lines to one command line, with no audio time (sans-I/O)."""
        verb, args = split_command(text)
        if verb is None:
            return ["510 Invalid or unknown command"]
        prefix: list[str] = []
        if st.dead:
            if not st.hangup_sent:
                st.hangup_sent = True
                prefix = ["HANGUP"]
            if verb not in DEAD_ALLOWED:
                return [*prefix, HANGUP_511]
        hang_now = script.hangup_when is not None and not st.dead and script.hangup_when(verb, args)
        return prefix + self._reply(verb, args, st, rec, hang_now)

    def _reply(
        self, verb: str, args: tuple[str, ...], st: ChannelState, rec: CallRecord, hang_now: bool
    ) -> list[str]:
        if verb == "ANSWER":
            return ["200 result=0"]
        if verb == "HANGUP":
            st.dead = True
            st.close_after_reply = False
            return ["200 result=1"]
        if verb == "SET VARIABLE":
            if len(args) != 2:
                return usage("SET VARIABLE <variablename> <value>")
            st.vars[args[0]] = args[1]
            return ["200 result=1"]
        if verb == "GET VARIABLE":
            if len(args) != 1:
                return usage("GET VARIABLE <variablename>")
            value = st.vars.get(args[0])
            return ["200 result=0"] if value is None else [f"200 result=1 ({value})"]
        if verb == "GET FULL VARIABLE":
            expr = args[0] if args else ""
            value = re.sub(r"\$\{([^}]*)\}", lambda m: st.vars.get(m.group(1), ""), expr)
            return [f"200 result=1 ({value})"]
        if verb == "VERBOSE":
            return ["200 result=1"]
        if verb == "NOOP":
            return ["200 result=0"]
        if verb == "EXEC":
            app = args[0] if args else ""
            if app == "MixMonitor":
                rec.mixmonitor.append(args[1] if len(args) > 1 else "")
            if app in ("Set", "MSet") and app in self.apps:
                data = args[1] if len(args) > 1 else ""
                # Set takes its data whole; MSet splits it and drops quotes and escapes.
                for pair in app_args(data) if app == "MSet" else [data]:
                    name, eq, value = pair.partition("=")
                    if eq:  # an entry with no '=' is ignored
                        st.vars[name] = value
            if app == "ChannelRedirect":
                # ChannelRedirect(channel,context,exten,priority) sets CHANNELREDIRECT_STATUS.
                target = (args[1] if len(args) > 1 else "").split(",", 1)[0]
                ok = self.live_channels is None or target in self.live_channels
                st.vars["CHANNELREDIRECT_STATUS"] = "SUCCESS" if ok else "NOCHANNEL"
                if ok:
                    rec.redirected.append(args[1])
            return ["200 result=0"] if app in self.apps else ["200 result=-2"]
        if verb == "STREAM FILE":
            if len(args) < 2:
                return usage("STREAM FILE <filename> <escape_digits> [<sample offset>]")
            rec.played.append(args[0])
            if not self.sound_exists(args[0]):
                return ["200 result=-1 endpos=0"]
            if hang_now:
                st.dead = True
                rec.hung_up = True
                return [f"200 result=-1 endpos={ENDPOS_CUT}"]
            return [f"200 result=0 endpos={self.sound_length(args[0])}"]
        if verb == "GET DATA":
            if len(args) < 1:
                return usage("GET DATA <file to be streamed> [<timeout>] [<maxdigits>]")
            rec.played.append(args[0])
            if hang_now:
                st.dead = True
                rec.hung_up = True
                return ["200 result=-1"]
            pressed = st.digits.pop(0) if st.digits else None
            return ["200 result= (timeout)"] if pressed is None else [f"200 result={pressed}"]
        if verb == "WAIT FOR DIGIT":
            pressed = st.digits.pop(0) if st.digits else None
            return ["200 result=0"] if not pressed else [f"200 result={ord(pressed[0])}"]
        return ["200 result=0"]


@dataclass
class ChannelState:
    """What the channel holds during a call: variables, digits still to press, liveness."""

    vars: dict[str, str]
    digits: list[str | None]
    dead: bool = False
    hangup_sent: bool = False
    close_after_reply: bool = False
