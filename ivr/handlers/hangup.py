"""The `hangup` AGI script: a routed call's hang-up handler reports its real talk time.

Arguments (dialplan/ivr-guard.conf): our call id, the call's token, Dial's `ANSWEREDTIME`,
`DIALSTATUS`, and the
two marks the talk time is taken from: when the agent's leg was answered (set by Dial's `U()`
routine) and when the caller left the agent (the hang-up, or the redirect out of `Dial`).
`ANSWEREDTIME` counts from the caller's own answer, so the IVR too, and is empty after a
redirect: it is used only when the marks are missing (a dialplan older than the marks).
The channel is already dead: no commands are sent.
"""

from __future__ import annotations

import logging
import re

from ivr.agi.session import AgiSession
from ivr.calls.monitor import CallMonitor
from ivr.clock import Clock
from ivr.core.caps import bridged_seconds, talk_seconds
from ivr.db.calls import TalkReport
from ivr.db.journal import CallJournal
from ivr.keys import CallTokens
from ivr.logs import call_id_var

log = logging.getLogger("ivr.hangup")

CALL_ID = re.compile(r"^[A-Za-z0-9]{1,32}$")
_DIAL_STATUSES = frozenset({"NOANSWER", "BUSY", "CHANUNAVAIL", "CONGESTION", "CANCEL"})


def call_id_argument(session: AgiSession, script: str, tokens: CallTokens) -> str | None:
    """The call id a dialplan script passes first, when the token after it is that call's;
    it tags this session's log lines.

    None (and a warning naming `script`) when either is missing or wrong: whoever can reach the
    FastAGI port without having the call from Asterisk changes nothing."""
    args = session.env.args
    call_id = args[0] if args else ""
    if not CALL_ID.match(call_id):
        log.warning("%s without a valid call id from %s: ignored", script, session.peer)
        return None
    if len(args) < 2 or not tokens.valid(call_id, args[1]):
        log.warning(
            "%s for call %s without its token from %s: ignored", script, call_id, session.peer
        )
        return None
    call_id_var.set(call_id)
    return call_id


class HangupHandler:
    def __init__(
        self, journal: CallJournal, monitor: CallMonitor, clock: Clock, tokens: CallTokens
    ) -> None:
        self._journal = journal
        self._monitor = monitor
        self._clock = clock
        self._tokens = tokens

    async def __call__(self, session: AgiSession) -> None:
        call_id = call_id_argument(session, "hangup handler", self._tokens)
        if call_id is None:
            return
        args = session.env.args[2:]  # after the call id and its token
        status = args[1] if len(args) > 1 else ""
        if len(args) > 3:
            answered = bridged_seconds(args[2], args[3])
        else:
            answered = talk_seconds(args[0]) if args else None
        reason = None
        if answered is None:
            reason = f"dial-{status.lower()}" if status in _DIAL_STATUSES else "not-answered"
        self._monitor.ended(call_id=call_id)
        self._journal.record_talk(
            TalkReport(
                answered or 0.0,
                "hangup-handler",
                self._clock.now(),
                call_id=call_id,
                end_reason=reason,
            )
        )
