"""The `harassment` AGI script: the agent pressed the harassment-end feature code.

It runs on the agent's channel; the argument is the call id the agent's leg inherited. The
caller's channel is redirected with AMI when connected, else with the ChannelRedirect
application on the agent's channel, so the feature works without AMI too.
"""

from __future__ import annotations

import logging

from ivr.agi.session import AgiSession
from ivr.ami.client import AmiClient, AmiError
from ivr.calls.ending import CallEnder, EndRequest
from ivr.core.review import SYSTEM_ACTOR, Actor, ReviewError
from ivr.handlers.hangup import call_id_argument
from ivr.keys import CallTokens
from ivr.names import SAFE_CHANNEL

log = logging.getLogger("ivr.harassment")


class RedirectFailed(Exception):
    """Asterisk did not move the caller's channel."""


class HarassmentHandler:
    def __init__(self, ender: CallEnder, ami: AmiClient | None, tokens: CallTokens) -> None:
        self._ender = ender
        self._ami = ami
        self._tokens = tokens

    async def __call__(self, session: AgiSession) -> None:
        call_id = call_id_argument(session, "harassment feature", self._tokens)
        if call_id is None:
            return

        async def redirect(channel: str, context: str) -> None:
            if not SAFE_CHANNEL.match(channel):
                raise RedirectFailed(f"unusable channel name {channel!r}")
            if self._ami is not None and self._ami.connected:
                try:
                    await self._ami.redirect(channel, context)
                    return
                except AmiError as exc:
                    log.warning("AMI Redirect failed (%s); trying ChannelRedirect", exc)
            await session.exec("ChannelRedirect", f"{channel},{context},s,1")
            status = await session.get_variable("CHANNELREDIRECT_STATUS")
            if status != "SUCCESS":
                raise RedirectFailed(f"ChannelRedirect {channel}: {status or 'no status'}")

        agent = session.env.get("channel")
        by = f"agent {agent}" if SAFE_CHANNEL.match(agent) else "agent"
        try:
            result = await self._ender.end(
                EndRequest(call_id, Actor(SYSTEM_ACTOR), by=by, harassment=True), redirect
            )
        except (ReviewError, RedirectFailed) as exc:
            log.error("harassment end of call %s failed: %s", call_id, exc)
            return
        for w in result.warnings:
            log.warning("harassment end of call %s: %s", call_id, w)
