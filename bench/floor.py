"""The protocol floor: a FastAGI server that sends a routed call's seven commands and decides
nothing, on the same event loop and the same sockets as `ivr serve`.

`make bench` drives it with the same load generator. Its CPU per call is what the kernel's
loopback TCP and uvloop cost before any of our code runs, so the gap between it and
`ivr serve` is what our own code costs. Run as `python -m bench.floor PORT`.
"""

from __future__ import annotations

import asyncio
import sys

import uvloop

# A routed call's commands, as `ivr serve` sends them to a first-time caller who presses 1.
COMMANDS = (
    b"ANSWER\n",
    b'EXEC MixMonitor "/var/spool/asterisk/ivr-guard/0123456789abcdef0123456789abcdef.wav"\n',
    b'STREAM FILE "ivr-guard/ja/recording-notice" ""\n',
    b'STREAM FILE "ivr-guard/ja/harassment-policy" ""\n',
    b'GET DATA "ivr-guard/ja/menu" 5000 1\n',
    b'STREAM FILE "ivr-guard/ja/transferring" ""\n',
    b'EXEC MSet "IVR_CALL_ID=0123456789abcdef0123456789abcdef,IVR_RECORDING=/var/spool/asterisk/'
    b"ivr-guard/0123456789abcdef0123456789abcdef.wav,IVR_LIMIT_MS=1800000,IVR_WARNING_MS=1740000,"
    b"IVR_SOUNDS=ivr-guard/ja,IVR_ROUTE=sales,IVR_DIAL=PJSIP/sales,IVR_DIAL_TIMEOUT=30,"
    b'IVR_REASON=menu,IVR_DECISION=route"\n',
)


class FloorCall(asyncio.Protocol):
    """Waits for the environment's blank line, then one command per reply line."""

    def __init__(self) -> None:
        self._buf = b""
        self._next = -1  # -1: still in the environment
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # uvloop's are not subclasses

    def data_received(self, data: bytes) -> None:
        self._buf += data
        assert self._transport is not None
        if self._next < 0:
            end = self._buf.find(b"\n\n")
            if end < 0:
                return
            self._buf = self._buf[end + 2 :]
            self._next = 0
            self._transport.write(COMMANDS[0])
            return
        while b"\n" in self._buf:
            _, self._buf = self._buf.split(b"\n", 1)
            self._next += 1
            if self._next == len(COMMANDS):
                self._transport.close()
                return
            self._transport.write(COMMANDS[self._next])


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(FloorCall, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    uvloop.run(serve(int(sys.argv[1])))
