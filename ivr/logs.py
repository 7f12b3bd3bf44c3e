"""Logging: one JSON object per line (or plain text), each carrying the call id it is about."""

from __future__ import annotations

import logging
import sys
import time
from contextvars import ContextVar
from json.encoder import encode_basestring_ascii as _text  # a JSON string, ASCII only
from typing import Literal

from ivr.core.text import escape

# Set by the AGI session (and the handlers once they know the call); asyncio copies it per task.
call_id_var: ContextVar[str | None] = ContextVar("ivr_call_id", default=None)


class CallIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.call_id = call_id_var.get()
        return True


class TextFormatter(logging.Formatter):
    """Plain lines that caller data can never forge: the message is escaped, and the lines of
    a traceback are indented (and escaped), so only a record's first line starts at column 0."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = escape(record.message)
        return super().formatMessage(record)

    def format(self, record: logging.LogRecord) -> str:
        head, _, rest = super().format(record).partition("\n")
        if not rest:
            return head
        return "\n".join([head, *("    " + escape(line) for line in rest.split("\n"))])


class JsonLineFormatter(logging.Formatter):
    """One JSON object per record: time (ISO 8601, local, with offset), level, logger, message,
    call_id, and exc_info / stack_info when present. ASCII only, so caller data can never break
    a line or a terminal.

    Written out rather than taken from python-json-logger: every call logs a line, and this
    costs a quarter of that library's time per record. The object is put together from json's
    own string encoder rather than `json.dumps` of a dict, which took twice as long.
    """

    def __init__(self) -> None:
        super().__init__()
        self._second = -1
        self._stamp = ""

    def _time(self, created: float) -> str:
        second = int(created)
        if second != self._second:  # strftime once a second, not once a record
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S.{}%z", time.localtime(second))
            self._second = second
        return self._stamp.format(f"{int((created - second) * 1000):03d}")

    def format(self, record: logging.LogRecord) -> str:
        call_id = getattr(record, "call_id", None)
        parts = [
            f'{{"time": "{self._time(record.created)}", "level": {_text(record.levelname)}, '
            f'"logger": {_text(record.name)}, "message": {_text(record.getMessage())}, '
            f'"call_id": {"null" if call_id is None else _text(str(call_id))}'
        ]
        if record.exc_info:
            parts.append(f', "exc_info": {_text(self.formatException(record.exc_info))}')
        if record.stack_info:
            parts.append(f', "stack_info": {_text(self.formatStack(record.stack_info))}')
        parts.append("}")
        return "".join(parts)


def formatter(fmt: Literal["json", "text"]) -> logging.Formatter:
    if fmt == "json":
        return JsonLineFormatter()
    return TextFormatter("%(asctime)s %(levelname)s %(name)s [%(call_id)s] %(message)s")


def setup_logging(level: str, fmt: Literal["json", "text"]) -> None:
    """Configure the root logger for `ivr serve` (stderr, so journald or Docker collect it)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(CallIdFilter())
    handler.setFormatter(formatter(fmt))
    # Nothing we log uses the caller's source line, thread or process: skip finding them for
    # every record (`_srcfile = None` is logging's documented switch for the frame walk).
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
