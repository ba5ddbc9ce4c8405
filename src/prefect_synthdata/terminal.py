"""What `synthdata generate` shows on the terminal: a start-up line, a progress bar that
log lines never overwrite, and a final summary. Knows nothing of Prefect.

Log lines and the bar share one rich `Console`: while the bar is live, every log record
that a handler with a rich console (Prefect's console handler has one) prints goes
above the bar, on its own line. Tracebacks of this package's own errors, which the CLI
reports itself in one line, are left out of the terminal's log lines (a log handler
that keeps the full log, such as Prefect's API handler, still gets them).

Example:
    >>> format_bytes(1536), format_duration(75.2)
    ('1.5 KiB', '1 min 15 s')
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from prefect_synthdata.exceptions import SynthDataError
from prefect_synthdata.models import BatchStatus


def format_bytes(size: float) -> str:
    """A byte count in binary units: `512 B`, `1.5 KiB`, `3.2 MiB`."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def format_duration(seconds: float) -> str:
    """`0.4 s`, `12.3 s`, `2 min 5 s`."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s"


def format_number(value: float) -> str:
    """An integral value as an integer (`2147483647`), others as short decimals (`0.25`)."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


@dataclass(frozen=True)
class RunSummary:
    """What a generate run produced and how long it took."""

    uri: str
    images: int
    annotations: int
    categories: list[str]
    size: int
    seconds: float
    api_seconds: float

    def lines(self) -> list[str]:
        """`label  value` lines, labels aligned."""
        facts = [
            ("dataset", self.uri),
            ("images", str(self.images)),
            ("annotations", str(self.annotations)),
            ("categories", ", ".join(self.categories) or "-"),
            ("size", format_bytes(self.size)),
            (
                "time",
                f"{format_duration(self.seconds)} "
                f"(of which Prefect API start-up {format_duration(self.api_seconds)})",
            ),
        ]
        return [f"{label:<12} {value}" for label, value in facts]


class _ShortOwnErrors(logging.Formatter):
    """Formats with `inner`, leaving out the traceback of this package's own errors."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        error = record.exc_info[1] if record.exc_info else None
        if not isinstance(error, SynthDataError):
            return self.inner.format(record)
        saved = record.exc_info, record.exc_text
        record.exc_info, record.exc_text = None, None
        try:
            return self.inner.format(record)
        finally:
            record.exc_info, record.exc_text = saved


def _console_handlers() -> list[logging.Handler]:
    """Every configured log handler that prints through a rich console."""
    loggers = [logging.getLogger()] + [
        logger
        for logger in logging.root.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    ]
    found: dict[int, logging.Handler] = {}
    for logger in loggers:
        for handler in logger.handlers:
            if isinstance(getattr(handler, "console", None), Console):
                found[id(handler)] = handler
    return list(found.values())


class RunDisplay:
    """The terminal side of one `synthdata generate` run, on `stream` (stderr by default).

    Use it as a context manager: log handlers attached with `attach_logs` get their own
    console and formatter back when it exits.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self.console = Console(file=stream or sys.stderr, highlight=False)
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("jobs finished"),
            TimeElapsedColumn(),
            console=self.console,
        )
        self._task: Any = None
        self._restore: list[tuple[Any, Console, logging.Formatter | None]] = []

    def __enter__(self) -> RunDisplay:
        return self

    def __exit__(self, *exc: object) -> None:
        for handler, console, formatter in self._restore:
            handler.console = console
            handler.setFormatter(formatter)
        self._restore.clear()

    def note(self, text: str) -> None:
        """One line of information."""
        self.console.print(text, markup=False, highlight=False, soft_wrap=True)

    @contextlib.contextmanager
    def waiting(self, text: str) -> Iterator[Callable[[str], None]]:
        """A spinner with `text` while the block runs; yields a function that changes the
        text. Not on a terminal, each text is printed once, as a line."""
        if not self.console.is_terminal:
            self.note(text)
            yield self.note
            return
        with self.console.status(text) as status:
            yield lambda new: status.update(new)

    def attach_logs(self) -> None:
        """From now on, log handlers with a rich console print through this display's
        console (their lines go above the bar or spinner) and leave out the tracebacks
        of this package's own errors."""
        for handler in _console_handlers():
            self._restore.append((handler, handler.console, handler.formatter))  # type: ignore[attr-defined]
            handler.console = self.console  # type: ignore[attr-defined]
            handler.setFormatter(_ShortOwnErrors(handler.formatter or logging.Formatter()))

    def on_status(self, status: BatchStatus) -> None:
        """A batch status listener: moves the bar."""
        total = len(status.jobs)
        done = total - status.remaining
        if self._task is None:
            self._task = self.progress.add_task("batch", total=total)
        self.progress.update(self._task, total=total, completed=done)

    def summary(self, summary: RunSummary) -> None:
        """The run's summary, one fact a line."""
        for line in summary.lines():
            self.note(line)
