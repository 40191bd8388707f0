"""Run records: what a training run writes next to its checkpoints, and reading them back.

``facemark train``, ``tools/bundle_models.py`` and the benchmarks all go through here.  A
training run folder holds ``config.json``, ``env.json`` and ``metrics.jsonl`` (one JSON object
per epoch, see ``train.write_history``); the best checkpoint is the epoch with the lowest
validation metric.  Time is summed from each epoch's own ``seconds`` and ``val_seconds``, which
survive a ``--resume`` (the ``elapsed`` clock restarts with each invocation), so it counts
training and validation but not start-up (loading the data, building the model).  A bundled
checkpoint has no folder beside it, so the run is found from ``--model-run`` or the run name in
the checkpoint's own config; failing both, the table says that no records were found.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from facemark import paths
from facemark.files import atomic_write

#: Per-epoch time keys of a run record (summed), and validation metrics (first found is used).
EPOCH_TIME_KEYS = ("seconds", "val_seconds")
METRIC_KEYS = ("val_nme_io", "nme_io", "val_loss")
#: A run made by averaging other runs' weights (tools/average_runs.py) names them here.
AVERAGED_FILE = "averaged.json"


def find_run(checkpoint: Path | str | None, run: str | None = None) -> Path | None:
    """The run folder that produced ``checkpoint``: ``run`` (name or folder) when given, else the
    checkpoint's own folder if it holds run records, else the run named in its config."""
    if run:
        folder = Path(run).expanduser()
        if not folder.is_dir():
            folder = paths.runs_dir() / run
        return folder if folder.is_dir() else None
    if checkpoint is None:
        return None
    checkpoint = Path(checkpoint)
    if (checkpoint.parent / "metrics.jsonl").is_file():
        return checkpoint.parent
    name = (_payload_config(checkpoint) or {}).get("name")
    if isinstance(name, str) and (paths.runs_dir() / name / "metrics.jsonl").is_file():
        return paths.runs_dir() / name
    return None


def read_records(run: Path) -> list[dict[str, Any]]:
    """The per-epoch records of a run (lines that are not JSON objects are ignored)."""
    out = []
    for line in (run / "metrics.jsonl").read_text().splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


def _number(value: Any) -> float | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else None


def summarize(records: list[dict[str, Any]], metric: str | None = None) -> dict[str, Any]:
    """Epochs, time to the best epoch and in total, and the best validation metric."""
    keys = ((f"val_{metric}", metric) if metric else ()) + METRIC_KEYS
    used = next((k for k in keys if any(_number(r.get(k)) is not None for r in records)), None)
    cumulative, total = [], 0.0
    for rec in records:
        total += sum(_number(rec.get(k)) or 0.0 for k in EPOCH_TIME_KEYS)
        cumulative.append(total)
    out: dict[str, Any] = {"epochs": len(records), "total_s": total if records else None}
    scored = [(i, _number(r.get(used))) for i, r in enumerate(records)] if used else []
    scored = [(i, v) for i, v in scored if v is not None]
    if scored:
        best_i, best_v = min(scored, key=lambda iv: iv[1])  # first of equals: the earliest
        out.update(
            best_epoch=records[best_i].get("epoch", best_i + 1),
            metric=used,
            best_value=best_v,
            time_to_best_s=cumulative[best_i],
        )
    return out


def describe(checkpoint: Path | str | None, run: str | None = None) -> dict[str, Any]:
    """Training-time facts for the benchmark table; ``{"note": why}`` when there are none."""
    folder = find_run(checkpoint, run)
    if folder is None:
        return {"note": "no run records found (pass --model-run/--baseline-run)"}
    config = _read_json(folder / "config.json")
    env = _read_json(folder / "env.json")
    out = {"run": str(folder), **summarize(read_records(folder), config.get("metric_name"))}
    before = init_seconds(folder)
    if before and out.get("time_to_best_s") is not None:  # it continued other runs (--init)
        out["with_init_to_best_s"] = before + out["time_to_best_s"]
    for key in ("arch", "epochs", "batch_size", "max_minutes", "img_size"):
        if key in config:
            out[f"config_{key}"] = config[key]
    if env.get("device"):
        name = env.get("device_name")
        out["device"] = (
            f"{env['device']} ({name})" if name and name != env["device"] else env["device"]
        )
    return out


def init_run(spec: str) -> Path | None:
    """The run folder an ``--init`` spec names (a run name or folder, or a checkpoint in
    one: :func:`find_run`); None for a model with no run records here (``default``)."""
    path = Path(spec).expanduser()
    return find_run(path, None) if path.suffix == ".pt" else find_run(None, spec)


def parent_runs(folder: Path) -> list[str]:
    """The runs ``folder``'s weights came from: its ``--init``, or the runs it averages."""
    averaged = _read_json(folder / AVERAGED_FILE).get("runs") or []
    init = _read_json(folder / "config.json").get("init")
    names = [str(r["run"]) for r in averaged if isinstance(r, dict) and r.get("run")]
    return names + ([str(init)] if init else [])


def init_seconds(
    folder: Path, missing: Callable[[str], float | None] | None = None
) -> float | None:
    """Training seconds (all epochs) of the runs ``folder``'s run was made from, following
    ``--init`` and averaged runs back, each run counted once (fine-tunes of one run share
    it); 0 without either.  A model with no records here (a bundled model, another
    machine's run) counts ``missing(spec)`` seconds; None when that is not known."""
    total, seen = 0.0, {folder.resolve()}
    todo = parent_runs(folder)
    while todo:
        spec = todo.pop()
        run = init_run(spec)
        if run is None or not (run / "metrics.jsonl").is_file():
            known = missing(spec) if missing is not None else None
            if known is None:
                return None
            total += known
            continue
        if run.resolve() in seen:
            continue
        seen.add(run.resolve())
        total += summarize(read_records(run)).get("total_s") or 0.0
        todo.extend(parent_runs(run))
    return total


def _read_json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``, or {} when missing or unreadable."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _payload_config(checkpoint: Path) -> dict[str, Any] | None:
    try:
        import torch

        data = torch.load(checkpoint, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # an unreadable checkpoint simply has no run to report
        return None
    config = data.get("config") if isinstance(data, dict) else None
    return config if isinstance(config, dict) else None


def metric_scale(name: str) -> tuple[float, str]:
    """Landmark error metrics read best as percentages."""
    return (100.0, " (%)") if name.startswith(("nme", "fr_", "auc")) else (1.0, "")


def write_history(run_dir: Path, history: list[dict[str, Any]], metric_name: str) -> None:
    """``metrics.jsonl`` (rewritten whole, atomically, so a resume never duplicates lines)
    and ``curves.png``."""
    import json

    from facemark import plot

    with atomic_write(run_dir / "metrics.jsonl", "w") as fh:
        for row in history:
            fh.write(json.dumps(row) + "\n")
    epochs = [row["epoch"] for row in history]
    val_key = f"val_{metric_name}"
    scale, unit = metric_scale(metric_name)
    charts = [
        plot.Chart(
            {"train loss": (epochs, [row["train_loss"] for row in history])},
            "training loss",
            "epoch",
            "loss",
        ),
        plot.Chart(
            {
                f"val {metric_name}": (
                    epochs,
                    [row.get(val_key, math.nan) * scale for row in history],
                )
            },
            f"validation {metric_name}",
            "epoch",
            f"{metric_name}{unit}",
        ),
    ]
    plot.save_charts(charts, run_dir / "curves.png")
