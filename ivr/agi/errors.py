"""What an AGI command can end in besides its reply."""

from __future__ import annotations

from ivr.agi.protocol import Reply


class AgiHangup(Exception):
    """The channel is gone: a `HANGUP` line, a 511 reply, or the socket closed."""


class AgiTimeout(Exception):
    """Asterisk did not answer a command before its deadline."""


class AgiDeadline(Exception):
    """The handler's own deadline (`AgiSession.limit`) passed while it waited for a reply.

    The connection stays open: that reply is still owed (`AgiSession.settle`), and the handler
    may then send its last commands.
    """


class AgiCommandError(Exception):
    """Asterisk refused a command (510 unknown command, 520 usage)."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(f"AGI error {reply.code}: {reply.data}")
        self.reply = reply
