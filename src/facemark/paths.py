"""Where facemark keeps its files.

Everything lives under the platform's per-user data and cache folders (platformdirs), so the
tool never writes next to the user's photos unless asked to.  ``FACEMARK_HOME`` moves all of
it under one folder: tests and CI point it at a temporary directory, and a user can point it
at a bigger disk.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "facemark"
HOME_ENV = "FACEMARK_HOME"


def _home() -> Path | None:
    value = os.environ.get(HOME_ENV, "").strip()
    return Path(value).expanduser() if value else None


def data_dir() -> Path:
    """Datasets, training runs: things that are expensive to recreate."""
    home = _home()
    return home / "data" if home else Path(platformdirs.user_data_dir(APP_NAME))


def cache_dir() -> Path:
    """Downloads and models fetched by URL: things that can be fetched again."""
    home = _home()
    return home / "cache" if home else Path(platformdirs.user_cache_dir(APP_NAME))


def dataset_dir() -> Path:
    """The installed Udacity P1 dataset (``training/``, ``test/``, the two CSVs, manifest)."""
    return data_dir() / "dataset"


def runs_dir() -> Path:
    """One sub-folder per training run: checkpoints and run records."""
    return data_dir() / "runs"


def models_cache_dir() -> Path:
    """Checkpoints downloaded from a URL, named by their sha256."""
    return cache_dir() / "models"


def bundled_weights_dir() -> Path:
    """The default models shipped inside the package."""
    return Path(__file__).resolve().parent / "weights"
