"""The ``facemark`` command line.

This layer only parses options, calls library functions and prints their results; all real
work lives in the library modules so it can be used from Python without the CLI.  Every
command is wrapped by :func:`_cli_errors`, which turns a :class:`FacemarkError` (and the few
OS errors a user can cause) into one line on stderr and a non-zero exit code.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console

from facemark import __version__
from facemark.errors import FacemarkError

F = TypeVar("F", bound=Callable[..., Any])

app = typer.Typer(
    name="facemark",
    help="Find faces in photos and place the 68 standard facial keypoints on each.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
console = Console()
err_console = Console(stderr=True)


def _fail(message: str, code: int) -> None:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _cli_errors(fn: F) -> F:
    """One clear line on stderr and an exit code instead of a traceback.

    FACEMARK_DEBUG=1 re-raises, for developers who want the traceback.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except FacemarkError as exc:
            _fail(str(exc), exc.exit_code)
        except KeyboardInterrupt:
            _fail("interrupted", 130)
        except OSError as exc:
            if os.environ.get("FACEMARK_DEBUG"):
                raise
            where = f": {exc.filename}" if getattr(exc, "filename", None) else ""
            _fail(f"{exc.strerror or exc}{where}", 1)
        except Exception as exc:  # a bug: still one line, with a way to get the traceback
            if os.environ.get("FACEMARK_DEBUG"):
                raise
            _fail(f"internal error: {type(exc).__name__}: {exc} (set FACEMARK_DEBUG=1 for a traceback)", 70)

    return wrapper  # type: ignore[return-value]


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"facemark {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", "-V", callback=_version_callback, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Find faces in photos and place the 68 standard facial keypoints on each.

    Quick start:  facemark annotate ./photos   (writes ./facemark-out)
    """


# --- info (issue 2) ---

# --- fetch-data (issue 2) ---

# --- preview (issue 3) ---

# --- train (issue 4) ---

# --- evaluate (issue 5) ---

# --- annotate (issue 6) ---

# --- models (issue 7) ---


def main() -> None:
    """Console-script entry point."""
    app(prog_name="facemark")


if __name__ == "__main__":
    sys.exit(main())
