"""Progress bars for downloads (bytes) and for checking images (counts).

Bars animate only on a terminal; in a log file they stay silent.  ``_console`` is where
output goes when a caller passes no console of its own.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

_console = Console()


def _byte_progress(console: Console) -> Progress:
    """Bytes, speed and ETA; with an unknown total rich shows a pulsing bar and '?'."""
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not console.is_terminal,  # nothing to animate in a log file
    )


def _count_progress(console: Console) -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not console.is_terminal,
    )


class _LazyBar:
    """A byte progress bar that appears with the first response, not before a failed connect."""

    def __init__(self, console: Console, description: str) -> None:
        self.progress = _byte_progress(console)
        self.description = description
        self.task: Any = None

    def __enter__(self) -> _LazyBar:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.task is not None:
            self.progress.stop()

    def show(self, total: int | None, completed: int) -> None:
        if self.task is None:
            self.progress.start()
            self.task = self.progress.add_task(self.description, total=total, completed=completed)
        else:
            self.progress.update(self.task, total=total, completed=completed)

    def advance(self, n: int) -> None:
        self.progress.advance(self.task, n)
