"""What a call brings in its AGI environment: the caller, the dialled number, Asterisk's ids.

Caller data is hostile: a caller name with a line break ends the environment early (the
session is then `tainted`), and whatever came after it is asked of Asterisk instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ivr import names
from ivr.agi.errors import AgiCommandError, AgiHangup, AgiTimeout
from ivr.agi.session import AgiSession
from ivr.core.caller import MAX_RAW_KEPT, Caller, CallerClass, classify, normalise
from ivr.core.text import kept
from ivr.logs import Log

log = Log("ivr.inbound")

_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_ASKED = (AgiHangup, AgiTimeout, AgiCommandError)  # after a hang-up the next command ends it


@dataclass(frozen=True)
class Arrival:
    caller: Caller
    caller_name: str
    dialled: str  # normalised when it is a number, else an Asterisk token; at most 32 chars
    uniqueid: str
    linkedid: str
    channel: str | None  # only when it looks like an Asterisk channel name


def safe_token(value: str) -> str:
    """Keep Asterisk-made identifiers only when they look like one; never caller text."""
    return value if _SAFE_ID.match(value) else "invalid"


async def arrival(session: AgiSession, region: str) -> Arrival:
    env = session.env
    caller = await _caller(session, region)
    dialled, linked = await _arguments(session)
    uniqueid = safe_token(env.get("uniqueid"))
    channel = env.get("channel")
    return Arrival(
        caller=caller,
        caller_name=kept(env.get("calleridname"), MAX_RAW_KEPT),
        dialled=_dialled(session, dialled, region)[:32],
        uniqueid=uniqueid,
        linkedid=safe_token(linked) if linked else uniqueid,
        channel=channel if names.SAFE_CHANNEL.match(channel) else None,
    )


async def _caller(session: AgiSession, region: str) -> Caller:
    raw = session.env.get("callerid")
    if not session.tainted:
        return classify(raw, session.env.get("callingpres"), region)
    # agi_callerid comes before every other caller-set field and the parser keeps a key's
    # first value, so the number is the caller's own (cut at a break, if the break was in it):
    # the blocklist still applies. The presentation came after the break, so it is asked of
    # Asterisk once forged reply lines are skipped.
    log.warning("tainted AGI environment from %s: presentation re-read", session.peer)
    try:
        await session.resync()
        pres = await session.get_variable("CALLERID(num-pres)")
    except _ASKED:
        pres = None  # unknown: unavailable
    if pres is None:
        return Caller(CallerClass.UNAVAILABLE, None, kept(raw, MAX_RAW_KEPT))
    return classify(raw, pres, region)


async def _arguments(session: AgiSession) -> tuple[str, str]:
    """The script's arguments: the dialled number and the call's linkedid (asked of Asterisk
    when the environment ended before them; empty when it does not answer)."""
    args = session.env.args
    if not session.tainted:
        return (args[0] if args else ""), (args[1] if len(args) > 1 else "")
    values = []
    for var in (names.VAR_DIALLED, "CHANNEL(linkedid)"):
        try:
            values.append(await session.get_variable(var) or "")
        except _ASKED:
            values.append("")
    return values[0], values[1]


def _dialled(session: AgiSession, argument: str, region: str) -> str:
    env = session.env
    for c in (argument, env.get("dnid"), env.get("extension")):
        if c and c not in ("unknown", "s"):
            return normalise(c, region) or safe_token(c)
    return ""
