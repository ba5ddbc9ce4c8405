"""The terminal display's pieces: number formats, the summary, and log lines without our tracebacks."""

from __future__ import annotations

import io
import logging

from rich.console import Console

from prefect_synthdata.exceptions import ConfigurationError
from prefect_synthdata.terminal import (
    RunDisplay,
    RunSummary,
    _ShortOwnErrors,
    format_bytes,
    format_duration,
    format_number,
)


def test_formats() -> None:
    assert format_number(2147483647.0) == "2147483647"
    assert format_number(0.25) == "0.25"
    assert [format_bytes(n) for n in (512, 1536, 5 * 1024**3)] == ["512 B", "1.5 KiB", "5.0 GiB"]
    assert [format_duration(s) for s in (0.42, 59.96, 125)] == ["0.4 s", "60.0 s", "2 min 5 s"]


def test_summary_lines() -> None:
    lines = RunSummary("/d/x/v1", 4, 30, ["circle", "star"], 2048, 12.3, 9.0).lines()
    assert lines == [
        "dataset      /d/x/v1",
        "images       4",
        "annotations  30",
        "categories   circle, star",
        "size         2.0 KiB",
        "time         12.3 s (of which Prefect API start-up 9.0 s)",
    ]


def _record(error: Exception) -> logging.LogRecord:
    try:
        raise error
    except Exception:
        import sys

        return logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())


def test_own_errors_lose_their_traceback_on_the_terminal_only() -> None:
    formatter = _ShortOwnErrors(logging.Formatter("%(message)s"))
    own = _record(ConfigurationError("bad"))
    assert formatter.format(own) == "failed"
    assert "Traceback" in logging.Formatter().format(own)  # other handlers keep it
    assert "Traceback" in formatter.format(_record(KeyError("bug")))


class RichHandler(logging.Handler):
    """A handler that prints through a rich console, as Prefect's console handler does."""

    def __init__(self, console: Console) -> None:
        super().__init__()
        self.console = console

    def emit(self, record: logging.LogRecord) -> None:
        self.console.print(self.format(record))


def test_attached_log_handlers_print_through_the_display_and_are_restored() -> None:
    own, shown = io.StringIO(), io.StringIO()
    handler = RichHandler(Console(file=own))
    logger = logging.getLogger("prefect_synthdata.test_terminal")
    logger.addHandler(handler)
    try:
        with RunDisplay(shown) as display:
            display.attach_logs()
            logger.error("during")
        logger.error("after")
    finally:
        logger.removeHandler(handler)
    assert "during" in shown.getvalue() and "during" not in own.getvalue()
    assert "after" in own.getvalue() and "after" not in shown.getvalue()
