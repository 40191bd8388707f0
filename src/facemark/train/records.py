"""The records written next to the checkpoints: the run folder itself, ``config.json``, and
``env.json`` with the versions, hardware, source revision and dataset fingerprint that someone
reproducing the run needs (plus the peak GPU memory that ``metrics.jsonl`` records per epoch).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facemark import devices, paths
from facemark.config import TrainConfig
from facemark.errors import DataError, UsageError
from facemark.files import write_json


def new_run_dir(name: str | None, task: str, resumable: bool = True) -> Path:
    """The folder of a new run ``name`` (default: a timestamp), refusing one that holds a
    run's checkpoints; ``resumable``: whether the refusal offers ``--resume``."""
    if name is None:
        name = f"{_dt.datetime.now().strftime('%Y%m%d-%H%M%S')}-{task}"
    if not name or "/" in name or "\\" in name or name in (".", ".."):
        raise UsageError(f"--name must be a plain folder name, got {name!r}")
    run_dir = paths.runs_dir() / name
    if (run_dir / "last.pt").exists() or (run_dir / "best.pt").exists():
        hint = " or --resume it" if resumable else ""
        raise UsageError(f"run '{name}' already exists at {run_dir}; pick another --name{hint}")
    return run_dir


def write_run_info(
    run_dir: Path,
    cfg: TrainConfig,
    device: torch.device,
    dist: devices.Dist,
    *,
    fingerprint: str | None,
    train_samples: int,
    val_samples: int,
    workers: int,
    amp: str | None,
) -> None:
    """``config.json`` and ``env.json``, written once when the run (re)starts."""
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(run_dir / "config.json", cfg.to_dict())
    env = environment(device, dist)
    env["dataset"] = {
        "fingerprint": fingerprint,
        "train_samples": train_samples,
        "val_samples": val_samples,
    }
    env["workers"] = workers
    env["amp"] = amp
    write_json(run_dir / "env.json", env)


def dataset_fingerprint(cfg: TrainConfig) -> str | None:
    """The fingerprint of the data ``cfg`` trains and validates on, or None where it cannot be
    taken (it is a record, never a reason to stop the run)."""
    try:
        from facemark.data import training_fingerprint

        return training_fingerprint(cfg.data_root, cfg.val_data)
    except (DataError, ImportError, OSError):
        return None


def environment(device: torch.device, dist: devices.Dist) -> dict[str, Any]:
    """Versions, hardware and source revision: what someone reproducing the run needs."""
    import PIL

    from facemark import __version__

    env: dict[str, Any] = {
        "facemark": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "pillow": PIL.__version__,
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name(),
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "world_size": dist.world_size,
        "git_commit": git_commit(),
        "started": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
    }
    return env


def cpu_name() -> str:
    """The CPU model (Linux /proc/cpuinfo), else whatever the platform module knows."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "cpu"


def peak_gpu_mem_mb(device: torch.device) -> float | None:
    """Most memory torch's allocator has held on ``device`` since the process started (MiB),
    or None off CUDA.  Tensors only: the CUDA context and the allocator's cache are not in it."""
    if device.type != "cuda":
        return None
    return round(torch.cuda.max_memory_allocated(device) / 2**20, 1)


def git_commit() -> str | None:
    """The source checkout's commit (with ``-dirty`` for local changes), if it is one."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
        if commit.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        )
        return commit.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None
