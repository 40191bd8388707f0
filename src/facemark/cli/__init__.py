"""The ``facemark`` command line: one module per command group, all on one Typer app.

This layer only parses options, calls library functions and prints their results; all real
work lives in the library modules, so everything is usable from Python without the CLI.
"""

from __future__ import annotations

from facemark.cli import annotate, data, evaluate, models, train  # noqa: F401  (registers)
from facemark.cli.app import app, main

__all__ = ["app", "main"]
