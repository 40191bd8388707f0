"""Errors that the CLI turns into one line on stderr and a non-zero exit code.

Library code raises these for every failure a user can cause or fix (bad input, no network,
a wrong checkpoint); anything else is a bug and is reported as an internal error.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator


@contextlib.contextmanager
def quiet_warnings() -> Iterator[None]:
    """Silence every warning inside the block (torch's tracing, quantisation and unpickling
    warnings are not for users; the result, or the error raised, says what they need)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message that says something: torch's
    ``Error(s) in loading state_dict for HeatmapNet:`` heads a list whose first entry
    (``size mismatch for head.weight ...``) is the news, so a line ending in ``:`` is
    joined with the next one."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    if lines[0].endswith(":") and len(lines) > 1:
        return f"{lines[0]} {lines[1]}"
    return lines[0]


def option(field: str) -> str:
    """How a message names a setting that is both a CLI option and a Python keyword:
    ``option("min_face")`` -> ``--min-face (min_face=)``."""
    return f"--{field.replace('_', '-')} ({field}=)"


class FacemarkError(Exception):
    """A failure the user can act on; its message is the whole story, in one line."""

    exit_code = 1


class UsageError(FacemarkError):
    """Options that contradict each other or name things that do not exist."""

    exit_code = 2


class DataError(FacemarkError):
    """The dataset, an archive, a CSV or an image is missing, unreadable or malformed."""


class NetworkError(FacemarkError):
    """A download failed after its retries (no route, timeout, HTTP error)."""


class CheckpointError(FacemarkError):
    """A file is not a facemark checkpoint, or one written by an incompatible version."""
