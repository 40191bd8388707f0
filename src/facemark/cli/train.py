"""``facemark train``."""

from __future__ import annotations

import dataclasses
from typing import Any

import typer

from facemark.cli.app import GPU_HELP, app, cli_errors, click_core, console, resolve_device
from facemark.config import SPLIT, TASKS, TrainConfig, default_text


@app.command("train")
@cli_errors
def train_cmd(
    ctx: typer.Context,
    epochs: int | None = typer.Option(
        None, "--epochs", show_default=default_text("epochs"), help="Passes over the training set."
    ),
    batch_size: int | None = typer.Option(
        None,
        "--batch-size",
        show_default=default_text("batch_size"),
        help="Samples per step, over all GPUs together.",
    ),
    lr: float | None = typer.Option(
        None, "--lr", show_default=default_text("lr"), help="Peak learning rate of AdamW."
    ),
    weight_decay: float | None = typer.Option(
        None,
        "--weight-decay",
        show_default=default_text("weight_decay"),
        help="AdamW weight decay.",
    ),
    img_size: int | None = typer.Option(
        None,
        "--img-size",
        show_default=default_text("img_size"),
        help="Face crop size in pixels.",
    ),
    arch: str | None = typer.Option(
        None,
        "--arch",
        show_default=default_text("arch"),
        help="Network: heatmap, integral, regression or udacity; "
        "variants as name:key=value,... (see docs/model.md).",
    ),
    seed: int = typer.Option(
        SPLIT.seed, "--seed", help="Seeds the weights, sample order, augmentation and val split."
    ),
    val_fraction: float = typer.Option(
        SPLIT.val_fraction, "--val-fraction", help="Share of persons held out for validation."
    ),
    val_by: str = typer.Option(
        SPLIT.val_by,
        "--val-by",
        help="Hold out whole persons (identity), whole photos (photo: the name before a "
        "trailing _N, as 300-W numbers the faces of one photo) or single frames.",
    ),
    gpu: bool = typer.Option(False, "--gpu", help=GPU_HELP),
    device: str = typer.Option(
        "auto", "--device", help="cpu, cuda, cuda:N, or auto (CUDA when available)."
    ),
    workers: int | None = typer.Option(
        None, "--workers", show_default="spare CPU cores, at most 8", help="Data loading processes."
    ),
    amp: bool = typer.Option(
        True, "--amp/--no-amp", help="Mixed precision on CUDA (bf16 where supported)."
    ),
    resume: str | None = typer.Option(
        None, "--resume", metavar="PATH", help="Continue a run: its last.pt, folder or name."
    ),
    name: str | None = typer.Option(
        None, "--name", show_default="date-time-task", help="Run folder name under the runs dir."
    ),
    max_minutes: float | None = typer.Option(
        None, "--max-minutes", help="Stop after the epoch that passes this wall time (resumable)."
    ),
    task: str = typer.Option(
        TASKS[0], "--task", help="landmarks, or detector (the face detector)."
    ),
    data: list[str] | None = typer.Option(
        None,
        "--data",
        metavar="PATH",
        help="Training data (default: the installed dataset): a dataset root, a folder of "
        "images with .pts files, annotations.jsonl, a COCO keypoints JSON or a CSV. "
        "Repeat to train on several sources at once, each split for validation on its own.",
    ),
    data_weight: list[float] | None = typer.Option(
        None,
        "--data-weight",
        metavar="W",
        show_default="in proportion to their sizes",
        help="Each --data source's share of a training epoch, one per --data, relative "
        "(e.g. --data-weight 1 --data-weight 1 for half and half).",
    ),
    val_data: str | None = typer.Option(
        None,
        "--val-data",
        metavar="PATH",
        help="Validation data in any --data format (default: hold out --val-fraction of --data).",
    ),
    init: str | None = typer.Option(
        None,
        "--init",
        metavar="MODEL",
        help="Fine-tune: start from this model's weights (run, checkpoint, default or URL; "
        "fresh optimizer).",
    ),
    balance: float | None = typer.Option(
        None,
        "--balance",
        min=0.0,
        show_default=default_text("balance"),
        help="Pose-balanced sampling: draw each face with weight (share of its yaw bin)^-balance; "
        "0 = plain shuffling.",
    ),
    hflip: float | None = typer.Option(None, "--hflip", hidden=True),
    config: str | None = typer.Option(
        None,
        "--config",
        metavar="FILE",
        help="Start from a saved run's config.json (or a TOML file of the same keys); "
        "options given here override it (its name and resume point are not taken).",
    ),
    augment: str | None = typer.Option(
        None,
        "--augment",
        metavar="KEY=VALUE,...",
        help="Change landmark augmentation (transforms.AugmentConfig fields, ranges as lo:hi), "
        "e.g. p_flip=0 (no mirroring) or p_squeeze=0.5,squeeze=0.7:1.",
    ),
    teacher: list[str] | None = typer.Option(
        None,
        "--teacher",
        metavar="MODEL",
        help="Distil: also learn the outputs of this frozen landmark model (run, checkpoint, "
        "default or URL; same design and --img-size), e.g. to make a faster network match a "
        "slower one. Repeat it to learn the average of several.",
    ),
    distill: float = typer.Option(
        TrainConfig.distill, "--distill", help="Weight of the --teacher term against the labels'."
    ),
) -> None:
    """Train a landmark model (or the face detector) on the installed dataset or your own.

    --data takes any 68-point labels (see docs/training.md); fine-tune the bundled model on
    your faces with  facemark train --data my-faces/ --init default
    Writes best.pt, last.pt, config.json, metrics.jsonl, curves.png and env.json to
    <runs dir>/<name>/.  Ctrl-C saves last.pt; --resume continues exactly where it stopped.
    Several GPUs:  torchrun --nproc-per-node N -m facemark train --gpu

    Examples:  facemark train   |   facemark train --gpu --arch integral --name int1
    """
    from facemark.errors import UsageError
    from facemark.train import train

    if hflip is not None:  # gone: one setting for mirroring, which the detector refuses
        raise UsageError(f"--hflip is gone: use --augment p_flip={hflip:g}")

    sources = list(data or [])
    options = dict(
        task=task,
        arch=arch,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        weight_decay=weight_decay,
        img_size=img_size,
        seed=seed,
        val_fraction=val_fraction,
        val_by=val_by,
        device=resolve_device(ctx, device, gpu),
        workers=workers,
        amp=amp,
        resume=resume,
        name=name,
        max_minutes=max_minutes,
        data_root=(sources[0] if len(sources) == 1 else sources) or None,
        data_weights=list(data_weight) if data_weight else None,
        val_data=val_data,
        init=init,
        balance=balance,
        augment=augment,
        teacher=(teacher[0] if len(teacher) == 1 else list(teacher)) if teacher else None,
        distill=distill,
    )
    cfg = _config(ctx, options, config)
    result = train(cfg, console=console)
    if result.interrupted:
        raise typer.Exit(130)


#: TrainConfig fields whose option has another name.
_OPTION_OF = {"data_root": "data", "data_weights": "data_weight"}


def _config(ctx: typer.Context, options: dict[str, Any], path: str | None) -> TrainConfig:
    """The run's config: the options, or with ``--config`` that file's settings with the
    options given on the command line on top.  A saved run's name and resume point are not
    taken: a config file is a recipe for a new run."""
    if path is None:
        return TrainConfig(**options)
    given = {
        key
        for key in options
        if any(
            ctx.get_parameter_source(name) == click_core.ParameterSource.COMMANDLINE
            for name in ((_OPTION_OF.get(key, key),) if key != "device" else ("device", "gpu"))
        )
    }
    base = dataclasses.replace(TrainConfig.from_file(path), name=None, resume=None)
    return dataclasses.replace(base, **{key: options[key] for key in given})
