"""Calls into the real Asterisk: originated over AMI, driven and observed through AMI events.

A call is `Local/s@test-caller` (;2 sets the caller ID and dials the trunk context, ;1 is the
caller's silent handset). The caller's channel as the site sees it, the one that runs the
guard's dialplan, is `Local/<dialled>@from-trunk-...;2`; the test presses keys by sending DTMF
into its ;1 half. Every event of a call carries its Linkedid, which the test sets.
"""

from __future__ import annotations

import base64
import itertools
from dataclasses import dataclass, field

from tests.support.ami import AmiTestClient, Message
from tests.support.asterisk import RealAsterisk

_ids = itertools.count(1)


def _at(ev: Message) -> float:
    return float(ev["_at"])


@dataclass
class Call:
    ami: AmiTestClient
    linkedid: str
    dialled: str
    channel: str = ""  # the caller's channel that runs the guard's dialplan
    agent: str = ""  # the agent's channel in the bridge (;1 of Local/<route>@test-agents)
    marks: dict[str, float] = field(default_factory=dict)

    def events(self, name: str, **fields: str) -> list[Message]:
        return [e for e in self.ami.where(Event=name, Linkedid=self.linkedid, **fields)]

    async def event(self, name: str, timeout: float = 30.0, **fields: str) -> Message:
        def match(e: Message) -> bool:
            return (
                e.get("Event") == name
                and e.get("Linkedid") == self.linkedid
                and all(e.get(k) == v for k, v in fields.items())
            )

        return await self.ami.wait_for(match, timeout)

    async def ivr_channel(self, timeout: float = 30.0) -> str:
        if not self.channel:
            prefix = f"Local/{self.dialled}@from-trunk-"

            def match(e: Message) -> bool:
                return (
                    e.get("Event") == "Newchannel"
                    and e.get("Linkedid") == self.linkedid
                    and e.get("Channel", "").startswith(prefix)
                    and e.get("Channel", "").endswith(";2")
                )

            self.channel = (await self.ami.wait_for(match, timeout))["Channel"]
        return self.channel

    async def agi_command(self, prefix: str, timeout: float = 30.0) -> Message:
        """Wait until the guard sends a command starting with `prefix` on the caller's channel."""
        channel = await self.ivr_channel(timeout)

        def match(e: Message) -> bool:
            return (
                e.get("Event") == "AGIExecStart"
                and e.get("Channel") == channel
                and e.get("Command", "").startswith(prefix)
            )

        return await self.ami.wait_for(match, timeout)

    async def press(self, digits: str) -> None:
        """The caller presses keys: DTMF into the caller's channel, from its far (;1) half."""
        await self._dtmf((await self.ivr_channel()).removesuffix(";2") + ";1", digits)

    async def agent_presses(self, digits: str) -> None:
        """The agent presses keys: DTMF into the agent's bridged channel from its phone's side."""
        await self._dtmf(self.agent.removesuffix(";1") + ";2", digits)

    async def _dtmf(self, channel: str, digits: str) -> None:
        for d in digits:
            fields = {"Channel": channel, "Digit": d, "Duration": "200"}
            reply = await self.ami.action("PlayDTMF", fields)
            assert reply.get("Response") == "Success", reply

    async def bridged(self, timeout: float = 40.0) -> None:
        """Wait until the caller's channel is bridged with an agent; mark when."""
        channel = await self.ivr_channel(timeout)
        ev = await self.event("BridgeEnter", timeout, Channel=channel)
        self.marks["bridged"] = _at(ev)
        other = await self.ami.wait_for(
            lambda e: (
                e.get("Event") == "BridgeEnter"
                and e.get("BridgeUniqueid") == ev["BridgeUniqueid"]
                and e.get("Channel") != channel
            ),
            timeout,
        )
        self.agent = other["Channel"]

    async def left_bridge(self, timeout: float = 40.0) -> float:
        ev = await self.event("BridgeLeave", timeout, Channel=self.channel)
        self.marks["left"] = _at(ev)
        return self.marks["left"] - self.marks["bridged"]

    async def hangup(self, channel: str | None = None) -> None:
        """Hang up a channel of this call (the caller's by default)."""
        await self.ami.action("Hangup", {"Channel": channel or self.channel})

    async def ended(self, timeout: float = 40.0) -> Message:
        return await self.event("Hangup", timeout, Channel=await self.ivr_channel())


class Calls:
    def __init__(self, asterisk: RealAsterisk, ami: AmiTestClient) -> None:
        self.asterisk = asterisk
        self.ami = ami

    async def place(
        self,
        number: str,
        *,
        name: str | bytes = "",
        presentation: str = "",
        dialled: str = "0120123456",
    ) -> Call:
        """Originate a call from `number` (raw, as a carrier sends it) to `dialled`."""
        linkedid = f"test-{next(_ids)}"
        raw_name = name.encode() if isinstance(name, str) else name
        variables = [f"TEST_NUM={number}", f"TEST_DIALLED={dialled}"]
        if raw_name:
            variables.append(f"TEST_B64={base64.b64encode(raw_name).decode()}")
        if presentation:
            variables.append(f"TEST_PRES={presentation}")
        reply = await self.ami.action(
            "Originate",
            {
                "Channel": "Local/s@test-caller/n",
                "Context": "test-phone",
                "Exten": "s",
                "Priority": "1",
                "Async": "true",
                "ChannelId": linkedid,
                "OtherChannelId": f"{linkedid}-2",
                "Variable": ",".join(variables),
            },
        )
        assert reply.get("Response") == "Success", reply
        return Call(self.ami, linkedid, dialled)

    async def routed(self, number: str = "0312345678") -> Call:
        """A call from `number` that presses 1 at the menu and is bridged with an agent."""
        call = await self.place(number)
        await call.agi_command("GET DATA")
        await call.press("1")
        await call.bridged()
        return call
