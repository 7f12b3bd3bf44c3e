"""Logging: one JSON object per line (or plain text), each carrying the call id it is about."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Mapping
from contextvars import ContextVar
from json.encoder import encode_basestring_ascii as _text  # a JSON string, ASCII only
from typing import Literal, TextIO

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
        return self.line(
            record.created,
            record.levelname,
            record.name,
            record.getMessage(),
            None if call_id is None else str(call_id),
            self.formatException(record.exc_info) if record.exc_info else None,
            self.formatStack(record.stack_info) if record.stack_info else None,
        )

    def line(
        self,
        created: float,
        levelname: str,
        name: str,
        message: str,
        call_id: str | None,
        exc_text: str | None = None,
        stack_text: str | None = None,
    ) -> str:
        """The line for one record, from its parts (also written by `Log` without a record)."""
        parts = [
            f'{{"time": "{self._time(created)}", "level": {_text(levelname)}, '
            f'"logger": {_text(name)}, "message": {_text(message)}, '
            f'"call_id": {"null" if call_id is None else _text(call_id)}'
        ]
        if exc_text is not None:
            parts.append(f', "exc_info": {_text(exc_text)}')
        if stack_text is not None:
            parts.append(f', "stack_info": {_text(stack_text)}')
        parts.append("}")
        return "".join(parts)


# The handler `setup_logging` installed, which `Log` writes into directly.
_ours: list[logging.StreamHandler[TextIO]] = []


_LEVEL_NAMES = {
    level: logging.getLevelName(level)
    for level in (logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR)
}


class Log:
    """A logger for the per-call path: `logging.Logger`'s methods, and the same lines.

    When a record would reach nothing but our own JSON handler (as under `ivr serve`), the line
    is formatted and written here, without a `LogRecord` and the handler chain (14,000 fewer
    instructions a call, of a million). Anything else (another handler, as pytest's, a filter,
    text lines, an error) goes through `logging`.
    """

    def __init__(self, name: str) -> None:
        self.logger = logging.getLogger(name)

    def debug(self, msg: str, *args: object) -> None:
        self._log(logging.DEBUG, msg, args)

    def info(self, msg: str, *args: object) -> None:
        self._log(logging.INFO, msg, args)

    def warning(self, msg: str, *args: object) -> None:
        self._log(logging.WARNING, msg, args)

    def error(self, msg: str, *args: object) -> None:
        self._log(logging.ERROR, msg, args)

    def exception(self, msg: str, *args: object) -> None:
        self.logger.exception(msg, *args)

    def _log(self, level: int, msg: str, args: tuple[object, ...]) -> None:
        logger = self.logger
        if not logger.isEnabledFor(level):
            return
        handler = _only_handler(logger, level)
        if handler is not None:
            fmt = handler.formatter
            if isinstance(fmt, JsonLineFormatter) and not (args and _mapping(args[0])):
                try:
                    line = fmt.line(
                        time.time(),
                        _LEVEL_NAMES[level],
                        logger.name,
                        msg % args if args else msg,
                        call_id_var.get(),
                    )
                    with handler.lock:  # type: ignore[union-attr]  # made by Handler.__init__
                        handler.stream.write(line + handler.terminator)
                        handler.stream.flush()
                    return
                except Exception:  # noqa: S110 - logging reports it, as for any record
                    pass
        logger.log(level, msg, *args)


def _mapping(arg: object) -> bool:
    """Whether logging would take `arg` as a mapping of named arguments (an ABC check, which
    is slow, only for what is not a plain value)."""
    return not isinstance(arg, (str, int, float)) and isinstance(arg, Mapping)


def _only_handler(logger: logging.Logger, level: int) -> logging.StreamHandler[TextIO] | None:
    """Our handler, when it is all a record from `logger` at `level` would pass through."""
    if logger.filters or logger.disabled:
        return None
    while logger.parent is not None:  # loggers below the root: no handlers of their own
        if logger.handlers or not logger.propagate:
            return None
        logger = logger.parent
    handlers = logger.handlers
    if len(handlers) != 1:
        return None
    handler = handlers[0]
    if not _ours or handler is not _ours[0] or level < handler.level:
        return None
    for f in handler.filters:
        if type(f) is not CallIdFilter:
            return None
    return _ours[0]


def formatter(fmt: Literal["json", "text"]) -> logging.Formatter:
    if fmt == "json":
        return JsonLineFormatter()
    return TextFormatter("%(asctime)s %(levelname)s %(name)s [%(call_id)s] %(message)s")


def setup_logging(level: str, fmt: Literal["json", "text"], stream: TextIO | None = None) -> None:
    """Configure the root logger for `ivr serve` (stderr, so journald or Docker collect it)."""
    handler = logging.StreamHandler(sys.stderr if stream is None else stream)
    handler.addFilter(CallIdFilter())
    handler.setFormatter(formatter(fmt))
    # Nothing we log uses the caller's source line, thread or process: skip finding them for
    # every record (`_srcfile = None` is logging's documented switch for the frame walk).
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    _ours[:] = [handler]
