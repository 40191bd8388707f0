"""Average the weights of several landmark runs into a new run (a "model soup").

    python tools/average_runs.py RUN RUN [RUN ...] --name NAME [--checkpoint best|last]

Fine-tunes that start from the same weights stay in one basin of the loss, so the mean of
their weights predicts about as well as the mean of their outputs would, at the cost of one
network (Wortsman et al. 2022, "Model soups").  Runs that did not share a start average
into noise; the validation figures printed at the end say which case it was.

The result is a run folder like a trained one (best.pt, config.json, env.json, and a
metrics.jsonl holding one record: the average's figures on the split the runs share), so
``facemark evaluate``, ``train --init NAME`` and tools/bundle_models.py take it as they take
a trained run; averaged.json names each run averaged, with its epoch, sha256 and figures.
The runs must share a validation split: a run whose training faces include another's
validation faces would leak them into the average's figures (the check ``train --init``
makes, train.resolve.split_mismatch).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import torch

from facemark import devices, paths
from facemark.checkpoint import load_checkpoint, save_checkpoint
from facemark.config import TrainConfig
from facemark.errors import FacemarkError, UsageError
from facemark.files import atomic_write, sha256_file, write_json
from facemark.runs import AVERAGED_FILE, read_records
from facemark.train import records
from facemark.train.resolve import absolute_paths, split_mismatch

#: What must match for two checkpoints' weights to be averaged at all (and what the
#: average's checkpoint takes from the first).
SAME = ("task", "arch", "arch_kwargs", "img_size")


def average_state_dicts(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The element-wise mean of floating-point tensors; counters (BatchNorm's batch count)
    come from the first.  BatchNorm's running statistics are averaged as well: measured on
    the shipped soup, re-estimating them on training crops moved the figures by no more than
    the split's noise."""
    first = states[0]
    for other in states[1:]:
        if other.keys() != first.keys() or any(other[k].shape != v.shape for k, v in first.items()):
            raise UsageError("the runs' networks differ in their layers: nothing to average")
    return {
        key: torch.stack([s[key].float() for s in states]).mean(0).to(value.dtype)
        if value.is_floating_point()
        else value.clone()
        for key, value in first.items()
    }


def check_compatible(names: list[str], checkpoints: list[dict[str, Any]], cfg: TrainConfig) -> None:
    """Refuse runs of other networks, and runs whose splits differ from the first's (``cfg``,
    its config; see the module doc)."""
    first = checkpoints[0]
    for name, other in zip(names[1:], checkpoints[1:], strict=True):
        for key in SAME:
            if other.get(key) != first.get(key):
                raise UsageError(
                    f"{name}: {key} {other.get(key)!r} differs from {names[0]}'s "
                    f"{first.get(key)!r}; only runs of one network can be averaged"
                )
        why = split_mismatch(cfg, other, f"run {name}")
        if why:
            raise UsageError(f"{why} (validated as {names[0]}'s split)")


def average_runs(names: list[str], name: str, which: str = "best") -> Path:
    """Write run ``name``: the average of ``names``' ``{which}.pt``; returns its folder."""
    from torch.utils.data import DataLoader

    from facemark.tasks.landmarks import LandmarkTask

    if len(names) < 2:
        raise UsageError("give at least two runs to average")
    if len(set(names)) < len(names):
        raise UsageError("a run is named twice: it would count double")
    files = [paths.runs_dir() / run / f"{which}.pt" for run in names]
    checkpoints = [load_checkpoint(f, task="landmarks") for f in files]  # landmark runs only
    first = checkpoints[0]
    cfg = TrainConfig.from_dict(first.get("config") or {})
    check_compatible(names, checkpoints, cfg)
    run_dir = records.new_run_dir(name, "landmarks", resumable=False)
    start = time.perf_counter()

    # the split and network of the runs, not the training of one of them; data paths made
    # absolute, as train records them, so a later run's split check finds the same folders
    cfg = dataclasses.replace(
        cfg,
        name=name,
        init=None,
        teacher=None,
        resume=None,
        data_root=absolute_paths(cfg.data_root),
        val_data=absolute_paths(cfg.val_data),
    )
    task = LandmarkTask()
    model = task.build_model(cfg)
    model.load_state_dict(average_state_dicts([c["state_dict"] for c in checkpoints]))
    model.eval()
    averaged = time.perf_counter()

    _, val = task.datasets(cfg)
    loader = DataLoader(val, batch_size=int(cfg.batch_size or 32))
    with torch.no_grad():
        metrics = task.validate(model, loader, torch.device("cpu"))
    done = time.perf_counter()

    fingerprint = records.dataset_fingerprint(cfg)
    payload = {key: first[key] for key in SAME if first.get(key) is not None}
    payload.update(
        state_dict=model.state_dict(),
        config=cfg.to_dict(),
        metrics=metrics,
        epoch=1,
        run_name=name,
        dataset_fingerprint=fingerprint,
        averaged_from=list(names),
    )
    made = {
        "checkpoint": which,
        "runs": [
            {"run": run, "epoch": c.get("epoch"), "sha256": sha256_file(f), "val": c.get("metrics")}
            for run, c, f in zip(names, checkpoints, files, strict=True)
        ],
    }
    # one record, as a run's epoch: the time is the averaging's own (its runs' training time
    # is theirs, counted once each by runs.init_seconds)
    record = {
        "epoch": 1,
        "seconds": round(averaged - start, 3),
        "val_seconds": round(done - averaged, 3),
        **{f"val_{k}": v for k, v in metrics.items()},
        "val": metrics,
    }
    # written in a hidden folder beside it and renamed at the end: an interrupted run leaves
    # no half-written run behind
    tmp = run_dir.parent / f".{name}.partial-{os.getpid()}"
    tmp.mkdir(parents=True)
    try:
        _write_run(tmp, payload, made, record, len(val))
        if run_dir.is_dir():  # left by a training run that never saved a checkpoint
            if any(run_dir.iterdir()):
                raise UsageError(f"{run_dir} exists and holds files; pick another --name")
            run_dir.rmdir()
        os.replace(tmp, run_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return run_dir


def _write_run(
    folder: Path,
    payload: dict[str, Any],
    made: dict[str, Any],
    record: dict[str, Any],
    val_samples: int,
) -> None:
    """The averaged run's files, as a training run leaves them, plus averaged.json."""
    save_checkpoint(folder / "best.pt", payload)
    write_json(folder / "config.json", payload["config"])
    env = records.environment(torch.device("cpu"), devices.Dist())
    env["dataset"] = {"fingerprint": payload["dataset_fingerprint"], "val_samples": val_samples}
    write_json(folder / "env.json", env)
    write_json(folder / AVERAGED_FILE, made)
    with atomic_write(folder / "metrics.jsonl", "w") as fh:
        fh.write(json.dumps(record) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="run names (under facemark's runs folder)")
    parser.add_argument("--name", required=True, help="the new run's name")
    parser.add_argument(
        "--checkpoint",
        choices=("best", "last"),
        default="best",
        help="which checkpoint of each run (default: best)",
    )
    args = parser.parse_args(argv)
    try:
        run_dir = average_runs(args.runs, args.name, args.checkpoint)
    except FacemarkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    metrics = read_records(run_dir)[0]["val"]
    figures = ", ".join(f"{k} {v * 100:.3f} %" for k, v in metrics.items() if "nme_io" in k)
    print(f"{run_dir}: {figures}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
