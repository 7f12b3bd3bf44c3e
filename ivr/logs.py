"""Logging: one JSON object per line (or plain text), each carrying the call id it is about."""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar
from typing import Literal

from pythonjsonlogger.json import JsonFormatter

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


def formatter(fmt: Literal["json", "text"]) -> logging.Formatter:
    if fmt == "json":
        return JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s %(call_id)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            json_ensure_ascii=True,  # caller data can never break a line or a terminal
        )
    return TextFormatter("%(asctime)s %(levelname)s %(name)s [%(call_id)s] %(message)s")


def setup_logging(level: str, fmt: Literal["json", "text"]) -> None:
    """Configure the root logger for `ivr serve` (stderr, so journald or Docker collect it)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(CallIdFilter())
    handler.setFormatter(formatter(fmt))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
