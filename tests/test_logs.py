"""`ivr.logs.Log`: the per-call path's lines written past `logging`, identical to its own."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Any, Literal

import pytest

from ivr.logs import Log, call_id_var, setup_logging

HOSTILE = '\u3042\n\x1b[2J"}{'


class _Records:
    """Counts the `LogRecord`s made, through logging's public record factory."""

    def __init__(self) -> None:
        self.made = 0
        self._factory = logging.getLogRecordFactory()

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        self.made += 1
        return self._factory(*args, **kwargs)


@pytest.fixture
def records() -> Iterator[_Records]:
    counter = _Records()
    logging.setLogRecordFactory(counter)
    yield counter
    logging.setLogRecordFactory(counter._factory)


@pytest.fixture
def root() -> Iterator[logging.Logger]:
    """The root logger and logging's switches put back afterwards (pytest adds handlers)."""
    logger = logging.getLogger()
    saved, level = logger.handlers[:], logger.level
    switches = (logging._srcfile, logging.logThreads, logging.logProcesses)
    multiprocessing = logging.logMultiprocessing
    yield logger
    logger.handlers[:] = saved
    logger.setLevel(level)
    logging._srcfile, logging.logThreads, logging.logProcesses = switches
    logging.logMultiprocessing = multiprocessing


def _install(fmt: Literal["json", "text"] = "json") -> io.StringIO:
    stream = io.StringIO()
    setup_logging("info", fmt, stream)
    return stream


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_direct_line_is_the_line_logging_writes(root: logging.Logger, records: _Records) -> None:
    stream = _install()
    token = call_id_var.set("c-1")
    try:
        Log("ivr.test").info("caller said %s, %d times", HOSTILE, 3)
        assert records.made == 0  # no LogRecord: written directly
        logging.getLogger("ivr.test").info("caller said %s, %d times", HOSTILE, 3)
        assert records.made == 1
    finally:
        call_id_var.reset(token)
    text = stream.getvalue()
    assert text.isascii() and text.count("\n") == 2
    direct, through_logging = _lines(stream)
    assert direct.keys() == through_logging.keys()
    first, second = (
        datetime.strptime(x.pop("time"), "%Y-%m-%dT%H:%M:%S.%f%z")
        for x in (direct, through_logging)
    )
    assert abs((second - first).total_seconds()) < 1
    assert direct == through_logging
    assert direct["message"] == f"caller said {HOSTILE}, 3 times"
    assert direct["call_id"] == "c-1" and direct["level"] == "INFO"


def test_levels_are_respected(root: logging.Logger, records: _Records) -> None:
    stream = _install()
    root.handlers[0].setLevel(logging.ERROR)
    log = Log("ivr.test")
    log.debug("below the logger's level")
    log.warning("below the handler's level")
    log.error("kept %s", "this")
    assert [x["message"] for x in _lines(stream)] == ["kept this"]
    assert [x["level"] for x in _lines(stream)] == ["ERROR"]
    assert records.made == 1  # the warning went through logging, which dropped it at the handler


def test_another_handler_gets_every_record(
    root: logging.Logger, records: _Records, caplog: pytest.LogCaptureFixture
) -> None:
    stream = _install()
    root.addHandler(caplog.handler)  # beside ours
    with caplog.at_level(logging.INFO):
        Log("ivr.test").warning("seen by %s", "both")
    assert [r.getMessage() for r in caplog.records] == ["seen by both"]
    assert [x["message"] for x in _lines(stream)] == ["seen by both"]


def test_text_lines_and_logger_filters_go_through_logging(
    root: logging.Logger, records: _Records
) -> None:
    stream = _install("text")
    Log("ivr.test").info("plain %s", HOSTILE)
    assert records.made == 1
    assert stream.getvalue().endswith(' INFO ivr.test [None] plain \u3042\\n\\x1b[2J"}{\n')

    stream = _install()
    log = Log("ivr.test.filtered")
    secrets = logging.Filter()
    secrets.filter = lambda record: "secret" not in record.getMessage()  # type: ignore[method-assign]
    log.logger.addFilter(secrets)
    try:
        log.info("a %s", "secret")
        log.info("a %s", "line")
    finally:
        log.logger.removeFilter(secrets)
    assert [x["message"] for x in _lines(stream)] == ["a line"]


def test_bad_arguments_are_reported_not_raised(
    root: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    stream = _install()
    Log("ivr.test").info("%d calls", "many")
    Log("ivr.test").info("next %s", "line")
    assert [x["message"] for x in _lines(stream)] == ["next line"]
    assert "--- Logging error ---" in capsys.readouterr().err


def test_exception_carries_the_traceback(root: logging.Logger) -> None:
    stream = _install()
    try:
        1 / 0  # noqa: B018
    except ZeroDivisionError:
        Log("ivr.test").exception("failed %s", "here")
    (line,) = _lines(stream)
    assert line["level"] == "ERROR" and "ZeroDivisionError" in line["exc_info"]
