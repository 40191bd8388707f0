"""What this installation is: folders, dataset state, bundled models, torch and devices.

``facemark info`` prints it; a bug report can attach it (``facemark info --json``).
"""

from __future__ import annotations

import os
from typing import Any

from facemark import __version__


def report() -> dict[str, Any]:
    """The facts ``facemark info`` shows (torch is imported here, when asked, not before)."""
    import platform

    import torch

    from facemark import download, paths, registry
    from facemark.config import TASKS

    weights = paths.bundled_weights_dir()
    # the names --model and --detector take, by task (aliases of one file together)
    models = []
    for task, names in ((task, registry.bundled(task)) for task in TASKS):
        option = "--model" if task == "landmarks" else "--detector"
        by_file: dict[str, list[str]] = {}
        for name, file in names.items():
            if (weights / file).is_file():
                by_file.setdefault(file, []).append(name)
        models += [f"{option} {' / '.join(aliases)}" for aliases in by_file.values()]
    if torch.cuda.is_available():
        names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        cuda = f"available: {', '.join(names)} (CUDA {torch.version.cuda})"
    elif torch.version.cuda is None:
        cuda = "not available (this torch build is CPU-only)"
    else:
        cuda = f"not available (torch built for CUDA {torch.version.cuda}, no usable GPU found)"
    return {
        "facemark_version": __version__,
        "data_dir": str(paths.data_dir()),
        "cache_dir": str(paths.cache_dir()),
        "runs_dir": str(paths.runs_dir()),
        "dataset": download.dataset_status(),
        "bundled_models": models,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": cuda,
        "cuda_available": torch.cuda.is_available(),
        "cpu_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
    }
