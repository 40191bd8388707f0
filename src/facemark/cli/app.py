"""The Typer app every command registers on, and what all commands share: the consoles,
the error wrapper, and the one rule for ``--device``/``--gpu``.

Every command is wrapped by :func:`cli_errors`, which turns a :class:`FacemarkError` (and the
few OS errors a user can cause) into one line on stderr and a non-zero exit code.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer
import typer.core
from rich.console import Console
from rich.markup import escape

from facemark import __version__
from facemark.errors import FacemarkError, UsageError

F = TypeVar("F", bound=Callable[..., Any])

# The click that typer actually raises from: recent typer vendors it as typer._click, older
# releases use the click package.
_click = getattr(typer.core, "_click", None) or typer.core.click
_click_exceptions = _click.exceptions
click_core = _click.core

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


def _display_type(self: Any, ctx: Any) -> str | None:
    """No ``<bool>`` placeholder after a yes/no switch in the help: the switch says it all."""
    return "" if getattr(self, "is_flag", False) else _typer_display_type(self, ctx)


_typer_display_type = typer.core.TyperOption.display_type_rich
typer.core.TyperOption.display_type_rich = _display_type  # type: ignore[method-assign]


def _fail(message: str, code: int) -> None:
    # escaped: a message may hold brackets ("pip install 'facemark[export]'", a path)
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def cli_errors(fn: F) -> F:
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
            hint = "(set FACEMARK_DEBUG=1 for a traceback)"
            _fail(f"internal error: {type(exc).__name__}: {exc} {hint}", 70)

    return wrapper  # type: ignore[return-value]


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"facemark {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False,
        "--version",
        "-V",
        callback=_version_callback,
        is_eager=True,
        help="Print the version and exit.",
    ),
) -> None:
    """Find faces in photos and place the 68 standard facial keypoints on each.

    Quick start:  facemark annotate ./photos   (writes ./facemark-out)
    """


#: ``--gpu`` of every command that runs a network.
GPU_HELP = "Run on CUDA (--device cuda:N picks the card; an error if no GPU is usable)."


def resolve_device(ctx: typer.Context, device: str, gpu: bool) -> str:
    """The device a command runs on: ``--gpu`` means CUDA (``--device cuda:N`` picks the
    card) for every command, and contradicts an explicit other ``--device``.  Whether a GPU is
    usable is checked where the device is opened, with one message for all commands."""
    if not gpu or device.startswith("cuda"):
        return device
    explicit = ctx.get_parameter_source("device") == click_core.ParameterSource.COMMANDLINE
    if explicit and device != "auto":
        raise UsageError(f"--gpu contradicts --device {device}")
    return "cuda"


def main() -> None:
    """Console-script entry point.

    Runs the app outside click's standalone mode so that usage errors (an unknown option, a
    missing argument) also come out as one line rather than a boxed panel.
    """
    # Bare `facemark` raises this in recent click/typer (older ones print the help and exit 0);
    # an empty tuple catches nothing where the class does not exist.
    no_args_is_help = getattr(_click_exceptions, "NoArgsIsHelpError", ())
    try:
        code = app(prog_name="facemark", standalone_mode=False)
    except no_args_is_help as exc:
        # The help is the answer, not an error.  With rich it is already printed and the
        # message is empty; without rich the message is the help.
        if exc.format_message().strip():
            typer.echo(exc.format_message())
        code = 0
    except _click_exceptions.UsageError as exc:
        command = exc.ctx.command_path if exc.ctx is not None else "facemark"
        err_console.print(
            f"[bold red]error:[/] {exc.format_message()} (see '{command} --help')",
            highlight=False,
            soft_wrap=True,
        )
        code = exc.exit_code
    except _click_exceptions.ClickException as exc:
        err_console.print(
            f"[bold red]error:[/] {exc.format_message()}", highlight=False, soft_wrap=True
        )
        code = exc.exit_code
    except typer.Abort:  # typer's own class (click's Abort in older typer releases)
        err_console.print("[bold red]error:[/] aborted", highlight=False)
        code = 1
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    sys.exit(main())
