"""What a training run prints: the header line, one line per epoch and the summary table.

Only rank 0 prints (the other ranks get a quiet console); the live progress bars belong to
the loop, which owns the console.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from facemark import runs
from facemark.train.amp import amp_name

if TYPE_CHECKING:
    import torch
    from torch import nn

    from facemark.config import TrainConfig
    from facemark.devices import Dist
    from facemark.train.result import TrainResult


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"


def format_metric(name: str, value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    scale, unit = runs.metric_scale(name)
    return f"{value * scale:.3f}%" if unit else f"{value:.4g}"


def print_header(
    console: Any,
    cfg: TrainConfig,
    *,
    net: nn.Module,
    device: torch.device,
    dist: Dist,
    amp_dtype: torch.dtype | None,
    samples: tuple[int, int],
    workers: int,
    resumed_at: tuple[int, int] | None,
    run_dir: Path,
) -> None:
    """What is trained where, on how much data; ``samples`` is (train, val), ``resumed_at``
    the (epoch, step) a resumed run continues after (None for a fresh run)."""
    from facemark.models import count_parameters

    params = count_parameters(net) / 1e6
    amp = amp_name(amp_dtype) or "off"
    world = f" x {dist.world_size} processes" if dist.enabled else ""
    verb = "resuming" if resumed_at is not None else "training"
    console.print(
        f"[bold]{verb}[/] {cfg.task} arch [cyan]{cfg.arch}[/] ({params:.2f}M params, "
        f"{cfg.img_size} px) on [cyan]{device}[/]{world}, amp {amp}, "
        f"{samples[0]} train / {samples[1]} val samples, batch {cfg.batch_size}, "
        f"lr {cfg.lr:g}, {cfg.epochs} epochs, {workers} workers",
        highlight=False,
        soft_wrap=True,
    )
    if resumed_at is not None:
        start_epoch, skip_batches = resumed_at
        step = f", step {skip_batches}" if skip_batches else ""
        console.print(f"continuing after epoch {start_epoch}{step}", highlight=False)
    console.print(f"run folder: {run_dir}", highlight=False, soft_wrap=True)


def print_epoch(
    console: Any, row: dict[str, Any], improved: bool, metric_name: str, epochs: int
) -> None:
    name = metric_name
    val = format_metric(name, row["val"].get(name)) if row["val"] else "-"
    by_source = "".join(
        f" {key.split('@', 1)[1]} {format_metric(name, value)}"
        for key, value in row["val"].items()
        if key.startswith(f"{name}@")
    )
    if by_source:
        val += f" ({by_source.strip()})"
    best = " [green]best[/]" if improved else ""
    console.print(
        f"epoch {row['epoch']:>3}/{epochs}  loss {row['train_loss']:.4f}  "
        f"val {name} {val}{best}  lr {row['lr']:.2e}  {row['seconds']:.1f}s  "
        f"{row['samples_per_s']:.0f} samples/s  data wait {row['data_wait']:.0%}",
        highlight=False,
        soft_wrap=True,
    )


def print_summary(
    console: Any,
    result: TrainResult,
    cfg: TrainConfig,
    history: list[dict[str, Any]],
    device: torch.device,
) -> None:
    from rich.table import Table

    name = result.metric_name
    run_dir = result.run_dir
    table = Table(title="training summary", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    done = [r for r in history if "seconds" in r]
    per_epoch = sum(r["seconds"] + r.get("val_seconds", 0.0) for r in done) / max(len(done), 1)
    status = (
        "interrupted (Ctrl-C)"
        if result.interrupted
        else ("stopped by --max-minutes" if result.stopped_by_time else "finished")
    )
    rows = [
        ("status", status),
        ("task / arch", f"{cfg.task} / {cfg.arch} ({cfg.img_size} px)"),
        ("epochs", f"{result.epochs_run} of {cfg.epochs}"),
        (
            f"best val {name}",
            f"{format_metric(name, result.best_metric)} (epoch {result.best_epoch})"
            if result.best_epoch and math.isfinite(result.best_metric)
            else "-",
        ),
        (f"last val {name}", format_metric(name, result.last_metrics.get(name))),
        ("final train loss", f"{history[-1]['train_loss']:.4f}" if history else "-"),
        (
            "time",
            f"{_duration(result.seconds)} this session, "
            + (f"{per_epoch:.1f} s per epoch" if done else "no epoch finished yet"),
        ),
        (
            "throughput",
            f"{history[-1]['samples_per_s']:.0f} samples/s on {device}" if history else "-",
        ),
    ]
    if history and "peak_gpu_mem_mb" in history[-1]:
        rows.append(("peak GPU memory", f"{history[-1]['peak_gpu_mem_mb']:.0f} MiB"))
    rows.append(("run folder", str(run_dir)))
    for key, value in rows:
        table.add_row(key, value)
    console.print(table)
    if result.interrupted or result.stopped_by_time:
        console.print(
            f"saved {run_dir / 'last.pt'}; continue with: facemark train --resume {run_dir}",
            highlight=False,
            soft_wrap=True,
        )
