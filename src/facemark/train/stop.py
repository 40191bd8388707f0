"""Ctrl-C during training: the current step finishes, ``last.pt`` is saved, the run stops
cleanly and can be resumed; DataLoader workers stay out of it."""

from __future__ import annotations

import contextlib
import signal
from typing import Any


class StopFlag:
    """Ctrl-C sets a flag instead of raising, so the current step finishes and the state
    saved in ``last.pt`` is consistent.  A second Ctrl-C interrupts at once."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def __enter__(self) -> StopFlag:
        with contextlib.suppress(ValueError):  # not the main thread: leave signals alone
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc: Any) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def ignore_sigint(worker_id: int) -> None:
    """DataLoader workers leave Ctrl-C to the main process, which shuts them down cleanly."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
