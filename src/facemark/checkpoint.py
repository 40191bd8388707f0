"""Checkpoint files: one format for landmark models and detectors.

A checkpoint is a ``torch.save`` dict that says what it is (``format``), which layout version
wrote it, which task and architecture it holds and the architecture's arguments, so
``evaluate`` and ``annotate`` rebuild the network with no flags.  Files are written
atomically and loaded with ``weights_only=True``: a checkpoint from the internet cannot run
code.
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from facemark.config import TASKS
from facemark.errors import CheckpointError, quiet_warnings
from facemark.files import atomic_write

FORMAT = "facemark-checkpoint"
FORMAT_VERSION = 1
REQUIRED_KEYS = ("format", "format_version", "task", "arch", "arch_kwargs", "state_dict")


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Write ``payload`` (with task, arch, arch_kwargs, state_dict, ...) atomically."""
    from facemark import __version__

    if payload.get("task") not in TASKS:
        raise ValueError(f"checkpoint task must be one of {TASKS}, got {payload.get('task')!r}")
    data = {"format": FORMAT, "format_version": FORMAT_VERSION, "facemark_version": __version__}
    #: when the weights were made (a copy keeps the original's: ``facemark models`` shows it)
    data["created"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    data.update(payload)
    path = Path(path)
    with atomic_write(path, "wb") as fh:
        torch.save(data, fh)
    return path


def load_checkpoint(
    path: str | os.PathLike, task: str | None = None, map_location: str | torch.device = "cpu"
) -> dict[str, Any]:
    """Read and validate a checkpoint; every way it can be wrong is a one-line CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        # torch warns about foreign pickles (protocol, legacy format) before failing or
        # returning something that is not ours; the error below says all the user needs.
        with quiet_warnings():
            data = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many kinds for truncated or foreign files
        raise CheckpointError(
            f"{path} is not a facemark checkpoint (unreadable: truncated, or not written by "
            f"facemark; {type(exc).__name__})"
        ) from exc
    return validate(data, task, str(path))


def validate(data: Any, task: str | None = None, where: str = "checkpoint") -> dict[str, Any]:
    """The one check of a checkpoint's contents, for files and already loaded dicts alike:
    facemark's format, a layout version this facemark reads, the required keys, the task."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{where} is not a facemark checkpoint")
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{where} was written by facemark {data.get('facemark_version', '?')} in checkpoint "
            f"format {version}; this facemark reads format {FORMAT_VERSION}"
        )
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise CheckpointError(f"{where} is missing {', '.join(missing)}")
    if task is not None and data["task"] != task:
        raise CheckpointError(f"{where} holds a {data['task']} model, not a {task} model")
    return data


def read(source: str | os.PathLike | Mapping[str, Any], task: str | None = None) -> dict[str, Any]:
    """A validated checkpoint dict from a path or an already loaded dict."""
    if isinstance(source, Mapping):
        data = dict(source)
        return validate(data, task, str(data.get("run_name") or "checkpoint"))
    if not isinstance(source, (str, os.PathLike)):
        raise CheckpointError(f"expected a checkpoint path or dict, got {type(source).__name__}")
    return load_checkpoint(source, task)


#: What a shipped model keeps: enough to rebuild, describe and trace it, no training state.
EXPORT_KEYS = (
    "task",
    "arch",
    "arch_kwargs",
    "img_size",
    "state_dict",
    "config",
    "metrics",
    "epoch",
    "run_name",
    "dataset_fingerprint",
    "averaged_from",
    "faceness",
    "created",
)


def export_checkpoint(src: str | os.PathLike, dst: str | os.PathLike, half: bool = True) -> Path:
    """Write a small inference-only copy of a checkpoint (how the bundled weights are made).

    Optimizer, scheduler and RNG states are dropped and float tensors are stored as float16,
    which halves the size; ``load_state_dict`` casts them back to the model's float32.
    """
    data = load_checkpoint(src)
    payload = {k: data[k] for k in EXPORT_KEYS if k in data}
    if half:
        payload["state_dict"] = {
            k: v.half() if torch.is_floating_point(v) else v for k, v in data["state_dict"].items()
        }
    return save_checkpoint(dst, payload)
