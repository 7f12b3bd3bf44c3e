"""A fake Asterisk Manager Interface: TCP, CRLF framing, answers as Asterisk 22 does.

The banner, the login response and the events follow the captures in `../shared/asterisk22/`
(`ami-events.raw`): `Asterisk Call Manager/11.0.0`, `Response: Success` with
`Message: Authentication accepted`, then `FullyBooted`. Tests drive it: replay captured events,
drop every connection, stop answering, and read the actions it received.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping

BANNER = b"Asterisk Call Manager/11.0.0\r\n"
EOL = "\r\n"


def frame(fields: Mapping[str, str] | list[tuple[str, str]]) -> bytes:
    items = fields.items() if isinstance(fields, Mapping) else fields
    return ("".join(f"{k}: {v}{EOL}" for k, v in items) + EOL).encode()


def split_messages(raw: bytes) -> list[bytes]:
    """The blank-line separated messages of a captured stream, each with its final CRLF CRLF."""
    return [m + b"\r\n\r\n" for m in raw.split(b"\r\n\r\n") if m.strip()]


class FakeAmi:
    def __init__(self, username: str, secret: str) -> None:
        self.username = username
        self.secret = secret
        self.actions: list[dict[str, str]] = []
        self.answering = True
        self.logins = 0
        # Live channels for CoreShowChannels: dicts with at least Channel, Uniqueid, Linkedid.
        self.channels: list[dict[str, str]] = []
        # Actions (lower case) the user's write classes do not cover: Asterisk answers as for
        # an unauthenticated action.
        self.denied: set[str] = set()
        # Global dialplan variables for Getvar without a channel.
        self.globals: dict[str, str] = {}
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = await asyncio.start_server(self._client, host, port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        await self.drop_all()
        if self._server is not None:
            await self._server.wait_closed()

    async def drop_all(self) -> None:
        """Close every client connection, as an Asterisk restart does."""
        for w in list(self._writers):
            w.close()
            with contextlib.suppress(ConnectionError):
                await w.wait_closed()
        self._writers.clear()

    async def send(self, data: bytes) -> None:
        """Write bytes (events) to every logged-in client."""
        for w in list(self._writers):
            w.write(data)
            with contextlib.suppress(ConnectionError):
                await w.drain()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(BANNER)
        authed = False
        try:
            while True:
                block = await reader.readuntil(b"\r\n\r\n")
                action: dict[str, str] = {}
                for line in block.decode(errors="replace").split(EOL):
                    key, sep, value = line.partition(": ")
                    if sep:
                        action[key] = value
                self.actions.append(action)
                if not self.answering:
                    continue
                reply = self._reply(action, authed)
                writer.write(reply)
                if action.get("Action", "").lower() == "login" and b"accepted" in reply:
                    authed = True
                    self.logins += 1
                    self._writers.add(writer)
                    writer.write(
                        frame(
                            [
                                ("Event", "FullyBooted"),
                                ("Privilege", "system,all"),
                                ("Uptime", "127"),
                                ("LastReload", "0"),
                                ("Status", "Fully Booted"),
                            ]
                        )
                    )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    def _reply(self, action: Mapping[str, str], authed: bool) -> bytes:
        name = action.get("Action", "").lower()
        aid = [("ActionID", action["ActionID"])] if "ActionID" in action else []
        if name == "login":
            if action.get("Username") == self.username and action.get("Secret") == self.secret:
                return frame(
                    [("Response", "Success"), *aid, ("Message", "Authentication accepted")]
                )
            return frame([("Response", "Error"), *aid, ("Message", "Authentication failed")])
        if not authed or name in self.denied:
            return frame([("Response", "Error"), *aid, ("Message", "Permission denied")])
        if name == "ping":
            return frame(
                [
                    ("Response", "Success"),
                    *aid,
                    ("Ping", "Pong"),
                    ("Timestamp", "1795352340.000000"),
                ]
            )
        if name == "redirect":
            if not any(ch.get("Channel") == action.get("Channel") for ch in self.channels):
                return frame(
                    [("Response", "Error"), *aid, ("Message", "Channel specified does not exist")]
                )
            return frame([("Response", "Success"), *aid, ("Message", "Redirect successful")])
        if name == "getvar" and not action.get("Channel"):
            variable = action.get("Variable", "")
            value = self.globals.get(variable, "")
            return frame([("Response", "Success"), *aid, ("Variable", variable), ("Value", value)])
        if name == "coreshowchannels":
            out = frame(
                [
                    ("Response", "Success"),
                    *aid,
                    ("EventList", "start"),
                    ("Message", "Channels will follow"),
                ]
            )
            for ch in self.channels:
                out += frame([("Event", "CoreShowChannel"), *aid, *ch.items()])
            return out + frame(
                [
                    ("Event", "CoreShowChannelsComplete"),
                    *aid,
                    ("EventList", "Complete"),
                    ("ListItems", str(len(self.channels))),
                ]
            )
        return frame(
            [
                ("Response", "Error"),
                *aid,
                (
                    "Message",
                    f"Invalid/unknown command: {action.get('Action', '')}. "
                    "Use Action: ListCommands to show available commands.",
                ),
            ]
        )
